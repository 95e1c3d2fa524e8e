"""The kustomize overlays render, validate strictly and keep the zero-downtime contract;
deliberately broken copies are rejected with the right message."""

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.zdt import zdt
from tools.repo import ROOT
from tools.validate.invariants import check_overlays
from tools.validate.overlays import Overlay, load_overlays
from tools.validate.schema import NEWEST_KUBERNETES, schema_problems
from tools.validate.workload import PreStopTiming, prestop_timing

DEPLOYMENT = "Deployment/zero-downtime-app"
CONTAINER = "spec.template.spec.containers[app]"
# The ECR repository the overlays name: a placeholder until a user sets their own, in both.
REPOSITORY = yaml.safe_load((ROOT / "overlays/v1/kustomization.yaml").read_text())["images"][0][
    "newName"
]


def copy_manifests(destination: Path) -> Path:
    for directory in ("base", "overlays"):
        shutil.copytree(ROOT / directory, destination / directory)
    return destination


def edit(path: Path, change) -> None:
    """Load a one-document YAML file, let `change` mutate it, write it back."""
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def all_problems(root: Path) -> list[str]:
    overlays = load_overlays(root)
    problems = check_overlays(overlays)
    for overlay in overlays:
        problems += schema_problems(overlay)
    return [str(problem) for problem in problems]


@pytest.fixture(scope="module")
def overlays() -> list[Overlay]:
    return load_overlays()


def deployment_of(overlay: Overlay) -> dict:
    (deployment,) = overlay.of_kind("Deployment")
    return deployment


def test_both_overlays_render_the_same_resources(overlays):
    assert [overlay.name for overlay in overlays] == ["overlays/v1", "overlays/v2"]
    names = [sorted((r["kind"], r["metadata"]["name"]) for r in o.resources) for o in overlays]
    assert names[0] == names[1]
    assert {kind for kind, _ in names[0]} == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    }


def test_the_overlays_keep_every_invariant(overlays):
    assert [str(problem) for problem in check_overlays(overlays)] == []


def test_the_overlays_validate_strictly_for_the_oldest_and_newest_kubernetes(overlays):
    assert [str(p) for overlay in overlays for p in schema_problems(overlay)] == []


def test_the_newest_supported_kubernetes_is_the_newest_schema_shipped():
    assert kubernetes_validate.latest_version().startswith(NEWEST_KUBERNETES + ".")


def test_kubernetes_older_than_the_oldest_supported_rejects_the_prestop_sleep(overlays):
    # The base's hook is an httpGet; a team that goes back to the sleep action needs 1.30.
    overlay = copy.deepcopy(overlays[0])
    container(deployment_of(overlay))["lifecycle"]["preStop"] = {"sleep": {"seconds": 5}}
    problems = [str(p) for p in schema_problems(overlay, versions=("1.28",))]
    assert problems == [
        f"overlays/v1: {DEPLOYMENT}: spec.template.spec.containers.0.lifecycle.preStop:"
        " invalid for Kubernetes 1.28: Additional properties are not allowed"
        " ('sleep' was unexpected)"
    ]


def image_entry(overlay_dir: Path) -> dict:
    (entry,) = yaml.safe_load((overlay_dir / "kustomization.yaml").read_text())["images"]
    return entry


def test_each_overlay_runs_the_image_its_kustomization_sets(overlays):
    for overlay in overlays:
        entry = image_entry(ROOT / overlay.name)
        digest = f"@{entry['digest']}" if "digest" in entry else ""
        expected = f"{REPOSITORY}:{entry['newTag']}{digest}"
        assert container(deployment_of(overlay))["image"] == expected


def test_the_shutdown_chain_fits_in_the_grace_period(overlays):
    deployment = deployment_of(overlays[0])
    app = container(deployment)
    env = {variable["name"]: variable["value"] for variable in app["env"]}
    chain = (
        prestop_timing(app).ceiling + float(env["DRAIN_SECONDS"]) + float(env["GRACEFUL_TIMEOUT"])
    )
    assert chain < deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert "APP_VERSION" not in env


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_an_overlay_sets_only_the_image_as_kustomize_edit_set_image_writes_it(version):
    path = ROOT / "overlays" / version / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text())
    entry = image_entry(path.parent)
    del kustomization["images"]
    assert kustomization == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
    }
    assert entry["name"] == "zero-downtime-app"
    assert entry["newName"] == REPOSITORY
    assert re.fullmatch(r"public\.ecr\.aws/[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._/-]*", REPOSITORY)
    assert set(entry) <= {"name", "newName", "newTag", "digest"}
    # The layout `kustomize edit set image` writes (images last, an unindented list), so a
    # release commit is a one-line diff.
    images = path.read_text().split("\nimages:\n")[1]
    assert images.startswith("- ")
    assert all(line.startswith("  ") for line in images.splitlines()[1:])


def test_every_checkov_skip_gives_its_reason():
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    skips = [line for line in lines if re.match(r"- CKV", line)]
    assert skips
    for line in skips:
        assert re.fullmatch(r"- CKV2?_K8S_\d+  # \S.{20,}", line), line


@pytest.mark.parametrize(
    ("command", "seconds"),
    [(["sleep", "5"], 5), (["/bin/sh", "-c", "sleep 7"], 7), (["/bin/true"], None)],
)
def test_an_exec_prestop_sleep_is_understood(command, seconds):
    timing = prestop_timing({"lifecycle": {"preStop": {"exec": {"command": command}}}})
    assert timing == (None if seconds is None else PreStopTiming(seconds, seconds))


def test_the_apps_prestop_hook_is_read_from_the_containers_env():
    container = {
        "lifecycle": {"preStop": {"httpGet": {"path": "/prestop", "port": "http"}}},
        "env": [
            {"name": "PRESTOP_MIN_SECONDS", "value": "3"},
            {"name": "PRESTOP_MAX_SECONDS", "value": "40"},
        ],
    }
    assert prestop_timing(container) == PreStopTiming(3, 40, quiet=2)
    container["lifecycle"]["preStop"]["httpGet"]["path"] = "/other"
    assert prestop_timing(container) is None


def set_path(path: str, value):
    """A change that sets a dotted path (list items by index) in a document."""

    def change(document):
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return change


APP = "spec.template.spec.containers.0"
BOTH = ("overlays/v1", "overlays/v2")
V2 = ("overlays/v2",)

# (file to break, change, the problem reported for each overlay in `overlays`, overlays)
BROKEN = {
    "readiness-on-healthz": (
        "base/deployment.yaml",
        set_path(f"{APP}.readinessProbe.httpGet.path", "/healthz"),
        f"{DEPLOYMENT}: {CONTAINER}.readinessProbe.httpGet.path: is '/healthz', must be '/ready'"
        " (the endpoint that turns 503 when draining starts)",
        BOTH,
    ),
    "liveness-on-ready": (
        "base/deployment.yaml",
        set_path(f"{APP}.livenessProbe.httpGet.path", "/ready"),
        f"{DEPLOYMENT}: {CONTAINER}.livenessProbe.httpGet.path: must not be '/ready':"
        " a draining pod would be restarted; use '/healthz'",
        BOTH,
    ),
    "probe-on-another-port": (
        "base/deployment.yaml",
        set_path(f"{APP}.readinessProbe.httpGet.port", 9090),
        f"{DEPLOYMENT}: {CONTAINER}.readinessProbe.httpGet.port: 9090 is not the container"
        " port ('http', 8080)",
        BOTH,
    ),
    "probe-timing-left-to-defaults": (
        "base/deployment.yaml",
        set_path(f"{APP}.livenessProbe.periodSeconds", None),
        f"{DEPLOYMENT}: {CONTAINER}.livenessProbe: timing left to defaults: set periodSeconds",
        BOTH,
    ),
    "no-prestop": (
        "base/deployment.yaml",
        set_path(f"{APP}.lifecycle", None),
        f"{DEPLOYMENT}: {CONTAINER}.lifecycle.preStop: missing: a sleep, or the app's httpGet"
        " /prestop with PRESTOP_MIN_SECONDS > 0, must cover endpoint propagation before SIGTERM",
        BOTH,
    ),
    "grace-period-too-short": (
        "base/deployment.yaml",
        set_path("spec.template.spec.terminationGracePeriodSeconds", 30),
        f"{DEPLOYMENT}: spec.template.spec.terminationGracePeriodSeconds: 30 s does not cover"
        " preStop up to 90 s + DRAIN_SECONDS 5 s + GRACEFUL_TIMEOUT 20 s + 5 s margin = 120 s",
        BOTH,
    ),
    "version-in-env": (
        "base/deployment.yaml",
        lambda d: container(d)["env"].append({"name": "APP_VERSION", "value": "v1"}),
        f"{DEPLOYMENT}: {CONTAINER}.env: APP_VERSION must not be set: the image carries its"
        " version",
        BOTH,
    ),
    "drain-left-to-the-image": (
        "base/deployment.yaml",
        lambda d: container(d)["env"].pop(2),
        f"{DEPLOYMENT}: {CONTAINER}.env: DRAIN_SECONDS must be set to a value explicitly",
        BOTH,
    ),
    "no-workers": (
        "base/deployment.yaml",
        set_path(f"{APP}.env.1.value", "0"),
        f"{DEPLOYMENT}: {CONTAINER}.env: WEB_CONCURRENCY '0' would stop the server at start:"
        " WEB_CONCURRENCY must be between 1 and 64, got 0",
        BOTH,
    ),
    "negative-drain": (
        "base/deployment.yaml",
        set_path(f"{APP}.env.2.value", "-1"),
        f"{DEPLOYMENT}: {CONTAINER}.env: DRAIN_SECONDS '-1' would stop the server at start:"
        " DRAIN_SECONDS must be between 0 and 3600 seconds, got -1",
        BOTH,
    ),
    "graceful-timeout-not-a-number": (
        "base/deployment.yaml",
        set_path(f"{APP}.env.3.value", "soon"),
        f"{DEPLOYMENT}: {CONTAINER}.env: GRACEFUL_TIMEOUT 'soon' would stop the server at start:"
        " GRACEFUL_TIMEOUT must be an integer, got 'soon'",
        BOTH,
    ),
    "unknown-log-level": (
        "base/deployment.yaml",
        lambda d: container(d)["env"].append({"name": "LOG_LEVEL", "value": "loud"}),
        f"{DEPLOYMENT}: {CONTAINER}.env: LOG_LEVEL 'loud' would stop the server at start:"
        " LOG_LEVEL must be one of debug, info, warning, error, got 'loud'",
        BOTH,
    ),
    "recreate-strategy": (
        "base/deployment.yaml",
        set_path("spec.strategy", {"type": "Recreate"}),
        f"{DEPLOYMENT}: spec.strategy.type: is 'Recreate', must be RollingUpdate",
        BOTH,
    ),
    "max-unavailable-1": (
        "base/deployment.yaml",
        set_path("spec.strategy.rollingUpdate.maxUnavailable", 1),
        f"{DEPLOYMENT}: spec.strategy.rollingUpdate.maxUnavailable: allows 1 unavailable pod(s)"
        " at 3 replicas, must be 0",
        BOTH,
    ),
    "max-unavailable-percent-once-scaled-up": (
        "base/deployment.yaml",
        set_path("spec.strategy.rollingUpdate.maxUnavailable", "25%"),
        f"{DEPLOYMENT}: spec.strategy.rollingUpdate.maxUnavailable: allows 1 unavailable pod(s)"
        " at 4 replicas, must be 0",
        BOTH,
    ),
    # Kubernetes turns maxUnavailable into 1 when both values round down to 0.
    "surge-and-unavailable-both-round-to-zero": (
        "base/deployment.yaml",
        set_path("spec.strategy.rollingUpdate", {"maxSurge": "0%", "maxUnavailable": "10%"}),
        f"{DEPLOYMENT}: spec.strategy.rollingUpdate.maxUnavailable: allows 1 unavailable pod(s)"
        " at 3 replicas, must be 0",
        BOTH,
    ),
    "one-replica-minimum": (
        "base/horizontalpodautoscaler.yaml",
        set_path("spec.minReplicas", 1),
        "HorizontalPodAutoscaler/zero-downtime-app: spec.minReplicas: is 1, must be at least 2",
        BOTH,
    ),
    "autoscaler-without-scale-down-stabilization": (
        "base/horizontalpodautoscaler.yaml",
        set_path("spec.behavior.scaleDown.stabilizationWindowSeconds", None),
        "HorizontalPodAutoscaler/zero-downtime-app:"
        " spec.behavior.scaleDown.stabilizationWindowSeconds: must be set so scaling down does"
        " not fight a rollout",
        BOTH,
    ),
    "budget-selects-nothing": (
        "base/poddisruptionbudget.yaml",
        set_path("spec.selector.matchLabels", {"app.kubernetes.io/name": "other"}),
        "PodDisruptionBudget/zero-downtime-app: spec.selector: does not select the pods of"
        f" {DEPLOYMENT}",
        BOTH,
    ),
    "budget-evicts-unready-pods-always": (
        "base/poddisruptionbudget.yaml",
        set_path("spec.unhealthyPodEvictionPolicy", "AlwaysAllow"),
        "PodDisruptionBudget/zero-downtime-app: spec.unhealthyPodEvictionPolicy: is AlwaysAllow:"
        " a drain could evict the last pod serving while its readiness probe fails under load;"
        " use IfHealthyBudget (the default)",
        BOTH,
    ),
    "service-selects-nothing": (
        "base/service.yaml",
        set_path("spec.selector", {"app": "zero-downtime-app"}),
        f"Service/zero-downtime-app: spec.selector: does not select the pods of {DEPLOYMENT}",
        BOTH,
    ),
    "service-targets-another-port": (
        "base/service.yaml",
        set_path("spec.ports.0.targetPort", 9090),
        "Service/zero-downtime-app: spec.ports[0].targetPort: 9090 is not the container"
        " port 'http'",
        BOTH,
    ),
    "unknown-field": (
        "base/deployment.yaml",
        set_path(f"{APP}.readinesProbe", {}),
        f"{DEPLOYMENT}: spec.template.spec.containers.0: invalid for Kubernetes 1.30:"
        " Additional properties are not allowed ('readinesProbe' was unexpected)",
        BOTH,
    ),
    "latest-tag": (
        "overlays/v2/kustomization.yaml",
        set_path("images.0.newTag", "latest"),
        f"{DEPLOYMENT}: {CONTAINER}.image: '{REPOSITORY}:latest' must carry a release tag,"
        " not latest",
        V2,
    ),
    "same-tag-twice": (
        "overlays/v2/kustomization.yaml",
        set_path("images.0.newTag", "v1"),
        f"{DEPLOYMENT}: {CONTAINER}.image: '{REPOSITORY}:v1' is also the image of overlays/v1:"
        " each overlay is another release",
        V2,
    ),
    "other-repository": (
        "overlays/v2/kustomization.yaml",
        set_path("images.0.newName", "public.ecr.aws/other/zero-downtime-app"),
        f"{DEPLOYMENT}: {CONTAINER}.image: repository 'public.ecr.aws/other/zero-downtime-app'"
        f" differs from '{REPOSITORY}' in overlays/v1: overlays may change only the image tag",
        V2,
    ),
    "overlay-changes-more-than-the-image": (
        "overlays/v2/kustomization.yaml",
        set_path("replicas", [{"name": "zero-downtime-app", "count": 4}]),
        f"{DEPLOYMENT}: spec.replicas: is 4 here but 3 in overlays/v1: overlays may change only"
        " the image tag",
        V2,
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_copy_is_rejected_with_the_right_message(tmp_path, case):
    path, change, message, broken_overlays = BROKEN[case]
    root = copy_manifests(tmp_path)
    edit(root / path, change)
    expected = [f"{overlay}: {message}" for overlay in broken_overlays]
    if case == "unknown-field":  # rejected by both supported schema versions
        expected = [f"{o}: {message.replace('1.30', v)}" for o in BOTH for v in ("1.30", "1.37")]
    assert all_problems(root) == expected


def test_an_env_value_from_elsewhere_is_not_checked(tmp_path):
    # The kubelet resolves valueFrom when the pod starts; validation sees no value to check.
    root = copy_manifests(tmp_path)
    from_config_map = {"configMapKeyRef": {"name": "settings", "key": "log-level"}}
    edit(
        root / "base/deployment.yaml",
        lambda d: container(d)["env"].append({"name": "LOG_LEVEL", "valueFrom": from_config_map}),
    )
    assert all_problems(root) == []


def checkov_path() -> str:
    candidates = [os.environ.get("CHECKOV"), str(ROOT / ".venv-checkov/bin/checkov")]
    found = next((c for c in candidates if c and shutil.which(c)), shutil.which("checkov"))
    if not found:
        pytest.skip("checkov is not installed: run `make validate` once to install it")
    return found


def run_cli(root: Path, **env: str) -> subprocess.CompletedProcess:
    return zdt("validate", str(root), env=env, timeout=240)


def test_the_cli_summarises_each_overlay_and_fails_on_invariant_and_checkov_findings(tmp_path):
    root = copy_manifests(tmp_path)
    shutil.copy(ROOT / ".checkov.yaml", root)
    writable_root = {
        "op": "replace",
        "path": "/spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem",
        "value": False,
    }
    edit(
        root / "overlays/v2/kustomization.yaml",
        set_path(
            "patches",
            [{"target": {"kind": "Deployment"}, "patch": yaml.safe_dump([writable_root])}],
        ),
    )

    result = run_cli(root, CHECKOV=checkov_path())

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    for version in ("v1", "v2"):
        assert f"overlays/{version}" in lines
        assert f"  image:     {REPOSITORY}:{version}" in lines
    assert (
        "  shutdown:  preStop 5-90s (until quiet for 2s) -> SIGTERM -> drain 5s -> graceful stop"
        " up to 20s -> SIGKILL at 120s" in lines
    )
    assert [line for line in lines if line.startswith("problem: ")] == [
        f"problem: overlays/v2: {DEPLOYMENT}: {CONTAINER}.securityContext.readOnlyRootFilesystem:"
        " is false here but true in overlays/v1: overlays may change only the image tag",
        "problem: overlays/v2: Deployment.zero-downtime.zero-downtime-app: checkov CKV_K8S_22:"
        " Use read-only filesystem for containers where possible",
    ]
    assert lines[-1] == "FAILED: 2 problem(s)"


def test_the_cli_names_an_overlay_that_does_not_render(tmp_path):
    root = copy_manifests(tmp_path)
    edit(root / "overlays/v2/kustomization.yaml", set_path("resources", ["../../missing"]))

    result = run_cli(root)

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {root}/overlays/v2: kustomize failed: ")


def test_the_cli_fails_clearly_without_checkov(tmp_path):
    root = copy_manifests(tmp_path)
    shutil.copy(ROOT / ".checkov.yaml", root)

    result = run_cli(root, CHECKOV=str(tmp_path / "no-checkov"), PATH="/nonexistent")

    assert result.returncode == 1
    assert result.stderr == (
        "error: checkov not found: set CHECKOV to its path or put it on PATH"
        " (make validate installs it into .venv-checkov)\n"
    )
    assert result.stdout.splitlines()[-1] == "FAILED: 0 problem(s), checkov did not run"

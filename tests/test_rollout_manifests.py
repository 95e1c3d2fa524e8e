"""`zdt validate` with the opt-in components switched on: every overlay rendered with each
component of components/ (and the combinations that go together), the invariants (the
Rollout's, and the Deployment's on the pod template the Rollout runs), the CRD schemas of Argo
Rollouts v1.9.1 and Kyverno v1.19.0, and checkov.
Deliberately broken copies of the components are rejected with the right message.

Argo Rollouts actually running them is proven only on a cluster (e2e.yml, docs/testing.md). The
exposure components (gateway-api, aws-alb) and their combinations with these are broken in
tests/test_exposure.py; the copies here leave them out, which keeps each case to 8 renders.
"""

import ast
import copy
import shutil
from pathlib import Path

import pytest
import yaml

from app.metrics import LABELS
from tests.test_manifests import checkov_path, edit, run_cli, set_path
from tools.kustomize import find, render_with_components
from tools.repo import ROOT
from tools.validate import crd
from tools.validate.invariants import check_overlays
from tools.validate.overlays import component_dirs, load_overlays, load_variants
from tools.validate.schema import schema_problems

ROLLOUT = "Rollout/zero-downtime-app"
HPA = "HorizontalPodAutoscaler/zero-downtime-app"
TEMPLATE = "AnalysisTemplate/load-check"
JOB = "spec.metrics[load-check].provider.job.spec.template.spec"
BLUE_GREEN = "components/rollout-blue-green"
CANARY = "components/rollout-canary"
SIGNATURES = "components/verify-signatures"
GATEWAY = "components/gateway-api"
ALB = "components/aws-alb"
SCRIPTS = ROOT / "tools" / "e2e"
EXPOSURES = ("gateway-api", "aws-alb")
# Every combination zdt validate renders each overlay with, in its order.
COMBINATIONS = [
    GATEWAY,
    f"{GATEWAY}+{ALB}",
    BLUE_GREEN,
    CANARY,
    SIGNATURES,
    f"{BLUE_GREEN}+{GATEWAY}",
    f"{CANARY}+{GATEWAY}",
    f"{CANARY}+{GATEWAY}+{ALB}",
]


def renders(component: str) -> list[str]:
    return [f"overlays/{version}+{component}" for version in ("v1", "v2")]


def copy_tree(destination: Path, leave_out: tuple[str, ...] = EXPOSURES) -> Path:
    """base/, overlays/, components/ (but the components named in `leave_out`) and the scripts
    component tools/e2e/ (without its kind and metrics-server directories), as zdt validate sees
    them."""
    for directory in ("base", "overlays"):
        shutil.copytree(ROOT / directory, destination / directory)
    for component in (ROOT / "components").iterdir():
        if component.name not in leave_out:
            shutil.copytree(component, destination / "components" / component.name)
    (destination / "tools" / "e2e").mkdir(parents=True)
    for path in [*SCRIPTS.glob("*.py"), SCRIPTS / "kustomization.yaml"]:
        shutil.copy(path, destination / "tools" / "e2e")
    return destination


def all_problems(root: Path) -> list[str]:
    """What zdt validate reports but checkov, in the same order."""
    groups = [load_overlays(root), *load_variants(root).values()]
    problems = [problem for group in groups for problem in check_overlays(group)]
    problems += [p for group in groups for overlay in group for p in schema_problems(overlay)]
    return [str(problem) for problem in problems]


@pytest.fixture
def variants(rendered_variants) -> dict:
    return rendered_variants


def test_each_switchable_component_is_rendered_into_each_overlay(variants):
    assert [p.relative_to(ROOT).as_posix() for p in component_dirs()] == [
        ALB,
        GATEWAY,
        BLUE_GREEN,
        CANARY,
        SIGNATURES,
    ]
    # components/rollout-analysis is a part of the rollout components, not a switch;
    # components/aws-alb is rendered only on top of components/gateway-api, and never with
    # blue-green (tests/test_exposure.py).
    assert list(variants) == COMBINATIONS
    for component, overlays in variants.items():
        assert [overlay.name for overlay in overlays] == renders(component)
    kinds = {c: {r["kind"] for r in overlays[0].resources} for c, overlays in variants.items()}
    assert {"Rollout", "AnalysisTemplate", "ConfigMap"} <= kinds[BLUE_GREEN]
    assert {"Rollout", "AnalysisTemplate", "ConfigMap"} <= kinds[CANARY]
    assert "ImageValidatingPolicy" in kinds[SIGNATURES]


def test_every_component_keeps_every_invariant_and_its_crd_schema(variants):
    for overlays in variants.values():
        assert [str(p) for p in check_overlays(overlays)] == []
        assert [str(p) for overlay in overlays for p in schema_problems(overlay)] == []


def test_custom_resources_are_validated_against_their_crd_not_kubernetes_validate(variants):
    for overlays in variants.values():
        for resource in overlays[0].resources:
            known = crd.crd_of(resource)
            if resource["apiVersion"].startswith(
                (
                    "argoproj.io/",
                    "policies.kyverno.io/",
                    "gateway.networking.k8s.io/",
                    "gateway.k8s.aws/",
                )
            ):
                assert known, resource["kind"]
                assert crd.validate(resource) == []
            else:
                assert known is None


def test_the_analysis_job_ships_these_very_scripts_where_its_command_runs_them(variants):
    for component in (BLUE_GREEN, CANARY):
        resources = variants[component][1].resources
        (template,) = find(resources, "AnalysisTemplate")
        (config_map,) = find(resources, "ConfigMap")
        (metric,) = template["spec"]["metrics"]
        pod = metric["provider"]["job"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (mount,) = container["volumeMounts"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == config_map["metadata"]["name"]
        # The command the rehearsal maps to tools/e2e/ (rehearsal/cluster/rollouts/analysis.py).
        assert container["command"] == ["python3", "/opt/load-check/analysis.py"]
        assert mount["mountPath"] == "/opt/load-check"
        script = Path(container["command"][1]).name
        assert config_map["data"][script] == (SCRIPTS / script).read_text()
        # Every module of this directory that the script imports is shipped beside it.
        imported = {
            alias.name
            for node in ast.walk(ast.parse((SCRIPTS / script).read_text()))
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        for module in imported & {path.stem for path in SCRIPTS.glob("*.py")}:
            assert config_map["data"][f"{module}.py"] == (SCRIPTS / f"{module}.py").read_text()
        assert container["image"] == "public.ecr.aws/docker/library/python:3.11-slim-bookworm"


def test_rendering_names_the_overlay_and_component_when_kustomize_fails(tmp_path):
    root = copy_tree(tmp_path)
    (root / "components" / "rollout-canary" / "services.yaml").unlink()
    with pytest.raises(Exception, match=r"^overlays/v1\+components/rollout-canary: kustomize"):
        render_with_components(
            root / "overlays" / "v1",
            [root / "components" / "rollout-canary"],
            name="overlays/v1+components/rollout-canary",
        )


BASE_DEPLOYMENT = yaml.safe_load((ROOT / "base" / "deployment.yaml").read_text())


def _own_template(path: str):
    """The Rollout with a pod template of its own (the Deployment's, readiness on /healthz)."""

    def change(rollout):
        del rollout["spec"]["workloadRef"]
        template = copy.deepcopy(BASE_DEPLOYMENT["spec"]["template"])
        template["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = path
        rollout["spec"]["template"] = template

    return change


def _hpa_patch(document: str):
    def change(kustomization):
        kustomization["patches"][0]["patch"] = document

    return change


HPA_TO_ROLLOUT_V1BETA1 = """- op: replace
  path: /spec/scaleTargetRef
  value:
    apiVersion: argoproj.io/v1beta1
    kind: Rollout
    name: zero-downtime-app
"""

BG = "components/rollout-blue-green/rollout.yaml"
CAN = "components/rollout-canary/rollout.yaml"
STEPS = "spec.strategy.canary.steps"
SCALE_DOWN = "spec.strategy.blueGreen.scaleDownDelaySeconds"
ANALYSIS = "spec.strategy.blueGreen.prePromotionAnalysis"
ARGO = crd.ARGO_ROLLOUTS
BOTH_ROLLOUTS = (*renders(BLUE_GREEN), *renders(CANARY))
EVERY_RENDER = ("overlays/v1", "overlays/v2", *BOTH_ROLLOUTS, *renders(SIGNATURES))

# (file to break, change, the problem reported for each render in `renders`, renders)
BROKEN = {
    "preview-service-missing": (
        BG,
        set_path("spec.strategy.blueGreen.previewService", "zero-downtime-app-previw"),
        f"{ROLLOUT}: spec.strategy.blueGreen.previewService: no Service"
        " 'zero-downtime-app-previw' in the render",
        renders(BLUE_GREEN),
    ),
    "stable-service-missing": (
        CAN,
        set_path("spec.strategy.canary.stableService", "zero-downtime-app-stabel"),
        f"{ROLLOUT}: spec.strategy.canary.stableService: no Service 'zero-downtime-app-stabel'"
        " in the render",
        renders(CANARY),
    ),
    "preview-service-selects-other-pods": (
        "components/rollout-blue-green/preview-service.yaml",
        set_path("spec.selector", {"app.kubernetes.io/name": "other"}),
        f"Service/zero-downtime-app-preview: spec.selector: does not select the pods of {ROLLOUT}",
        renders(BLUE_GREEN),
    ),
    "analysis-template-missing": (
        BG,
        set_path(f"{ANALYSIS}.templates.0.templateName", "load-chek"),
        f"{ROLLOUT}: {ANALYSIS}.templates[0].templateName: no AnalysisTemplate 'load-chek' in"
        " the render",
        renders(BLUE_GREEN),
    ),
    "canary-analysis-template-missing": (
        CAN,
        set_path(f"{STEPS}.2.analysis.templates.0.templateName", "load-chek"),
        f"{ROLLOUT}: {STEPS}[2].analysis.templates[0].templateName: no AnalysisTemplate"
        " 'load-chek' in the render",
        renders(CANARY),
    ),
    "analysis-arg-missing": (
        BG,
        set_path(f"{ANALYSIS}.args", None),
        f"{ROLLOUT}: {ANALYSIS}.args: gives no value for 'service', which AnalysisTemplate"
        " 'load-check' needs",
        renders(BLUE_GREEN),
    ),
    # Without it kustomize adds a hash suffix it does not rewrite in the AnalysisTemplate.
    "analysis-scripts-with-hash-suffix": (
        "tools/e2e/kustomization.yaml",
        set_path("configMapGenerator.0.options", None),
        f"{TEMPLATE}: {JOB}.volumes[scripts].configMap.name: no ConfigMap 'load-check-scripts'"
        " in the render: the analysis Job could not start",
        BOTH_ROLLOUTS,
    ),
    "analysis-image-unresolved": (
        "tools/e2e/kustomization.yaml",
        set_path("images", None),
        f"{TEMPLATE}: {JOB}.containers[load-check].image: 'loadgen-runtime' must carry a tag,"
        " not latest (no images: entry for it?)",
        BOTH_ROLLOUTS,
    ),
    "scale-down-delay-shorter-than-propagation": (
        BG,
        set_path(SCALE_DOWN, 3),
        f"{ROLLOUT}: {SCALE_DOWN}: 3 s is shorter than the pods' preStop of at least 5 s, the"
        " repository's allowance for endpoint propagation: old pods would stop while nodes"
        " still send them the active Service's traffic",
        renders(BLUE_GREEN),
    ),
    "abort-scale-down-delay-left-to-default": (
        BG,
        set_path("spec.strategy.blueGreen.abortScaleDownDelaySeconds", None),
        f"{ROLLOUT}: spec.strategy.blueGreen.abortScaleDownDelaySeconds: must be set"
        " explicitly: how long an abort leaves the new pods up (0: until the next rollout)",
        renders(BLUE_GREEN),
    ),
    "canary-weight-decreases": (
        CAN,
        set_path(f"{STEPS}.3.setWeight", 10),
        f"{ROLLOUT}: {STEPS}[3].setWeight: is 10, after 25 at steps[0]: weights must never"
        " decrease (users would be moved back and forth between versions)",
        renders(CANARY),
    ),
    "canary-analysis-before-propagation": (
        CAN,
        lambda rollout: rollout["spec"]["strategy"]["canary"]["steps"].pop(1),
        f"{ROLLOUT}: {STEPS}[1].analysis: starts 0 s after the weight changed, less than the"
        " pods' shortest preStop, 5 s, the repository's allowance for endpoint propagation: add"
        " a pause before it, or the analysis may measure the old pods",
        renders(CANARY),
    ),
    "canary-ends-below-100": (
        CAN,
        lambda rollout: rollout["spec"]["strategy"]["canary"]["steps"].pop(),
        f"{ROLLOUT}: {STEPS}[3].setWeight: is 50, the last weight: the steps must end with an"
        " explicit setWeight: 100",
        renders(CANARY),
    ),
    "canary-max-unavailable-1": (
        CAN,
        set_path("spec.strategy.canary.maxUnavailable", 1),
        f"{ROLLOUT}: spec.strategy.canary.maxUnavailable: allows 1 unavailable pod(s) at 3"
        " replicas, must be 0",
        renders(CANARY),
    ),
    # The HPA's range applies to the Rollout: 25 % of 4 replicas is one pod.
    "canary-max-unavailable-percent-once-scaled-up": (
        CAN,
        set_path("spec.strategy.canary.maxUnavailable", "25%"),
        f"{ROLLOUT}: spec.strategy.canary.maxUnavailable: allows 1 unavailable pod(s) at 4"
        " replicas, must be 0",
        renders(CANARY),
    ),
    "canary-surge-left-to-default": (
        CAN,
        set_path("spec.strategy.canary.maxSurge", None),
        f"{ROLLOUT}: spec.strategy.canary.maxSurge: must be set explicitly",
        renders(CANARY),
    ),
    "autoscaler-still-on-the-deployment": (
        "components/rollout-blue-green/kustomization.yaml",
        set_path("patches", None),
        f"{HPA}: spec.scaleTargetRef: targets Deployment/zero-downtime-app, not {ROLLOUT}",
        renders(BLUE_GREEN),
    ),
    "autoscaler-on-another-api-version": (
        "components/rollout-canary/kustomization.yaml",
        _hpa_patch(HPA_TO_ROLLOUT_V1BETA1),
        f"{HPA}: spec.scaleTargetRef.apiVersion: is 'argoproj.io/v1beta1', not"
        f" 'argoproj.io/v1alpha1' of {ROLLOUT}",
        renders(CANARY),
    ),
    "one-rollout-replica": (
        BG,
        set_path("spec.replicas", 1),
        f"{ROLLOUT}: spec.replicas: is 1, must be at least 2",
        renders(BLUE_GREEN),
    ),
    "workload-ref-to-nothing": (
        CAN,
        set_path("spec.workloadRef.name", "zero-downtime-ap"),
        f"{ROLLOUT}: spec.workloadRef: names Deployment/zero-downtime-ap, not a Deployment in"
        " the render (and the Rollout has no template of its own)",
        renders(CANARY),
    ),
    "rollout-selects-other-pods": (
        BG,
        set_path("spec.selector.matchLabels", {"app.kubernetes.io/name": "other"}),
        f"{ROLLOUT}: spec.selector: does not select the pods of its template in"
        " Deployment/zero-downtime-app",
        renders(BLUE_GREEN),
    ),
    "rollout-deadline-left-to-default": (
        CAN,
        set_path("spec.progressDeadlineSeconds", None),
        f"{ROLLOUT}: spec.progressDeadlineSeconds: must be set explicitly",
        renders(CANARY),
    ),
    # The timing contract, on the Deployment's pod template the Rollout runs (workloadRef).
    "grace-period-too-short-everywhere": (
        "base/deployment.yaml",
        set_path("spec.template.spec.terminationGracePeriodSeconds", 30),
        "Deployment/zero-downtime-app: spec.template.spec.terminationGracePeriodSeconds: 30 s"
        " does not cover preStop up to 90 s + DRAIN_SECONDS 5 s + GRACEFUL_TIMEOUT 20 s + 5 s"
        " margin = 120 s",
        EVERY_RENDER,
    ),
    "rollout-unknown-field": (
        BG,
        set_path("spec.strategy.blueGreen.scaleDownDelaySecond", 30),
        f"{ROLLOUT}: spec.strategy.blueGreen: invalid for {ARGO}: Additional properties are not"
        " allowed ('scaleDownDelaySecond' was unexpected)",
        renders(BLUE_GREEN),
    ),
    "rollout-wrong-type": (
        BG,
        set_path("spec.strategy.blueGreen.autoPromotionSeconds", "10"),
        f"{ROLLOUT}: spec.strategy.blueGreen.autoPromotionSeconds: invalid for {ARGO}:"
        " '10' is not of type 'integer'",
        renders(BLUE_GREEN),
    ),
    "rollout-misspelt-field": (
        CAN,
        set_path("spec.strategy.canary.steps.4.pause.durations", "10s"),
        f"{ROLLOUT}: spec.strategy.canary.steps.4.pause: invalid for {ARGO}: Additional"
        " properties are not allowed ('durations' was unexpected)",
        renders(CANARY),
    ),
    "analysis-template-unknown-field": (
        "components/rollout-analysis/analysis-template.yaml",
        set_path("spec.metrics.0.failureLimits", 0),
        f"{TEMPLATE}: spec.metrics.0: invalid for {ARGO}: Additional properties are not allowed"
        " ('failureLimits' was unexpected)",
        BOTH_ROLLOUTS,
    ),
    "policy-unknown-field": (
        "components/verify-signatures/imagevalidatingpolicy.yaml",
        set_path("spec.validationFailureAction", "Enforce"),
        "ImageValidatingPolicy/zero-downtime-app-signed: spec: invalid for Kyverno v1.19.0:"
        " Additional properties are not allowed ('validationFailureAction' was unexpected)",
        renders(SIGNATURES),
    ),
    "cluster-scoped-policy-with-a-namespace": (
        "components/verify-signatures/imagevalidatingpolicy.yaml",
        set_path("metadata.namespace", "zero-downtime"),
        "ImageValidatingPolicy/zero-downtime-app-signed: metadata.namespace: is 'zero-downtime',"
        " must not be set: ImageValidatingPolicy is cluster-scoped in the CRD of Kyverno v1.19.0",
        renders(SIGNATURES),
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_component_is_rejected_with_the_right_message(tmp_path, case):
    path, change, message, broken_renders = BROKEN[case]
    root = copy_tree(tmp_path)
    edit(root / path, change)
    expected = [f"{render}: {message}" for render in broken_renders]
    assert sorted(all_problems(root)) == sorted(expected)


def test_a_rollout_with_its_own_template_is_checked_there(tmp_path):
    # The timing contract runs on the template the Rollout has; and a template that a component
    # adds escapes the overlay's images: entry (applied before the component), which the image
    # checks catch.
    root = copy_tree(tmp_path)
    edit(root / BG, _own_template("/healthz"))
    container = f"{ROLLOUT}: spec.template.spec.containers[app]"
    v1, v2 = renders(BLUE_GREEN)
    assert all_problems(root) == [
        f"{v1}: {container}.readinessProbe.httpGet.path: is '/healthz', must be '/ready' (the"
        " endpoint that turns 503 when draining starts)",
        f"{v1}: {container}.image: 'zero-downtime-app' must carry a release tag, not latest",
        f"{v2}: {container}.readinessProbe.httpGet.path: is '/healthz', must be '/ready' (the"
        " endpoint that turns 503 when draining starts)",
        f"{v2}: {container}.image: 'zero-downtime-app' must carry a release tag, not latest",
        f"{v2}: {container}.image: 'zero-downtime-app' is also the image of {v1}: each overlay"
        " is another release",
    ]


def test_an_api_version_the_crd_does_not_serve_is_named(tmp_path):
    root = copy_tree(tmp_path)
    edit(root / BG, set_path("apiVersion", "argoproj.io/v1beta1"))
    problems = all_problems(root)
    for render in renders(BLUE_GREEN):
        assert (
            f"{render}: {ROLLOUT}: apiVersion: argoproj.io/v1beta1 is not served by the CRD of"
            f" {ARGO} (served: v1alpha1)"
        ) in problems


def test_the_cli_checks_every_component_and_names_the_render(tmp_path):
    root = copy_tree(tmp_path)
    shutil.copy(ROOT / ".checkov.yaml", root)
    edit(root / BG, set_path(SCALE_DOWN, 3))

    result = run_cli(root, CHECKOV=checkov_path())

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    for name in EVERY_RENDER:
        assert name in lines
    assert (
        "  delivery:  Rollout canary (canaryService zero-downtime-app-canary, stableService"
        " zero-downtime-app-stable), steps: setWeight 25; pause 10s; analysis load-check;"
        " setWeight 50; pause 10s; setWeight 100" in lines
    )
    assert [line for line in lines if line.startswith("problem: ")] == [
        f"problem: {render}: {ROLLOUT}: {SCALE_DOWN}: 3 s is shorter than the pods' preStop"
        " of at least 5 s, the repository's allowance for endpoint propagation: old pods would"
        " stop while nodes still send them the active Service's traffic"
        for render in renders(BLUE_GREEN)
    ]
    assert lines[-1] == "FAILED: 2 problem(s)"


PROMETHEUS_TEMPLATE = ROOT / "components" / "rollout-analysis" / "prometheus-template.yaml"


def test_the_optional_prometheus_template_is_valid_and_not_rendered(variants):
    template = yaml.safe_load(PROMETHEUS_TEMPLATE.read_text())
    assert template["kind"] == "AnalysisTemplate"
    assert crd.validate(template) == []
    # Not switched on with the components: only load-check is rendered.
    for component in (BLUE_GREEN, CANARY):
        for overlay in variants[component]:
            assert [t["metadata"]["name"] for t in find(overlay.resources, "AnalysisTemplate")] == [
                "load-check"
            ]
    # It reads the counter the app exports, by the label the app sets.
    (metric,) = template["spec"]["metrics"]
    query = metric["provider"]["prometheus"]["query"]
    assert query.count("http_requests_total{") == 2
    assert 'status!~"5.."' in query
    assert "status" in LABELS
    assert "{{args.pod-template-hash}}" in query
    assert [a["name"] for a in template["spec"]["args"] if "value" not in a] == [
        "pod-template-hash"
    ]


def test_the_prometheus_template_check_catches_a_mistake():
    template = yaml.safe_load(PROMETHEUS_TEMPLATE.read_text())
    template["spec"]["metrics"][0]["provider"]["prometheus"]["querry"] = "up"
    assert crd.validate(template) == [
        (
            "spec.metrics.0.provider.prometheus",
            f"invalid for {ARGO}: Additional properties are not allowed ('querry' was unexpected)",
        )
    ]


@pytest.mark.parametrize("component", [BLUE_GREEN, CANARY])
def test_a_rollout_is_created_at_the_hpas_maximum_so_adopting_the_deployment_drops_no_pod(
    component,
):
    """Argo Rollouts v1.9.1 scales the workloadRef'd Deployment to the Rollout's replicas minus
    its ready pods (rollout/replicaset.go reconcileNewReplicaSet): a Rollout created below the
    count the HPA holds the Deployment at drops pods the load needs (argoproj/argo-rollouts#4110;
    tests/tools/rehearsal/cluster/rollouts/test_rollout_adoption_scaling.py rehearses it)."""
    resources = render_with_components(ROOT / "overlays/v2", [ROOT / component])
    (rollout,) = find(resources, "Rollout")
    (hpa,) = find(resources, "HorizontalPodAutoscaler")
    assert rollout["spec"]["workloadRef"]["scaleDown"] == "progressively"
    assert rollout["spec"]["replicas"] >= hpa["spec"]["maxReplicas"]

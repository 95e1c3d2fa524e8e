"""The rollout rehearsal: real kustomize renders of the real overlays, real server processes.

Process-heavy tests scale the manifests down (2 replicas, 1 worker, short delays) through
temporary kustomize overlays patching overlays/v1 and overlays/v2, and run a modest fixed load.
"""

import shutil
from collections import Counter
from ipaddress import ip_address
from pathlib import Path

import pytest

from tests import gitrepo
from tools.imageref import ImageRef
from tools.rehearsal.cli import main as cli_main
from tools.rehearsal.cli import rehearse_and_report
from tools.rehearsal.cluster.autoscaling.pipeline import first_decision
from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.podnet import POD_NETWORK
from tools.rehearsal.cluster.node.container_runtime import ContainerRuntime
from tools.rehearsal.cluster.node.runtime import ProcessRuntime, Runtime
from tools.rehearsal.demo.ours import rescales_during_rollout
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay, load_revision
from tools.rehearsal.manifests.workload import Workload
from tools.rehearsal.options import Options
from tools.rehearsal.report import findings
from tools.rehearsal.result import Result
from tools.rehearsal.traffic import profiles
from tools.repo import ROOT

V1, V2 = ROOT / "overlays/v1", ROOT / "overlays/v2"
PROPAGATION = 0.5
CONTAINER = variants.CONTAINER


def small(
    overlay: Path, *, pre_stop: int = 1, drain: str = "4", extra_env: dict | None = None
) -> list[dict]:
    """Patches that scale a real overlay down for a short test. The drain stays 4 s: with
    gunicorn's 2 s for idle connections after it, a pod answers the hostile mix's pooled
    clients, which reuse a connection after up to 5.5 s, until they have moved on
    (docs/shutdown.md, "Idle connections"); a shorter one loses their requests."""
    rendered = variants.deployment(overlay)
    env = {"WEB_CONCURRENCY": "1", "DRAIN_SECONDS": drain, "GRACEFUL_TIMEOUT": "2"}
    return [
        variants.put("/spec/replicas", 2),
        variants.put("/spec/minReadySeconds", 1),
        variants.put("/spec/template/spec/terminationGracePeriodSeconds", 15),
        *variants.pre_stop_sleep(pre_stop),
        *variants.env(rendered, env | (extra_env or {})),
    ]


# The HPA's minReplicas lowered to the 2 replicas of `small` (else it would add a third pod).
SMALL_HPA = {variants.HPA: variants.hpa_min(2)}


def variant(tmp_path: Path, overlay: Path, ops: list[dict], name: str) -> Workload:
    return load_overlay(
        variants.write(overlay, ops, tmp_path / name, kind_ops=SMALL_HPA), f"{overlay.name}-{name}"
    )


def options(tmp_path: Path, **overrides) -> Options:
    settings = {
        "propagation_delay": PROPAGATION,
        "propagation_jitter": 0.1,
        "rate": 120.0,
        "steady_seconds": 0.5,
        "tail_seconds": 0.5,
        "fresh_clients": 3,
        "keepalive_clients": 3,
        "time_limit": 90.0,
        "out_dir": tmp_path / "out",
        "progress": False,
        "seed": 7,
    }
    return Options(**(settings | overrides))


def rehearse(
    source: Workload, target: Workload, opts: Options, runtime: Runtime | None = None
) -> Result:
    runtime = runtime or ProcessRuntime("app")
    result, _ = rehearse_and_report(source, target, runtime, opts, plot=False)
    return result


def failures(result: Result) -> Counter:
    return Counter(record.outcome for record in result.failed)


# -- strategy arithmetic (pure) --------------------------------------------------------------


# -- reading the manifests -----------------------------------------------------------------


def test_timing_comes_from_the_rendered_deployment(tmp_path):
    rendered = variants.deployment(V2)
    spec = rendered["spec"]
    container = spec["template"]["spec"]["containers"][0]
    workload = load_overlay(V2)
    deployment = workload.deployment
    assert deployment.replicas == spec["replicas"]
    assert deployment.min_ready_seconds == spec.get("minReadySeconds", 0)
    assert deployment.progress_deadline_seconds == spec.get("progressDeadlineSeconds", 600)
    template = deployment.template
    assert template.version == ImageRef.parse(container["image"]).tag
    assert template.readiness.path == container["readinessProbe"]["httpGet"]["path"]
    assert template.termination_grace == spec["template"]["spec"]["terminationGracePeriodSeconds"]
    assert workload.service.target_port == container["ports"][0]["containerPort"]
    changed = variant(
        tmp_path,
        V2,
        [
            variants.put("/spec/minReadySeconds", 9),
            *variants.pre_stop_sleep(7),
            variants.put(f"{CONTAINER}/readinessProbe/periodSeconds", 4),
        ],
        "changed",
    ).deployment
    assert changed.min_ready_seconds == 9
    assert changed.template.pre_stop.seconds == 7
    assert changed.template.readiness.period == 4


def test_bad_probe_port_is_named(tmp_path):
    ops = [variants.put(f"{CONTAINER}/readinessProbe/httpGet/port", "htp")]
    with pytest.raises(RehearsalError, match=r"readinessProbe\.httpGet\.port: 'htp'"):
        variant(tmp_path, V2, ops, "bad-port")


# -- rehearsals ---------------------------------------------------------------------------


# A CPU request low enough that the tests' modest load (120 requests/s over two one-worker pods,
# about 60m of CPU each) keeps the HPA above its 70 % target.
HUNGRY = variants.put(f"{CONTAINER}/resources/requests/cpu", "40m")
# The release 2 s before the HPA's first sync with a full window of metrics, as the demo's (the
# tests give the rate: no capacity to measure first).
STEADY_BEFORE_THE_HPA = first_decision(15.0) - 2


@pytest.mark.rehearsal
def test_rollout_v1_to_v2_under_load_loses_no_request_while_the_hpa_scales_it(tmp_path):
    """The HPA reads the pods' CPU from their cgroups and scales the Deployment during its
    rollout; the Deployment controller shares the new count between the old and the new
    ReplicaSet (sync.go scale); nothing is lost."""
    source = variant(tmp_path, V1, [*small(V1), HUNGRY], "v1")
    target = variant(tmp_path, V2, [*small(V2), HUNGRY], "v2")
    opts = options(tmp_path, name="ours", steady_seconds=STEADY_BEFORE_THE_HPA)
    result, summary = rehearse_and_report(source, target, ProcessRuntime("app"), opts)
    assert result.rollout_completed is not None
    assert failures(result) == Counter()
    answered = Counter(record.version for record in result.records)
    assert set(answered) == {"v1", "v2"}
    during = rescales_during_rollout(result)
    assert during and during[0].desired_replicas > 2, result.autoscaling.syncs
    assert any(event.kind == "proportional scale" for event in result.events)
    rescales = [sync for sync in result.autoscaling.syncs if sync.rescaled]
    assert result.final_replicas == rescales[-1].desired_replicas
    assert result.final_versions == ["v2"] * result.final_replicas
    assert len(result.records) > 500
    assert Counter(record.client for record in result.records).keys() == set(profiles.HOSTILE)
    assert summary["failed"] == 0 and summary["rollout"]["status"] == "complete"
    assert summary["scaling"]["autoscaler"]["rescales"]
    assert (opts.out_dir / "ours.json").is_file() and (opts.out_dir / "ours.png").is_file()
    assert (opts.out_dir / "ours-requests.csv").read_text().count("\n") == len(result.records) + 1


@pytest.mark.rehearsal
def test_the_same_harness_fails_on_the_naive_design(tmp_path):
    def naive(overlay: Path, name: str) -> Workload:
        ops = small(overlay)
        ops = [op for op in ops if not op["path"].endswith("/lifecycle")]
        return variant(tmp_path, overlay, ops + variants.naive(variants.deployment(overlay)), name)

    naive_app = ProcessRuntime("naive")
    result = rehearse(naive(V1, "naive-v1"), naive(V2, "naive-v2"), options(tmp_path), naive_app)
    assert result.rollout_completed is not None
    assert len(result.failed) > 0


def rehearse_timing_contract(
    tmp_path: Path, pre_stop: int, runtime: Runtime | None = None
) -> Result:
    """A pod stops accepting preStop + DRAIN_SECONDS (here 4 s) after termination starts,
    while the Service sends it new connections for 6 s (the propagation delay)."""
    source = variant(tmp_path, V1, small(V1, pre_stop=pre_stop), "v1")
    target = variant(tmp_path, V2, small(V2, pre_stop=pre_stop), "v2")
    opts = options(tmp_path, propagation_delay=6.0, propagation_jitter=0.0)
    result = rehearse(source, target, opts, runtime)
    assert result.rollout_completed is not None
    return result


@pytest.mark.rehearsal
def test_a_v2_that_never_gets_ready_stalls_and_fails_with_v1_serving(tmp_path, capsys):
    source = variants.write(V1, small(V1), tmp_path / "v1", kind_ops=SMALL_HPA)
    broken = [
        *small(V2),
        variants.put(f"{CONTAINER}/readinessProbe/httpGet/path", "/never-ready"),
        # Long enough for > 200 requests to v1 at 120 req/s on a busy machine (3 s gave 126).
        variants.put("/spec/progressDeadlineSeconds", 6),
    ]
    target = variants.write(V2, broken, tmp_path / "v2-broken", kind_ops=SMALL_HPA)
    out = tmp_path / "out"
    argv = ["--from", str(source), "--to", str(target), "--rate", "120", "--steady-seconds", "0.5"]
    argv += ["--clients", "3", "--keepalive-clients", "3", "--propagation-delay", str(PROPAGATION)]
    argv += ["--out", str(out), "--name", "broken", "--no-plot", "--quiet"]
    assert cli_main(argv) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "failed: ProgressDeadlineExceeded" in "\n".join(lines)
    assert lines[-1].startswith("v1 -> v2: ") and lines[-1].endswith(" requests, 0 failed")
    csv_lines = (out / "broken-requests.csv").read_text().splitlines()[1:]
    assert len(csv_lines) > 200
    assert {line.split(",")[2:4] == ["ok", "v1"] for line in csv_lines} == {True}


LIVENESS_FAILS_TWICE_IN_ONE_POD = """
d={marker}
mkdir "$d/owner" 2>/dev/null && echo "$HOSTNAME" > "$d/owner/name"
[ "$(cat "$d/owner/name" 2>/dev/null)" = "$HOSTNAME" ] || exit 0
n=$(cat "$d/count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$d/count"
[ "$n" -ge 2 ]
"""


@pytest.mark.rehearsal
def test_failing_liveness_restarts_the_pod_without_touching_traffic(tmp_path):
    """One v2 pod fails its (exec) liveness probe twice: the kubelet kills and restarts it.

    Killed, a ready pod still goes preStop -> SIGTERM -> drain; its endpoint leaves once
    readiness fails after SIGTERM (one probe period) plus the propagation delay, well inside
    DRAIN_SECONDS, while the other pods serve.
    """
    marker = tmp_path / "liveness"
    marker.mkdir()
    command = ["sh", "-c", LIVENESS_FAILS_TWICE_IN_ONE_POD.format(marker=marker)]
    probes = [
        variants.put(
            f"{CONTAINER}/livenessProbe",
            {"exec": {"command": command}, "periodSeconds": 1, "failureThreshold": 2},
        ),
        variants.put(f"{CONTAINER}/readinessProbe/failureThreshold", 1),
    ]
    source = variant(tmp_path, V1, small(V1), "v1")
    target = variant(tmp_path, V2, small(V2) + probes, "v2-liveness")
    result = rehearse(source, target, options(tmp_path, tail_seconds=4.0))
    assert failures(result) == Counter()
    assert result.rollout_completed is not None
    assert [pod.restarts for pod in result.pods if pod.version == "v2"].count(1) == 1
    assert any(e.kind == "liveness failed" for e in result.events)
    assert sorted(row["restarts"] for row in findings.pod_rows(result))[-2:] == [0, 1]


# -- the same rehearsals with pods as containers of the built images ------------------------

# Passes only in the container the manifests describe: their runAsUser, a read-only root
# filesystem and a writable /tmp. As an exec startup probe it also runs through `ENGINE exec`.
RUNS_AS_THE_MANIFEST_SAYS = (
    'test "$(id -u)" = 10001 && touch /tmp/probe '
    "&& awk '$2 == \"/\" {print $4}' /proc/mounts | grep -q '^ro,'"
)


@pytest.mark.container
@pytest.mark.rehearsal
def test_rollout_in_containers_loses_no_request(tmp_path, engine, images):
    startup = variants.put(
        f"{CONTAINER}/startupProbe",
        {
            "exec": {"command": ["sh", "-c", RUNS_AS_THE_MANIFEST_SAYS]},
            "periodSeconds": 1,
            "timeoutSeconds": 10,
            "failureThreshold": 30,
        },
    )
    source = variant(tmp_path, V1, [*small(V1), startup], "v1")
    target = variant(tmp_path, V2, [*small(V2), startup], "v2")
    runtime = ContainerRuntime(engine)
    result = rehearse(source, target, options(tmp_path, rate=80.0), runtime)
    assert result.runtime == engine.name
    assert result.rollout_completed is not None
    assert failures(result) == Counter()
    assert set(record.version for record in result.records) == {"v1", "v2"}
    assert result.final_versions == ["v2", "v2"]
    assert len(result.records) > 300
    if engine.name == "podman" and netns.available() is None:
        # Each container joined its pod's network namespace: reached at its pod IP.
        assert all(ip_address(pod.address) in POD_NETWORK for pod in result.pods)
    for pod in result.pods:  # the gunicorn master is PID 1 of the pod's container
        log = (tmp_path / "out/rehearsal-pods" / f"{pod.name}.log").read_text()
        assert "[1] [INFO] Listening at: http://0.0.0.0:8080" in log, log
    leftovers = engine.command("ps", "--all", "--quiet", "--filter", f"name=^{runtime.prefix}")
    assert leftovers.split() == []


@pytest.mark.container
@pytest.mark.rehearsal
def test_in_containers_a_pre_stop_shorter_than_the_propagation_delay_loses_requests(
    tmp_path, engine, images
):
    """The timing-contract counterpart (the naive app is not in the image): the same harness
    with containers can fail."""
    result = rehearse_timing_contract(tmp_path, pre_stop=1, runtime=ContainerRuntime(engine))
    assert len(result.failed) > 0


def container_error(tmp_path, engine, capsys, image: str) -> str:
    """The one line `zdt rehearse --runtime ENGINE` prints for v2 with `image`, exit 2."""
    target = variants.write(V2, [variants.put(f"{CONTAINER}/image", image)], tmp_path / "v2")
    argv = ["--runtime", engine.name, "--to", str(target), "--quiet", "--out", str(tmp_path)]
    assert cli_main(argv) == 2
    return error_line(capsys)


@pytest.mark.container
def test_in_containers_an_image_not_built_here_is_a_one_line_error(
    tmp_path, engine, images, capsys
):
    image = "public.ecr.aws/your-alias/zero-downtime-app:not-built"
    assert container_error(tmp_path, engine, capsys, image).endswith(
        f"image {image} runs as localhost/zero-downtime-app:not-built, which {engine.name} "
        "does not have: build it with `zdt image build not-built`"
    )


@pytest.mark.container
def test_in_containers_another_image_runs_as_named_and_one_not_here_is_a_one_line_error(
    tmp_path, engine, images, capsys
):
    assert ContainerRuntime.image_for("localhost/python-base:3.11-bookworm") == (
        "localhost/python-base:3.11-bookworm"
    )  # not this repository's: as named, never mapped to a local build
    image = "registry.example.com/someone-elses-server:1.0"
    assert container_error(tmp_path, engine, capsys, image).endswith(
        f"image {image}: {engine.name} does not have it locally (the rehearsal never pulls:"
        " pull or build it first)"
    )


# -- inputs ---------------------------------------------------------------------------------


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_unknown_overlay_is_a_one_line_error(capsys):
    assert cli_main(["--from", "overlays/v1", "--to", "overlays/nope"]) == 2
    assert error_line(capsys) == "rehearsal: error: overlays/nope: no such overlay directory"


def test_overlay_without_a_deployment_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert cli_main(["--from", str(tmp_path), "--to", "overlays/v2"]) == 2
    assert "no Deployment in the rendered manifests" in error_line(capsys)


def test_same_state_twice_has_nothing_to_roll_out(capsys):
    assert cli_main(["--from", "overlays/v1", "--to", "overlays/v1", "--quiet"]) == 2
    assert "nothing to roll out" in error_line(capsys)


@pytest.fixture
def history(tmp_path) -> Path:
    """A git repository with base/ and overlays/v1, then a commit bumping the image tag."""
    repo = tmp_path / "repo"
    for part in ("base", "overlays/v1"):
        shutil.copytree(ROOT / part, repo / part)
    gitrepo.init(repo)
    gitrepo.commit_all(repo, "v1")
    kustomization = repo / "overlays/v1/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("newTag: v1", "newTag: v3"))
    gitrepo.commit_all(repo, "release v3")
    return repo


def test_git_range_renders_the_overlay_at_each_revision(history):
    before = load_revision(history, "HEAD~1", "overlays/v1")
    after = load_revision(history, "HEAD", "overlays/v1")
    assert (before.deployment.template.version, after.deployment.template.version) == ("v1", "v3")
    assert before.source == "overlays/v1@HEAD~1"
    assert before.deployment.template.template_hash != after.deployment.template.template_hash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from-rev", "HEAD~1", "--to-rev", "nope", "--overlay", "overlays/v1"],
            "unknown git revision 'nope'",
        ),
        (
            ["--from-rev", "HEAD~1", "--to-rev", "HEAD", "--overlay", "overlays/v9"],
            "overlays/v9: no kustomization.yaml at revision HEAD~1",
        ),
        (
            ["--from-rev", "HEAD~1", "--to-rev", "HEAD"],
            "--from-rev, --to-rev and --overlay go together",
        ),
        (
            ["--from-rev", "HEAD", "--to-rev", "HEAD", "--overlay", "overlays/v1"],
            "nothing to roll out",
        ),
    ],
)
def test_bad_git_range_is_a_one_line_error(history, capsys, args, message):
    assert cli_main([*args, "--repo", str(history), "--quiet"]) == 2
    assert message in error_line(capsys)


def test_bad_options_are_one_line_errors(capsys):
    assert cli_main(["--rate", "-5"]) == 2
    assert error_line(capsys) == "rehearsal: error: --rate: value out of range"
    assert cli_main(["--app", "nosuchmodule"]) == 2
    assert "--app: no module 'nosuchmodule'" in error_line(capsys)
    assert cli_main(["--app", "naive", "--runtime", "podman"]) == 2
    assert "--app naive: --runtime podman runs the image, which holds only app/" in error_line(
        capsys
    )

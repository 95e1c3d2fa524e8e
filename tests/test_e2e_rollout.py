"""The blue-green abort e2e (tools/e2e/rollout.sh, tools/e2e-rollout/), as far as it runs here.

Only a cluster with Argo Rollouts runs the real thing (e2e.yml's blue-green-abort job on kind).
What is proven here:

- the broken v2 is what it claims: the container command of tools/e2e-rollout/v2-broken, run
  against the real app, answers /status with 500 while /ready and /healthz answer 200, so the
  pods are ready and healthy and only an analysis can stop the release;
- the e2e overlays are the overlays with the blue-green component, the e2e CPU requests and,
  for v2, that one command, and nothing else; the widest moment of the blue-green rollout fits
  the 2-vCPU runner;
- rollout.sh passes shellcheck, and against a stand-in `kubectl` that plays Argo Rollouts it
  passes on an abort and fails, with one line naming why, when the active Service moved to the
  new pods, when no analysis failed, or when the load generator saw v2. Input errors are one
  line and exit status 2.
"""

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import fake_kubectl
from tests.test_e2e_kind import KIND_SYSTEM_MILLICORES, RUNNER_MILLICORES, millicores
from tools.kustomize import find, render, render_with_components
from tools.repo import ROOT
from tools.serverprocess import free_port

ROLLOUT_SH = ROOT / "tools" / "e2e" / "rollout.sh"
E2E_ROLLOUT = ROOT / "tools" / "e2e-rollout"
BLUE_GREEN = ROOT / "components" / "rollout-blue-green"
REQUESTS = ROOT / "tools" / "e2e" / "kind" / "requests"


def container(resources: list[dict]) -> dict:
    (deployment,) = find(resources, "Deployment")
    (app,) = deployment["spec"]["template"]["spec"]["containers"]
    return app


@pytest.fixture(scope="module")
def broken_command() -> list[str]:
    return container(render(E2E_ROLLOUT / "v2-broken"))["command"]


def test_the_broken_v2_is_ready_and_healthy_but_fails_status(broken_command, tmp_path):
    assert broken_command[:2] == ["python", "-c"]
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "APP_VERSION": "e2e-v2",
        "TMPDIR": str(tmp_path),
    }
    # As in the image: the working directory holds app/.
    server = subprocess.Popen(
        [sys.executable, *broken_command[1:]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ready = requests.get(url + "/ready", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the broken server never listened"
                assert server.poll() is None, server.stderr.read()
                time.sleep(0.1)
        assert ready.status_code == 200
        assert requests.get(url + "/healthz", timeout=2).status_code == 200
        status = requests.get(url + "/status", timeout=2)
        assert status.status_code == 500
        assert status.headers["X-App-Version"] == "e2e-v2"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    # The app's own gunicorn configuration: the drain in the master, then a clean exit.
    assert server.returncode == 0
    assert "draining for" in err


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_e2e_overlays_are_the_blue_green_overlays_with_e2e_requests_only(version):
    name = "v1" if version == "v1" else "v2-broken"
    e2e = render(E2E_ROLLOUT / name)
    expected = render_with_components(ROOT / "overlays" / version, [REQUESTS, BLUE_GREEN])
    if version == "v2":
        # The one difference: the broken command.
        assert "command" not in container(expected)
        restored = copy.deepcopy(e2e)
        del container(restored)["command"]
        assert restored == expected
    else:
        assert e2e == expected
    assert find(e2e, "Rollout")


def test_the_blue_green_rollout_fits_a_2_vcpu_runner():
    # Widest moment: the HPA at its maximum, a full second set of pods behind the preview
    # Service, the analysis Job and the load generator. The Argo Rollouts controller requests
    # no CPU in its release manifest.
    resources = render(E2E_ROLLOUT / "v2-broken")
    (hpa,) = find(resources, "HorizontalPodAutoscaler")
    (template,) = find(resources, "AnalysisTemplate")
    (metric,) = template["spec"]["metrics"]
    (analysis,) = metric["provider"]["job"]["spec"]["template"]["spec"]["containers"]
    job = render(ROOT / "tools" / "e2e-job")
    (loadgen,) = find(job, "Job")[0]["spec"]["template"]["spec"]["containers"]
    pods = 2 * hpa["spec"]["maxReplicas"]
    worst = (
        pods * millicores(container(resources)["resources"]["requests"]["cpu"])
        + millicores(analysis["resources"]["requests"]["cpu"])
        + millicores(loadgen["resources"]["requests"]["cpu"])
    )
    assert KIND_SYSTEM_MILLICORES + worst <= RUNNER_MILLICORES


@pytest.mark.parametrize(
    "script",
    [
        "e2e/rollout.sh",
        "e2e/run.sh",
        "e2e/lib.sh",
        "e2e/argocd.sh",
        "e2e/images.sh",
        "e2e-git-server/serve.sh",
    ],
)
def test_the_scripts_pass_shellcheck(script):
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), "-x", str(ROOT / "tools" / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


# A kubectl that plays the cluster, Argo Rollouts included, from a JSON state file. SCENARIO:
# "abort" (what must happen), "promoted" (the active Service moved to the broken pods),
# "no-analysis" (aborted, but no AnalysisRun failed), "v2-answered" (the load saw v2).
FAKE_KUBECTL = r"""
SCENARIO = os.environ["SCENARIO"]
command, objects = positional[0], positional[1:]
output = options.get("--output", "")
state["calls"] += 1
if state["stage"] == "broken":
    state["broken_calls"] += 1
aborted = state["stage"] == "broken" and state["broken_calls"] > 6
stable = "stablehash"
current = "brokenhash" if state["stage"] == "broken" else stable
progressing = "Progressing" if state["stage"] == "broken" else "Healthy"
rollout = {
    "phase": "Degraded" if aborted else progressing,
    "abort": "true" if aborted else "",
    "stableRS": stable,
    "currentPodHash": current,
    "message": "RolloutAborted: Rollout aborted update to revision 2" if aborted else "",
}
active = "brokenhash" if SCENARIO == "promoted" and state["stage"] == "broken" else stable

if command == "create":
    print("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: zero-downtime")
elif command == "apply" and "-k" in options:
    path = options["-k"].rstrip("/")
    if path.endswith("e2e-rollout/v1"):
        state["stage"] = "stable"
    elif path.endswith("e2e-rollout/v2-broken"):
        state["stage"] = "broken"
    elif path.endswith("e2e-job"):
        state["job"] = "uid-1"
elif command == "get" and objects == ["rollout", "zero-downtime-app"]:
    if state["stage"] == "empty":
        sys.exit("Error from server (NotFound): rollouts.argoproj.io not found")
    field = output.removeprefix("jsonpath={.status.").removesuffix("}")
    print(rollout[field], end="")
elif command == "get" and objects == ["service", "zero-downtime-app"]:
    selector = {"app.kubernetes.io/name": "zero-downtime-app", "rollouts-pod-template-hash": active}
    print(json.dumps({"spec": {"selector": selector}}))
elif command == "get" and objects == ["deployment", "zero-downtime-app"]:
    print("0", end="")
elif command == "get" and objects == ["analysisruns"]:
    if state["stage"] == "broken" and SCENARIO != "no-analysis":
        print("zero-downtime-app-brokenhash-2-pre Failed")
elif command == "get" and objects == ["job", "loadgen"]:
    print(state["job"], end="")
elif command == "get" and objects == ["pods"]:
    selector = options.get("--selector", "")
    if output == "json":
        print(json.dumps({"items": []}))
    elif state["job"] and selector.endswith(state["job"]):
        print("pod/loadgen-" + state["job"])
elif command == "logs" and objects == ["job/loadgen"]:
    versions = {"v1": 400, "v2": 100} if SCENARIO == "v2-answered" else {"v1": 500}
    summary = {"requests": 500, "failures": 0, "versions": versions}
    print("LOADGEN-SUMMARY " + json.dumps(summary))
with open(STATE, "w") as f:
    json.dump(state, f)
"""


@pytest.fixture
def cluster(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_kubectl.install(bin_dir, FAKE_KUBECTL)

    def run(scenario: str, *args: str) -> subprocess.CompletedProcess:
        state = tmp_path / "state.json"
        state.write_text(json.dumps({"stage": "empty", "calls": 0, "broken_calls": 0, "job": ""}))
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_KUBECTL_STATE": str(state),
            "SCENARIO": scenario,
            "OUT": str(tmp_path / "out"),
            "PYTHON": sys.executable,
            "WARMUP_SECONDS": "0",
            "COOLDOWN_SECONDS": "0",
            "POLL_SECONDS": "0.1",
            "ABORT_TIMEOUT_SECONDS": "30",
            "EXPECT_VERSION": "v1",
        }
        return subprocess.run(
            [
                "bash",
                str(ROLLOUT_SH),
                *(args or ("tools/e2e-rollout/v1", "tools/e2e-rollout/v2-broken")),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def test_an_aborted_rollout_with_v1_serving_everything_passes(cluster):
    result = cluster("abort")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aborted: RolloutAborted: Rollout aborted update to revision 2" in result.stdout
    assert "the active Service still selects stablehash" in result.stdout
    assert "PASS: 500 requests, 0 failed" in result.stdout


@pytest.mark.parametrize(
    "scenario, reason",
    [
        ("promoted", "FAIL: active Service selects brokenhash, not the stable pods (stablehash)"),
        ("no-analysis", "FAIL: no failed AnalysisRun for revision brokenhash"),
        ("v2-answered", "answers from other versions than ['v1']: {'v2': 100}"),
    ],
)
def test_the_checks_fail_when_the_broken_release_got_through(cluster, scenario, reason):
    result = cluster(scenario)
    assert result.returncode == 1
    assert reason in result.stdout

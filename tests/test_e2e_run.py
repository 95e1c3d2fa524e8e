"""tools/e2e/run.sh against a stand-in kubectl: the load generator is waited for correctly.

Only a real cluster runs the rollout (e2e.yml on kind). What can be shown here is the script's
own logic, with a fake `kubectl` on PATH that keeps a tiny cluster state in a JSON file and
answers the way kubectl does where it matters:

- the Job controller creates a Job's pod a moment after `kubectl apply`, not at once;
- `kubectl wait --for=condition=Ready pod --selector S` fails at once with "no matching
  resources found" when no pod matches S yet;
- a Job deleted without foreground propagation disappears while its pod is still terminating.

run.sh passes on a fresh cluster and on a re-run that finds the previous Job; the same script with
the old three lines (delete, apply, wait on `job-name=loadgen`) fails on the same stand-in, so
the check can fail. The script's input errors are one line and exit status 2.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fake_kubectl
from tools.repo import ROOT

RUN_SH = ROOT / "tools" / "e2e" / "run.sh"

FAKE_KUBECTL = r"""
UID = "batch.kubernetes.io/controller-uid"


def matching(selector):
    key, _, value = selector.partition("=")
    return [p for p in state["pods"] if p["labels"].get(key) == value]


# Time passes with every call: the Job controller creates a pod two calls after the Job,
# terminating pods go after a while.
for pod in state["pods"]:
    pod["age"] += 1
state["pods"] = [p for p in state["pods"] if p["age"] < p.get("gone_at", p["age"] + 1)]
for job in state["jobs"].values():
    job["calls"] += 1
    if job["calls"] == 3:
        labels = {"job-name": "loadgen", UID: job["uid"]}
        state["pods"].append({"name": "loadgen-" + job["uid"], "labels": labels, "age": 0})

command, objects = positional[0], positional[1:]
if command == "create":
    print("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: zero-downtime")
elif command == "apply":
    if options.get("-k", "").rstrip("/").endswith("tools/e2e/../e2e-job"):
        state["uids"] += 1
        state["jobs"]["loadgen"] = {"uid": "uid-%d" % state["uids"], "calls": 0}
elif command == "delete" and objects == ["job", "loadgen"]:
    job = state["jobs"].pop("loadgen", None)
    for pod in matching(UID + "=" + job["uid"]) if job else []:
        if options.get("--cascade") == "foreground":
            state["pods"].remove(pod)  # the Job goes only after its pods
        else:
            pod["gone_at"] = pod["age"] + 8  # the Job is gone, its pod still terminating
elif command == "get" and objects[:1] == ["job"]:
    print(state["jobs"]["loadgen"]["uid"], end="")
elif command == "get" and objects[:1] == ["pods"]:
    pods = matching(options["--selector"])
    if options.get("--output") == "json":
        print(json.dumps({"items": []}))
    else:
        print("\n".join("pod/" + p["name"] for p in pods))
elif command == "wait" and options.get("--for") == "condition=Ready":
    pods = matching(options["--selector"])
    if not pods:
        finish(1, "error: no matching resources found")
    current = state["jobs"].get("loadgen", {}).get("uid")
    stale = [p["name"] for p in pods if p["labels"][UID] != current]
    if stale:
        # A previous run's pod: completed or terminating, it never turns Ready again.
        finish(1, "error: timed out waiting for the condition on pods/" + stale[0])
    print("pod/%s condition met" % pods[0]["name"])
elif command == "logs" and objects == ["job/loadgen"]:
    summary = {"requests": 500, "failures": 0, "versions": {"v1": 250, "v2": 250}}
    print("LOADGEN-SUMMARY " + json.dumps(summary))
finish()
"""

# The lines run.sh had before: apply, then wait on any pod named by the Job, at once.
OLD_START = """k delete job loadgen --ignore-not-found --wait=true
kubectl apply -k "$HERE/../e2e-job"
k wait --for=condition=Ready pod --selector job-name=loadgen --timeout=180s
"""


@pytest.fixture
def cluster(tmp_path):
    """A fake kubectl on PATH and its state; returns a function that runs a run.sh copy."""
    bin_dir = tmp_path / "bin"
    fake_kubectl.install(bin_dir, FAKE_KUBECTL)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"jobs": {}, "pods": [], "uids": 0}))

    def run(script: Path = RUN_SH, *args: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_KUBECTL_STATE": str(state),
            "OUT": str(tmp_path / "out"),
            "PYTHON": sys.executable,
            "WARMUP_SECONDS": "0",
            "COOLDOWN_SECONDS": "0",
            "POLL_SECONDS": "0.1",
            "EXPECT_VERSIONS": "v1 v2",
        }
        return subprocess.run(
            ["bash", str(script), *(args or ("overlays/v1", "overlays/v2"))],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    run.state = state
    return run


def old_script(tmp_path: Path) -> Path:
    """run.sh with its load generator start as it was before (the e2e directory kept)."""
    text = RUN_SH.read_text().replace("start_loadgen\n", OLD_START, 1)
    text = text.replace('HERE=$(cd "$(dirname "$0")" && pwd)', f"HERE={RUN_SH.parent}")
    assert OLD_START in text
    path = tmp_path / "old-run.sh"
    path.write_text(text)
    return path


def test_run_waits_for_the_new_pod_on_a_fresh_cluster(cluster):
    result = cluster()

    assert result.returncode == 0, result.stdout + result.stderr
    calls = (cluster.state.parent / "state.json.log").read_text().splitlines()
    waits = [
        c for c in calls if c.startswith("--namespace zero-downtime wait --for=condition=Ready")
    ]
    assert waits == [
        "--namespace zero-downtime wait --for=condition=Ready pod "
        "--selector batch.kubernetes.io/controller-uid=uid-1 --timeout=180s"
    ]


def test_a_rerun_deletes_the_old_job_with_its_pods_and_waits_for_the_new_one(cluster):
    assert cluster().returncode == 0

    result = cluster()

    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads(cluster.state.read_text())
    assert [p["labels"]["batch.kubernetes.io/controller-uid"] for p in state["pods"]] == ["uid-2"]


def test_the_old_start_fails_at_once_when_the_pod_does_not_exist_yet(cluster, tmp_path):
    result = cluster(old_script(tmp_path))

    assert result.returncode != 0
    assert "no matching resources found" in result.stderr


def test_the_old_start_waits_on_the_previous_runs_pod(cluster, tmp_path):
    # A re-run: the previous Job's pod is still there, terminating, and matches job-name=loadgen.
    assert cluster().returncode == 0

    result = cluster(old_script(tmp_path))

    assert result.returncode != 0
    assert "loadgen-uid-1" in result.stderr


@pytest.mark.parametrize("script", ["run.sh", "rollout.sh", "argocd.sh"])
@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((), "got 0 arguments"),
        (("overlays/v1",), "got 1 arguments"),
        (("overlays/v1", "nowhere"), "nowhere"),
    ],
    ids=["no arguments", "one argument", "missing overlay"],
)
def test_bad_input_is_one_line_and_status_2(script, args, named):
    """The cluster scripts check their two overlay arguments the same way (lib.sh)."""
    result = subprocess.run(
        ["bash", str(RUN_SH.with_name(script)), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr

"""The Argo CD e2e (tools/e2e/argocd.sh, tools/e2e-git-server/, tools/e2e/argocd_app.py), as
far as it runs here.

Only e2e.yml's argocd job runs Argo CD on kind. What is proven here:

- the git server's own script (tools/e2e-git-server/serve.sh, shipped in its ConfigMap) serves a
  repository on loopback with the real `git daemon`: `zdt push` pushes to it, a clone reads it,
  and a pre-receive hook's refusal reaches the pusher;
- argocd_app.py changes the repository URL of argocd/'s manifests and nothing else;
- argocd.sh, against stand-ins for `kubectl` and `argocd` that play the cluster and Argo CD,
  with that git server behind the stand-in's `kubectl port-forward`: the two commits reach the
  git server with `zdt push`, "Argo CD" resolves `main` there with `git ls-remote` and renders
  the commit it syncs with the real kustomize, so the image the load generator sees is the one
  the pushed commit names; the script passes, also when Argo CD's automated sync races its
  `argocd app sync`, and fails, with one line naming why, when Argo CD never syncs the release,
  when a request failed, or when the history lacks a commit.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests import fake_kubectl, gitrepo
from tests.zdt import zdt
from tools.e2e import argocd_app
from tools.git import run as git_run
from tools.kustomize import find, render
from tools.repo import ROOT
from tools.serverprocess import free_port
from tools.validate.schema import NEWEST_KUBERNETES

ARGOCD_SH = ROOT / "tools" / "e2e" / "argocd.sh"
GIT_SERVER = ROOT / "tools" / "e2e-git-server"
SERVE_SH = GIT_SERVER / "serve.sh"
IMAGE = "zero-downtime-app"
REGISTRY = "kind-registry:5000/zero-downtime-app"
DIGESTS = {"v1": "sha256:" + "1" * 64, "v2": "sha256:" + "2" * 64}
REQUESTS = "tools/e2e/kind/requests"
PATH = os.environ["PATH"]


class GitServer(contextlib.AbstractContextManager):
    """serve.sh on 127.0.0.1, started and awaited: git daemon says "Ready to rumble"."""

    def __init__(self, root: Path, port: int):
        env = {**os.environ, "GIT_ROOT": str(root), "LISTEN": "127.0.0.1", "GIT_PORT": str(port)}
        self.url = f"git://127.0.0.1:{port}/zero-downtime-gitops.git"
        self.repository = root / "zero-downtime-gitops.git"
        self.process = subprocess.Popen(
            ["sh", str(SERVE_SH)], env=env, stderr=subprocess.PIPE, text=True
        )
        for line in self.process.stderr:
            if "Ready to rumble" in line:
                return
        raise AssertionError(f"git daemon exited with {self.process.wait()} before listening")

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait(timeout=30)


def test_the_git_server_serves_what_zdt_push_pushes(tmp_path):
    work = gitrepo.init(tmp_path / "work")
    (work / "overlay.txt").write_text("tag: one\n")
    gitrepo.commit_all(work, "seed")
    (work / "overlay.txt").write_text("tag: two\n")

    with GitServer(tmp_path / "srv", free_port()) as server:
        result = zdt(
            "push", "--remote", server.url, "--message", "release: two", "--repo", str(work),
            "--", "overlay.txt", env=gitrepo.ISOLATED,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        gitrepo.git(tmp_path, "clone", "--quiet", server.url, "clone")

    assert (tmp_path / "clone" / "overlay.txt").read_text() == "tag: two\n"
    assert gitrepo.git(tmp_path / "clone", "log", "--format=%s|%an") == (
        "release: two|github-actions[bot]\nseed|Test Author"
    )


def test_a_refusal_of_the_git_server_reaches_zdt_push(tmp_path):
    work = gitrepo.init(tmp_path / "work")
    (work / "overlay.txt").write_text("tag: two\n")

    with GitServer(tmp_path / "srv", free_port()) as server:
        hook = server.repository / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'main is protected here' >&2\nexit 1\n")
        hook.chmod(0o755)
        result = zdt(
            "push", "--remote", server.url, "--message", "release: two", "--repo", str(work),
            "--", "overlay.txt", env=gitrepo.ISOLATED,
        )  # fmt: skip

    assert result.returncode == 1
    assert "remote: main is protected here" in result.stderr
    assert "failed (pre-receive hook declined); not retried" in result.stderr


def test_the_cluster_runs_this_very_script_with_git_daemon():
    resources = render(GIT_SERVER)
    for resource in resources:  # as kubectl apply's strict field validation would
        kubernetes_validate.validate(resource, NEWEST_KUBERNETES, strict=True)
    (config_map,) = find(resources, "ConfigMap")
    assert config_map["data"]["serve.sh"] == SERVE_SH.read_text()
    (deployment,) = find(resources, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["sh", "/scripts/serve.sh"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/scripts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (service,) = find(resources, "Service")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 9418  # git://'s default port, which the repository URL leaves out
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert f"REPO_URL=git://{host}/$REPOSITORY" in ARGOCD_SH.read_text()


# argocd_app.py: only the repository URL changes.

ARGOCD_DIR = ROOT / "argocd"


def test_only_the_repository_url_is_replaced():
    url = "git://git-server.git-server.svc.cluster.local/zero-downtime-gitops.git"
    project, application = argocd_app.with_repository(ARGOCD_DIR, url)

    original_project = yaml.safe_load((ARGOCD_DIR / "project.yaml").read_text())
    original_application = yaml.safe_load((ARGOCD_DIR / "application.yaml").read_text())
    assert project["spec"].pop("sourceRepos") == [url]
    original_project["spec"].pop("sourceRepos")
    assert project == original_project
    assert application["spec"]["source"].pop("repoURL") == url
    original_application["spec"]["source"].pop("repoURL")
    assert application == original_application


def test_the_script_prints_both_manifests_for_kubectl():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "e2e" / "argocd_app.py"), str(ARGOCD_DIR), "git://x/y.git"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert kinds == ["AppProject", "Application"]


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: (d / "project.yaml").unlink(), "no AppProject"),
        (
            lambda d: (d / "project.yaml").write_text(
                (d / "project.yaml").read_text().replace("example-org", "other-org")
            ),
            "spec.sourceRepos",
        ),
        (
            lambda d: (d / "application.yaml").write_text(
                (d / "application.yaml").read_text().replace("repoURL:", "repoUrl:")
            ),
            "no spec.source.repoURL",
        ),
        (lambda d: shutil.copy(d / "project.yaml", d / "second.yaml"), "a second AppProject"),
    ],
    ids=["no project", "project disagrees", "no repoURL", "two projects"],
)
def test_bad_manifests_are_one_line_and_status_2(tmp_path, change, named):
    directory = tmp_path / "argocd"
    shutil.copytree(ARGOCD_DIR, directory)
    change(directory)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "e2e" / "argocd_app.py"), str(directory), "git://x/y.git"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert named in result.stderr


# argocd.sh against stand-ins. Both play one cluster from one state file (tests/fake_kubectl.py).
# "Argo CD" resolves `main` with the real git at the Application's repoURL, renders the overlay
# of that commit with the real kustomize, and the Deployment then serves that image's tag.
# SCENARIO: "release" (what must happen), "busy" (automated sync starts just before the first
# `argocd app sync`), "no-auto-sync" (Argo CD never syncs the release), "failing" (requests
# fail during the rollout), "forgetful" (the history keeps the newest sync only).
ARGO_CD = r"""
import subprocess, tempfile

SCENARIO = os.environ["SCENARIO"]


# The cluster's DNS and the Service: the in-cluster name reaches the git server.
SERVER = "git://127.0.0.1:%s/" % os.environ["GIT_LOCAL_PORT"]
CLUSTER_DNS = {**os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{SERVER}.insteadOf",
               "GIT_CONFIG_VALUE_0": "git://git-server.git-server.svc.cluster.local/"}


def git(*args, **kwargs):
    return subprocess.run(["git", *args], env=CLUSTER_DNS, **kwargs)


def source():
    return state["app"]["spec"]["source"]


def resolve():
    main = "refs/heads/" + source()["targetRevision"]
    out = git("ls-remote", source()["repoURL"], main, capture_output=True, text=True)
    if out.returncode or not out.stdout:
        finish(20, "rpc error: unable to resolve 'main' to a commit SHA: " + out.stderr)
    return out.stdout.split()[0]


def image_at(revision):
    mirror = STATE + ".mirror"
    if not os.path.isdir(mirror):
        git("init", "--quiet", "--bare", mirror, check=True)
    git("-C", mirror, "fetch", "--quiet", source()["repoURL"], "+refs/heads/*:refs/heads/*",
        check=True)
    sys.path.insert(0, os.environ["REPO_ROOT"])
    from tools.kustomize import find, render

    with tempfile.TemporaryDirectory() as tree:
        archive = git("-C", mirror, "archive", revision, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        (deployment,) = find(render(os.path.join(tree, source()["path"])), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    state["cpu"] = container["resources"]["requests"]["cpu"]
    return container["image"]


def sync():
    revision = resolve()
    image = image_at(revision)
    state["synced"] = revision
    state["tag"] = image.split("@")[0].rsplit(":", 1)[1]
    state["history"].append({"id": len(state["history"]), "revision": revision})
    if SCENARIO == "forgetful":
        state["history"] = state["history"][-1:]
    if state["load"] is not None:
        state["load"].append(state["tag"])


if "--port-forward" not in os.environ.get("ARGOCD_OPTS", ""):
    finish(20, "Argo CD server address unspecified")
command = args[:2]
if args[0] == "login":
    password = args[args.index("--password") + 1]
    if args[args.index("--username") + 1] != "admin" or password != state["password"]:
        finish(20, "Invalid username or password")
    state["logged_in"] = True
    print("'admin:login' logged in successfully")
elif not state["logged_in"]:
    finish(20, "Unauthenticated: no session information")
elif command == ["app", "sync"]:
    if SCENARIO == "busy" and not state["raced"]:
        state["raced"] = True
        sync()  # automated sync, a moment earlier
        finish(20, "FailedPrecondition desc = another operation is already in progress")
    sync()
    print("Operation: Sync\nPhase: Succeeded")
elif command == ["app", "wait"]:
    if "--health" in args and not state["synced"]:
        finish(20, "timed out waiting for app health")
elif command == ["app", "get"]:
    if "--refresh" in args and SCENARIO != "no-auto-sync" and resolve() != state["synced"]:
        sync()
    if "json" in args:
        result = {"revision": state["synced"]}
        print(json.dumps({"status": {
            "sync": {"status": "Synced", "revision": state["synced"]},
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded", "syncResult": result},
        }}))
    else:
        print("Name: argocd/zero-downtime-app\nSync Status: Synced to main")
elif command == ["app", "history"]:
    print("SOURCE  " + source()["repoURL"] + "\nID  DATE  REVISION")
    for entry in state["history"]:
        print("%d  2026-11-26 10:00:00 +0000 UTC  main (%s)" % (entry["id"], entry["revision"][:7]))
finish()
"""

KUBECTL = r"""
import base64

import yaml

SCENARIO = os.environ["SCENARIO"]


command, objects = positional[0], positional[1:]
selector = options.get("--selector", "")
if command == "port-forward":
    # The git server "in the cluster": serve.sh itself, on the local end of the port-forward.
    local_port = objects[1].split(":")[0]
    os.setsid()  # its own process group, for the test's clean-up
    with open(STATE + ".forward.pid", "w") as f:
        f.write(str(os.getpid()))
    lock.close()
    env = {**os.environ, "GIT_ROOT": state["git_root"], "LISTEN": "127.0.0.1",
           "GIT_PORT": local_port}
    os.execvpe("sh", ["sh", os.environ["SERVE_SH"]], env)
elif command == "apply" and options.get("-f") == "-":
    for doc in yaml.safe_load_all(stdin):
        state["app" if doc["kind"] == "Application" else "project"] = doc
elif command == "apply" and options.get("-k", "").endswith("e2e-job"):
    state["job"] += 1
    state["load"] = [state["tag"]]
elif command == "get" and objects == ["secret", "argocd-initial-admin-secret"]:
    print(base64.b64encode(state["password"].encode()).decode(), end="")
elif command == "get" and objects == ["job", "loadgen"]:
    print("uid-%d" % state["job"], end="")
elif command == "get" and objects == ["pods"]:
    if options.get("--output") == "json":
        print(json.dumps({"items": []}))
    elif state["job"] and selector.endswith("uid-%d" % state["job"]):
        print("pod/loadgen-%d" % state["job"])
elif command == "logs" and objects == ["job/loadgen"]:
    versions = {version: 100 for version in state["load"] or []}
    failures = 3 if SCENARIO == "failing" else 0
    summary = {"requests": 100 * len(versions), "failures": failures, "versions": versions}
    print("LOADGEN-SUMMARY " + json.dumps(summary))
finish()
"""


@pytest.fixture
def cluster(tmp_path):
    """A clone of this repository's overlays and argocd/ with the e2e's images pinned (as the
    build step leaves them), stand-ins for kubectl and argocd on PATH, and a function that runs
    argocd.sh in that clone."""
    work = gitrepo.init(tmp_path / "work")
    for part in ("base", "overlays", "argocd", REQUESTS):
        shutil.copytree(ROOT / part, work / part)
    gitrepo.commit_all(work, "the checkout")
    for version, digest in DIGESTS.items():
        result = zdt(
            "bump", f"overlays/{version}", "--image", IMAGE, "--new-name", REGISTRY,
            "--tag", version, "--digest", digest, cwd=work,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    bin_dir = tmp_path / "bin"
    fake_kubectl.install(bin_dir, KUBECTL)
    fake_kubectl.install(bin_dir, ARGO_CD, name="argocd")
    state = tmp_path / "state.json"
    initial = {"password": "s3cret", "logged_in": False, "raced": False, "app": None,
               "project": None, "synced": None, "tag": None, "history": [], "load": None,
               "job": 0, "git_root": str(tmp_path / "git")}  # fmt: skip
    state.write_text(json.dumps(initial))
    port = free_port()

    def run(scenario: str = "release", **settings: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            **gitrepo.ISOLATED,
            "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), PATH]),
            "FAKE_KUBECTL_STATE": str(state),
            "REPO_ROOT": str(ROOT),
            "SERVE_SH": str(SERVE_SH),
            "SCENARIO": scenario,
            "OUT": str(tmp_path / "out"),
            "PYTHON": sys.executable,
            "ZDT": str(Path(sys.executable).with_name("zdt")),
            "GIT_LOCAL_PORT": str(port),
            "COMPONENT": REQUESTS,
            "EXPECT_VERSIONS": "v1 v2",
            "MIN_REQUESTS": "100",
            "WARMUP_SECONDS": "0",
            "COOLDOWN_SECONDS": "0",
            "POLL_SECONDS": "0.1",
            "SYNC_TIMEOUT_SECONDS": "3",
            **settings,
        }
        env.pop("ARGOCD_OPTS", None)
        return subprocess.run(
            ["bash", str(ARGOCD_SH), "overlays/v1", "overlays/v2"],
            cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def forward_answers() -> bool:
        url = f"git://127.0.0.1:{port}/zero-downtime-gitops.git"
        return git_run(tmp_path, "ls-remote", url, env=gitrepo.ISOLATED).returncode == 0

    run.state = state
    run.forward_answers = forward_answers
    yield run
    # The script stops its port-forward (the tests check it); should it not, it goes here.
    if forward_answers():
        os.killpg(int(Path(f"{state}.forward.pid").read_text()), signal.SIGTERM)


def test_a_release_synced_by_argo_cd_under_load_passes(cluster):
    result = cluster()

    assert result.returncode == 0, result.stdout + result.stderr
    state = json.loads(cluster.state.read_text())
    # The git server holds the checkout and the two commits zdt push made on top of it.
    served = cluster.state.parent / "git" / "zero-downtime-gitops.git"
    log = gitrepo.git(served, "log", "--format=%s|%an", "main").splitlines()
    assert log == [
        "release: zero-downtime-app v2 to overlays/v2 [skip ci]|github-actions[bot]",
        "e2e: zero-downtime-app v1 in overlays/v2|github-actions[bot]",
        "the checkout|Test Author",
    ]
    first, release = gitrepo.git(served, "rev-list", "--max-count=2", "main").split()[::-1]
    assert [entry["revision"] for entry in state["history"]] == [first, release]
    # What "Argo CD" rendered from the served commit: v2's image, the e2e CPU request.
    assert state["tag"] == "v2"
    assert state["cpu"] == "50m"
    assert state["load"] == ["v1", "v2"]
    # The Application and the project as argocd/ has them, but for the repository URL.
    url = "git://git-server.git-server.svc.cluster.local/zero-downtime-gitops.git"
    assert state["app"] == argocd_app.with_repository(ROOT / "argocd", url)[1]
    assert state["project"] == argocd_app.with_repository(ROOT / "argocd", url)[0]
    assert f"argocd app history lists {first} and {release}" in result.stdout
    calls = Path(str(cluster.state) + ".log").read_text().splitlines()
    assert "--namespace git-server port-forward service/git-server" in "\n".join(calls)
    assert not cluster.forward_answers()  # the port-forward is stopped


def test_an_automated_sync_just_before_argocd_app_sync_is_waited_for(cluster):
    result = cluster("busy")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "another operation is already in progress" in result.stdout
    calls = Path(str(cluster.state) + ".log").read_text().splitlines()
    assert "app wait zero-downtime-app --operation --timeout 300" in calls


@pytest.mark.parametrize(
    "scenario, named",
    [
        ("no-auto-sync", "still waiting for Argo CD to sync"),
        ("failing", "FAIL: 200 requests, 3 failed"),
        ("forgetful", "FAIL: argocd app history does not list"),
    ],
    ids=["never synced", "failed requests", "history without the first commit"],
)
def test_the_script_fails_when_the_release_did_not_go_through_argo_cd(cluster, scenario, named):
    result = cluster(scenario)

    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not cluster.forward_answers()

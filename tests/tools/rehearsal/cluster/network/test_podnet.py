"""The pod network a rehearsal chooses, and what is left of it when a run is killed outright."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.image.engine import Engine
from tools.rehearsal.cluster.network import netns, podnet
from tools.rehearsal.cluster.node.cgroups import PARENT_PREFIX, CpuCgroups
from tools.rehearsal.cluster.node.container_runtime import ContainerRuntime
from tools.rehearsal.errors import RehearsalError
from tools.repo import ROOT

needs_namespaces = pytest.mark.skipif(
    netns.available() is not None, reason=f"no network namespaces: {netns.available()}"
)


def test_loopback_is_the_fallback_and_says_why(monkeypatch):
    monkeypatch.setattr(netns, "available", lambda: "not root")
    network = podnet.choose("auto", "127.0.0.0/24")
    assert isinstance(network, podnet.LoopbackNetwork)
    assert network.describe() == "loopback: pods are 127.0.0.x addresses of this host (not root)"
    with pytest.raises(RehearsalError, match="--network namespaces: not possible here: not root"):
        podnet.choose("namespaces", "127.0.0.0/24")


@needs_namespaces
def test_namespaces_are_the_default_where_possible():
    assert isinstance(podnet.choose("auto", "127.0.0.0/24"), podnet.NamespaceNetwork)
    assert isinstance(podnet.choose("loopback", "127.0.0.0/24"), podnet.LoopbackNetwork)


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def namespace_of(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def namespaces_in_use() -> set[str]:
    return {ns for pid in os.listdir("/proc") if pid.isdigit() and (ns := namespace_of(pid))}


def processes_in(namespaces: set[str]) -> list[str]:
    """The PID and command line of each process whose network namespace is in `namespaces`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if namespace_of(pid) in namespaces:
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                found.append(f"{pid} {command.decode(errors='replace').strip()}")
    return found


@needs_namespaces
@pytest.mark.rehearsal
def test_a_killed_run_leaves_no_namespace_link_or_process(tmp_path):
    host = namespace_of("self")
    run = subprocess.Popen(
        [sys.executable, "-m", "tools", "rehearse", "--out", str(tmp_path), "--time-limit", "120"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        for line in run.stdout:  # until the pods serve and the load runs
            if "load:" in line:
                break
        else:
            pytest.fail(f"the run ended before its load started: {run.wait()}")
        made = descendants(run.pid)
        theirs = {namespace_of(pid) for pid in made} - {None, host}
        assert len(theirs) >= 1 + 3 + 3  # the cluster's, each node's, each pod's
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # as the OOM killer or `kill -9` ends it
        run.wait()
    # Each process the run started dies on its parent's death (PR_SET_PDEATHSIG), the ones
    # started after the count too (a kube-proxy sync, a new pod's server). A server's own
    # children do not: a gunicorn worker sees its master gone within a second and then stops as
    # on SIGTERM, waiting up to its GRACEFUL_TIMEOUT (20 s) for connections whose client end
    # died with a namespace that no longer carries the FIN to it. The namespaces go with the
    # last process.
    deadline = time.monotonic() + 20 + 10
    while time.monotonic() < deadline and (
        any(alive(pid) for pid in made) or theirs & namespaces_in_use()
    ):
        time.sleep(0.05)
    assert [pid for pid in made if alive(pid)] == []
    # With its namespaces the kernel removed their links, addresses, routes and iptables rules;
    # none was ever in the host's own namespace.
    assert processes_in(theirs) == []
    assert "cni0" not in {name for _, name in socket.if_nameindex()}
    # The run's cgroups (its pods' CPU limits) outlive it, empty, until the next run's sweep of
    # dead runs' ones removes them: that sweep, here.
    cgroups = CpuCgroups.find()
    if isinstance(cgroups, CpuCgroups):
        cgroups.remove_stale()
        assert list(cgroups.base.glob(f"{PARENT_PREFIX}{run.pid}-*")) == []


def test_podman_containers_join_the_pods_namespaces_and_docker_ones_stay_on_loopback():
    assert ContainerRuntime.named("podman").pod_network_problem() is None
    assert ContainerRuntime.named("docker").pod_network_problem() == (
        "docker cannot join a network namespace by its file"
    )
    assert "--network" not in Engine.named("docker").run_args("image", name="n")
    args = Engine.named("podman").run_args("image", name="n", network="ns:/proc/7/ns/net")
    assert args[args.index("--network") + 1] == "ns:/proc/7/ns/net"
    assert "--publish" not in args

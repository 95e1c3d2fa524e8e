"""How a pod's container runs: the seam between the emulated kubelet and real processes.

A runtime starts a container for a Launch (the pod's address, port, environment and version)
and returns a handle to signal it, kill it, wait for it and exec in it. ProcessRuntime runs
`python -m <module>` directly on the pod's loopback address, in a cgroup with the container's CPU
limit where the kernel lets it (node/cgroups.py); ContainerRuntime
(node/container_runtime.py) runs the built image with podman or docker, publishing
<address>:<port> to the container's port.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from functools import partial
from pathlib import Path

from tools.rehearsal.cluster.node import probes
from tools.rehearsal.cluster.node.cgroups import CGROUP_ROOT, Cgroup, CpuCgroups
from tools.rehearsal.cluster.node.container import Container, Launch, wait_or_kill
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.pod import Probe
from tools.rehearsal.manifests.workload import Workload
from tools.repo import ROOT
from tools.servers import SERVERS, server_module

PR_SET_PDEATHSIG = 1


class Runtime(ABC):
    name = "runtime"

    def check(self, workloads: list[Workload]) -> None:
        """Raise RehearsalError, before anything starts, when these pods cannot run here."""
        return

    @abstractmethod
    async def start(self, launch: Launch) -> Container: ...

    async def probe(self, probe: Probe, address: str, container: Container) -> bool:
        """One probe attempt, as the kubelet makes it (tests' fake runtimes answer for their
        fake containers)."""
        return await probes.attempt(probe, address, container)

    async def cleanup(self) -> None:
        """After the run (even a failed one), once every container has been killed."""
        return  # nothing outlives a killed process

    def notes(self) -> list[str]:
        """What the run's result should say about how the containers ran."""
        return []


class ProcessContainer(Container):
    def __init__(
        self, process: asyncio.subprocess.Process, env: dict[str, str], cgroup: Cgroup | None
    ) -> None:
        self.process = process
        self.env = env
        self.cgroup = cgroup

    def is_alive(self) -> bool:
        return self.process.returncode is None

    async def signal(self, signum: int) -> None:
        if self.is_alive():
            self.process.send_signal(signum)

    async def kill(self) -> None:
        # The server runs in its own process group, like a container's process tree; the group
        # may outlive its leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def wait(self) -> int:
        return await self.process.wait()

    async def exec(self, command: tuple[str, ...], timeout: float) -> int | None:
        # Like `runc exec`, in the container's cgroup: an exec probe is throttled with the server.
        process = await spawn(
            command,
            self.cgroup,
            env=self.env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await wait_or_kill(process, timeout)


# Looked up once, here in the parent. die_with_parent runs between fork and exec in a child of
# a process with threads (asyncio's executor, the load reader): loading a library or looking up
# a symbol there takes the dynamic loader's lock, which another thread may have held at the
# fork, and would then never be released.
_prctl = ctypes.CDLL(None).prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong)
_prctl.restype = ctypes.c_int


def die_with_parent() -> None:
    """Ask Linux to SIGKILL the server if the rehearsal dies (its workers then exit too).

    A preexec_fn: it only calls the function resolved at import.
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def join_cgroup_and_die_with_parent(cgroup_procs: int) -> None:
    """die_with_parent, in the cgroup whose cgroup.procs the parent opened as `cgroup_procs`:
    the process joins it before exec, so everything it forks later is in it too.

    A preexec_fn: only a write on a descriptor opened in the parent (b"0": the writer itself).
    """
    os.write(cgroup_procs, b"0")
    die_with_parent()


async def spawn(
    argv: tuple[str, ...], cgroup: Cgroup | None, **options
) -> asyncio.subprocess.Process:
    """Start a process (with die_with_parent) in `cgroup`, or where the rehearsal runs."""
    if cgroup is None:
        return await asyncio.create_subprocess_exec(*argv, preexec_fn=die_with_parent, **options)
    procs = os.open(cgroup.procs, os.O_WRONLY)  # closed in the child at exec (O_CLOEXEC)
    try:
        return await asyncio.create_subprocess_exec(
            *argv, preexec_fn=partial(join_cgroup_and_die_with_parent, procs), **options
        )
    except subprocess.SubprocessError as error:  # the kernel refused the move
        raise OSError(f"cannot start {argv[0]} in {cgroup.path}: {error}") from None
    finally:
        os.close(procs)


class ProcessRuntime(Runtime):
    """Each container is the server's `python -m <module>` bound to the pod's loopback address."""

    name = "process"

    def module_for(self, command: tuple[str, ...], args: tuple[str, ...]) -> str | None:
        """The module a container runs: the runtime's server, or one the manifest names as
        `python -m MODULE` among the servers (a fixture release); None for anything else."""
        argv = (*command, *args)
        if not argv:
            return self.module
        if len(argv) == 3 and argv[0] in ("python", "python3") and argv[1] == "-m":
            return argv[2] if argv[2] in SERVERS.values() else None
        return None

    def check(self, workloads: list[Workload]) -> None:
        # A process runs a server module itself; of resources.limits only cpu is enforced.
        for workload in workloads:
            template = workload.deployment.template
            if self.module_for(template.command, template.args) is None:
                raise RehearsalError(
                    f"{workload.source}: the container's command/args are not `python -m` one"
                    f" of {', '.join(SERVERS.values())}: only --runtime podman or docker runs"
                    " them"
                )

    def __init__(
        self, server: str = "app", python: str = sys.executable, cgroup_root: Path = CGROUP_ROOT
    ) -> None:
        self.module = server_module(server)
        self.python = python
        self.cgroup_root = cgroup_root
        self.cpu: CpuCgroups | str | None = None  # the CPU controller, or why there is none
        self.cpu_failure: str | None = None  # why a cgroup could not be created

    def cgroup_for(self, launch: Launch) -> Cgroup | None:
        """A new cgroup with the container's CPU limit (None: no limit, or none possible)."""
        if launch.cpu_limit is None:
            return None
        if self.cpu is None:
            self.cpu = CpuCgroups.find(self.cgroup_root)
        if isinstance(self.cpu, str) or self.cpu_failure is not None:
            return None
        try:
            return self.cpu.create(launch.pod, launch.cpu_limit)
        except OSError as error:
            self.cpu_failure = f"cannot create a cgroup under {self.cpu.base}: {error.strerror}"
            return None

    def notes(self) -> list[str]:
        if self.cpu is None:
            return []
        if isinstance(self.cpu, str) or self.cpu_failure is not None:
            why = self.cpu if isinstance(self.cpu, str) else self.cpu_failure
            return [f"resources.limits.cpu NOT enforced: {why}"]
        return [f"resources.limits.cpu enforced through {self.cpu.describe()}"]

    def environment(self, launch: Launch) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "HOSTNAME": launch.pod,
            "APP_VERSION": launch.version,  # the image bakes its version in
            **launch.env,
        }
        # In a pod the server listens on 0.0.0.0 of its own network namespace; here that is
        # the pod's loopback address.
        env["HOST"] = launch.address
        # And its /tmp is the pod's own emptyDir: a directory of the run, kept with its log.
        env["TMPDIR"] = str(launch.log_path.with_suffix(".tmp"))
        return env

    async def start(self, launch: Launch) -> Container:
        env = self.environment(launch)
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        Path(env["TMPDIR"]).mkdir(exist_ok=True)
        cgroup = self.cgroup_for(launch)
        with open(launch.log_path, "ab") as log:
            process = await spawn(
                (self.python, "-m", self.module_for(launch.command, launch.args)),
                cgroup,
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return ProcessContainer(process, env, cgroup)

    async def cleanup(self) -> None:
        if isinstance(self.cpu, CpuCgroups):
            left = await asyncio.to_thread(self.cpu.cleanup)
            if left:
                print(
                    f"rehearsal: warning: cgroups not removed: {', '.join(map(str, left))}",
                    file=sys.stderr,
                )

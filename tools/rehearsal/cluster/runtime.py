"""How a pod's container runs: the seam between the emulated kubelet and real processes.

A runtime starts a container for a Launch (the pod's address, port, environment and version)
and returns a handle to signal it, kill it, wait for it and exec in it. ProcessRuntime runs
`python -m <module>` directly on the pod's loopback address; ContainerRuntime
(cluster/container_runtime.py) runs the built image with podman or docker, publishing
<address>:<port> to the container's port.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from abc import ABC, abstractmethod
from pathlib import Path

from tools.rehearsal.cluster import probes
from tools.rehearsal.cluster.container import Container, Launch, wait_or_kill
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.spec import Probe, Workload
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


class ProcessContainer(Container):
    def __init__(self, process: asyncio.subprocess.Process, env: dict[str, str]) -> None:
        self.process = process
        self.env = env

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
        process = await asyncio.create_subprocess_exec(
            *command,
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
        # A process runs a server module itself; resources.limits are not enforced.
        for workload in workloads:
            template = workload.deployment.template
            if self.module_for(template.command, template.args) is None:
                raise RehearsalError(
                    f"{workload.source}: the container's command/args are not `python -m` one"
                    f" of {', '.join(SERVERS.values())}: only --runtime podman or docker runs"
                    " them"
                )

    def __init__(self, server: str = "app", python: str = sys.executable) -> None:
        self.module = server_module(server)
        self.python = python

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
        with open(launch.log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                self.module_for(launch.command, launch.args),
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        return ProcessContainer(process, env)

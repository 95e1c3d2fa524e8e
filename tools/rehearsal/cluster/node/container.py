"""A pod's container as the kubelet drives it: what starts it (Launch) and the handle it gets."""

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launch:
    pod: str
    image: str
    version: str
    address: str  # the pod IP: on the pod network, or a 127.0.0.x loopback address
    port: int  # the container port the Service and the probes reach
    env: dict[str, str]  # the container's environment from the manifest
    log_path: Path
    user: str | None = None  # securityContext "uid[:gid]" (a container runtime applies it)
    read_only_root: bool = False  # securityContext.readOnlyRootFilesystem (likewise)
    command: tuple[str, ...] = ()  # the manifest's command and args (likewise)
    args: tuple[str, ...] = ()
    memory_limit: int | None = None  # bytes (likewise: the engine enforces it)
    cpu_limit: float | None = None  # cores (likewise)
    cpu_request: float | None = None  # cores: the container's weight under contention
    netns: str | None = None  # the file of the pod's network namespace; None: the host's
    working_dir: str | None = None  # the manifest's workingDir


@dataclass(frozen=True)
class ContainerUsage:
    """What the kubelet's stats provider reads of one running container, from its cgroups.

    Times are on the loop's clock (the run's Timeline clock): `started` when the runtime created
    the container, `timestamp` when the counters were read.
    """

    cpu_seconds: float  # cumulative CPU time since the container started, every process in it
    memory_working_set: int  # bytes: memory usage minus inactive file pages
    started: float
    timestamp: float


class Container(ABC):
    @abstractmethod
    def is_alive(self) -> bool: ...

    @abstractmethod
    async def signal(self, signum: int) -> None:
        """Deliver a signal to the container's main process (PID 1 in a real container)."""

    @abstractmethod
    async def kill(self) -> None:
        """SIGKILL everything in the container."""

    @abstractmethod
    async def wait(self) -> int:
        """Wait for the main process to exit; return its exit status (negative: signal)."""

    @abstractmethod
    async def exec(self, command: tuple[str, ...], timeout: float) -> int | None:
        """Run a command in the container; None when it timed out (and was killed)."""

    async def oom_killed(self) -> bool:
        """Whether the engine says the out-of-memory killer ended the container."""
        return False

    async def usage(self) -> ContainerUsage | None:
        """The container's resource usage now; None while it is not running or not measured."""
        return None


async def wait_or_kill(process: asyncio.subprocess.Process, timeout: float) -> int | None:
    """The exit status of an exec'd command, or None when it outlived `timeout` and was killed.

    Like the kubelet, stop waiting; the command itself may run on in a container.
    """
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None

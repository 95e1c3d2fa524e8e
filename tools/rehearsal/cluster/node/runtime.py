"""How a pod's container runs: the seam between the emulated kubelet and real processes.

A runtime starts a container for a Launch (the pod's address, port, environment and version)
and returns a handle to signal it, kill it, wait for it and exec in it. ProcessRuntime runs
`python -m <module>` directly on the pod's loopback address, in cgroups that account its CPU
and memory and cap them at the container's limits where the kernel lets it (node/cgroups.py);
ContainerRuntime (node/container_runtime.py) runs the built image with podman or docker,
publishing <address>:<port> to the container's port.
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.node import probes
from tools.rehearsal.cluster.node.cgroups import (
    CGROUP_ROOT,
    Accounting,
    Cgroup,
    CpuCgroups,
    shares,
)
from tools.rehearsal.cluster.node.container import Container, ContainerUsage, Launch, wait_or_kill
from tools.rehearsal.cluster.node.usage import UsageFiles
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.pod import Probe
from tools.rehearsal.manifests.workload import Workload
from tools.repo import ROOT
from tools.serverprocess import die_with_parent
from tools.servers import server_module


class Runtime(ABC):
    name = "runtime"

    def pod_network_problem(self) -> str | None:
        """Why its containers cannot join a pod's network namespace; None when they can."""
        return None

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


@dataclass(frozen=True)
class ContainerCgroups:
    """The cgroups a process-mode container runs in."""

    joined: tuple[Cgroup, ...] = ()  # every one its processes join
    cpu: Cgroup | None = None  # the one with its CPU limit and weight
    usage: UsageFiles | None = None  # where its CPU and memory are accounted


class ProcessContainer(Container):
    def __init__(
        self,
        process: asyncio.subprocess.Process,
        env: dict[str, str],
        cgroups: ContainerCgroups,
        started: float,
        network: str | None = None,
    ) -> None:
        self.process = process
        self.env = env
        self.cgroups = cgroups
        self.started = started  # on the loop's clock, as its cgroups were made
        self.network = network  # the pod's network namespace

    @property
    def cgroup(self) -> Cgroup | None:
        """The cgroup with the container's CPU limit and weight."""
        return self.cgroups.cpu

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
            self.cgroups.joined,
            self.network,
            env=self.env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await wait_or_kill(process, timeout)

    async def oom_killed(self) -> bool:
        """Whether the kernel's out-of-memory killer ended a process of the container (the
        kubelet's OOMKilled: runc reports the cgroup's oom_kill events)."""
        files = self.cgroups.usage
        if files is None:
            return False
        try:
            return files.oom_kills() > 0
        except OSError:
            return False

    async def usage(self) -> ContainerUsage | None:
        files = self.cgroups.usage
        if files is None or not self.is_alive():
            return None
        try:
            cpu, memory = files.cpu_seconds(), files.working_set()
        except OSError:
            return None
        now = asyncio.get_running_loop().time()
        return ContainerUsage(cpu, memory, self.started, now)


def enter_pod(cgroup_procs: tuple[int, ...], network: int | None) -> None:
    """die_with_parent, in the cgroups whose cgroup.procs the parent opened as `cgroup_procs`
    and in the network namespace it opened as `network`: the process joins them before exec, so
    everything it forks later is in them too.

    A preexec_fn: only writes on descriptors opened in the parent (b"0": the writer itself).
    """
    for procs in cgroup_procs:
        os.write(procs, b"0")
    if network is not None:
        netns.setns(network)
    die_with_parent()


async def spawn(
    argv: tuple[str, ...],
    cgroups: Cgroup | Sequence[Cgroup] | None,
    network: str | None = None,
    **options,
) -> asyncio.subprocess.Process:
    """Start a process (with die_with_parent) in `cgroups` and the network namespace whose file
    is `network`, or where the rehearsal runs."""
    joined = (cgroups,) if isinstance(cgroups, Cgroup) else tuple(cgroups or ())
    opened: list[int] = []
    namespace = None
    try:
        for cgroup in joined:  # each closed in the child at exec (O_CLOEXEC)
            opened.append(os.open(cgroup.procs, os.O_WRONLY))
        if network is not None:
            namespace = os.open(network, os.O_RDONLY | os.O_CLOEXEC)
        return await asyncio.create_subprocess_exec(
            *argv, preexec_fn=partial(enter_pod, tuple(opened), namespace), **options
        )
    except subprocess.SubprocessError as error:  # the kernel refused a move
        where = ", ".join([str(cgroup.path) for cgroup in joined] + ([network] if network else []))
        raise OSError(f"cannot start {argv[0]} in {where}: {error}") from None
    finally:
        for procs in opened:
            os.close(procs)
        if namespace is not None:
            os.close(namespace)


def expand(text: str, env: dict[str, str]) -> str:
    """A command or argument as the kubelet runs it: $(VAR) is VAR's value when the container's
    environment defines it, else left as written, and $$ is $ (kubernetes
    pkg/kubelet/container/helpers.go ExpandContainerCommandAndArgs,
    third_party/forked/golang/expansion/expand.go)."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", replace, text)


class ProcessRuntime(Runtime):
    """Each container is the manifest's command and args run as they are, on this host, in the
    pod's network namespace (or bound to the pod's loopback address). With neither, the image's
    own: `python -m <server>`, as this repository's image runs it (Dockerfile CMD)."""

    name = "process"

    def argv_for(
        self, command: tuple[str, ...], args: tuple[str, ...], env: dict[str, str] | None = None
    ) -> tuple[str, ...]:
        """The process a container runs, its $(VAR) references expanded from `env`: `python` is
        this Python (it has the repository's packages, as the image's python has)."""
        argv = tuple(expand(part, env or {}) for part in (*command, *args))
        argv = argv or (self.python, "-m", self.module)
        if argv[0] in ("python", "python3"):
            return (self.python, *argv[1:])
        return argv

    def path(self) -> str:
        """The containers' PATH: this Python's scripts (uvicorn, gunicorn), then the host's."""
        return os.pathsep.join([str(Path(self.python).parent), os.environ.get("PATH", "/usr/bin")])

    def check(self, workloads: list[Workload]) -> None:
        for workload in workloads:
            template = workload.deployment.template
            if template.args and not template.command:
                raise RehearsalError(
                    f"{workload.source}: container {template.container_name}: args without a"
                    " command replace the image's CMD, which only --runtime podman or docker"
                    " knows"
                )
            executable = self.argv_for(template.command, template.args)[0]
            if shutil.which(executable, path=self.path()) is None:
                raise RehearsalError(
                    f"{workload.source}: container {template.container_name}: executable"
                    f" {executable!r} not found on this host (--runtime process runs the"
                    " container's command here)"
                )
            working_dir = template.working_dir
            if working_dir is not None and not Path(working_dir).is_dir():
                raise RehearsalError(
                    f"{workload.source}: container {template.container_name}: workingDir"
                    f" {working_dir!r} is not a directory on this host"
                )

    def __init__(
        self, server: str = "app", python: str = sys.executable, cgroup_root: Path = CGROUP_ROOT
    ) -> None:
        self.module = server_module(server)
        self.python = python
        self.cgroup_root = cgroup_root
        self.cpu: CpuCgroups | str | None = None  # the CPU controller, or why there is none
        self.cpu_failure: str | None = None  # why a cgroup could not be created
        self.limited = False  # a container had a CPU limit
        self.memory_limited = False  # a container had a memory limit
        self.accounting: Accounting | str | None = None  # where usage is accounted, or why not
        self.accounting_failure: str | None = None

    def find_cpu(self) -> CpuCgroups | str:
        if self.cpu is None:
            self.cpu = CpuCgroups.find(self.cgroup_root)
        return self.cpu

    def cgroup_for(self, launch: Launch) -> Cgroup | None:
        """A new cgroup in the CPU controller's hierarchy, with the container's CPU limit and
        its request's weight (None: no cgroup possible)."""
        self.limited = self.limited or launch.cpu_limit is not None
        cpu = self.find_cpu()
        if isinstance(cpu, str) or self.cpu_failure is not None:
            return None
        try:
            return cpu.create(launch.pod, launch.cpu_limit, shares(launch.cpu_request))
        except OSError as error:
            self.cpu_failure = f"cannot create a cgroup under {cpu.base}: {error.strerror}"
            return None

    def cgroups_for(self, launch: Launch) -> ContainerCgroups:
        """The container's new cgroups: its CPU limit's, and those accounting its usage (one
        cgroup serves both where they share a hierarchy, as cgroup v2's do)."""
        if self.accounting is None:
            # Found first, so that cgroup v2 limits and accounting share one parent.
            cpu = self.find_cpu()
            shared = None if isinstance(cpu, str) else cpu
            self.accounting = Accounting.find(self.cgroup_root, shared)
        self.memory_limited = self.memory_limited or launch.memory_limit is not None
        cpu = self.cgroup_for(launch)
        made = {} if cpu is None else {self.cpu.base: cpu}  # by hierarchy
        usage = None
        if isinstance(self.accounting, Accounting) and self.accounting_failure is None:
            try:
                usage = self.accounting.create(launch.pod, made, launch.memory_limit)
            except OSError as error:
                self.accounting_failure = f"cannot create a cgroup: {error.strerror}"
        return ContainerCgroups(tuple(made.values()), cpu, usage)

    def notes(self) -> list[str]:
        notes = []
        if self.limited:
            if isinstance(self.cpu, str) or self.cpu_failure is not None:
                why = self.cpu if isinstance(self.cpu, str) else self.cpu_failure
                notes.append(f"resources.limits.cpu NOT enforced: {why}")
            else:
                notes.append(f"resources.limits.cpu enforced through {self.cpu.describe()}")
        why = self.accounting if isinstance(self.accounting, str) else self.accounting_failure
        if why is not None:
            notes.append(f"resource metrics NOT available (no CPU and memory accounting): {why}")
        if self.memory_limited:
            if why is not None:
                notes.append(f"resources.limits.memory NOT enforced: {why}")
            else:
                where = self.accounting.describe_memory_limit()
                notes.append(f"resources.limits.memory enforced through {where}")
        return notes

    def environment(self, launch: Launch) -> dict[str, str]:
        env: dict[str, str] = {
            "PATH": self.path(),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "HOSTNAME": launch.pod,
            "APP_VERSION": launch.version,  # the image bakes its version in
            **launch.env,
        }
        if launch.netns is None:
            # In a pod the server listens on 0.0.0.0 of its own network namespace; on the
            # loopback network that is the pod's loopback address.
            env["HOST"] = launch.address
        # And its /tmp is the pod's own emptyDir: a directory of the run, kept with its log.
        env["TMPDIR"] = str(launch.log_path.with_suffix(".tmp"))
        return env

    async def start(self, launch: Launch) -> Container:
        env = self.environment(launch)
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        Path(env["TMPDIR"]).mkdir(exist_ok=True)
        started = asyncio.get_running_loop().time()
        cgroups = self.cgroups_for(launch)
        with open(launch.log_path, "ab") as log:
            process = await spawn(
                self.argv_for(launch.command, launch.args, launch.env),
                cgroups.joined,
                launch.netns,
                env=env,
                cwd=launch.working_dir or ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return ProcessContainer(process, env, cgroups, started, launch.netns)

    async def cleanup(self) -> None:
        hierarchies = [] if not isinstance(self.cpu, CpuCgroups) else [self.cpu]
        if isinstance(self.accounting, Accounting):
            hierarchies += [h for h in self.accounting.hierarchies() if h not in hierarchies]
        left = []
        for hierarchy in hierarchies:
            left += await asyncio.to_thread(hierarchy.cleanup)
        if left:
            print(
                f"rehearsal: warning: cgroups not removed: {', '.join(map(str, left))}",
                file=sys.stderr,
            )

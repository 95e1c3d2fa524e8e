"""Pods as containers: the built image run by podman or docker (`--runtime podman|docker`).

Each pod is one detached container of the locally built image for its tag
(tools.image.build.local_image: `<registry>/<path>/zero-downtime-app:v2` runs as
`localhost/zero-downtime-app:v2`, built by `zdt image build v2`), or of any other image the
manifest names as it is, when the engine has it locally (nothing is pulled), with:
- the manifest's command as the entrypoint (`--entrypoint`) and its args after the image;
- the manifest's environment (the image bakes APP_VERSION in; HOST stays 0.0.0.0 inside);
- the manifest's securityContext user (`--user`) and read-only root filesystem (`--read-only`
  with a tmpfs /tmp, the manifests' emptyDir);
- with podman, the pod's own network namespace (`--network ns:PATH`, as the process runtime's
  servers run in it: podnet.py), where the Service's rules and the kubelet's probes reach it at
  its pod IP; with docker, which cannot join a namespace by its file, the container port
  published on the pod's own loopback address, `-p 127.0.0.x:PORT:PORT`. Nothing is ever sent to
  the engine's bridge address;
- the pod name as hostname, `--pull never`, and a name starting with NAME_PREFIX.

Signals go to PID 1 (the gunicorn master) with `ENGINE kill --signal`, exec probes and hooks run
with `ENGINE exec`, the exit status comes from `ENGINE wait` (128 + signal after a signal, as
Kubernetes reports it) and `ENGINE logs --follow` appends the output to the pod's log file. The
container's CPU and memory are read from the engine's cgroups for it, found once from its init
process (`ENGINE inspect --format {{.State.Pid}}`, then /proc/<pid>/cgroup: node/usage.py).
Every container this runtime started is removed after the run, whatever its outcome (Ctrl-C and
SIGTERM included); after a run killed outright, remove what it left with
`podman rm --force $(podman ps --all --quiet --filter name=^zdt-rehearsal-)`.
"""

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import uuid
from functools import partial

from tools.image.build import IMAGE_REPOSITORY, local_image
from tools.image.engine import ENGINES, Engine, EngineError
from tools.imageref import ImageRef
from tools.rehearsal.cluster.node.cgroups import shares
from tools.rehearsal.cluster.node.container import Container, ContainerUsage, Launch, wait_or_kill
from tools.rehearsal.cluster.node.runtime import Runtime, expand
from tools.rehearsal.cluster.node.usage import UsageFiles, usage_files_of
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.workload import Workload

NAME_PREFIX = "zdt-rehearsal-"
NO_EXIT_STATUS = -1  # the engine lost track of the container


def resource_args(launch: Launch) -> tuple[str, ...]:
    """The manifest's command and resources as engine options: an entrypoint, memory without
    swap (as the kubelet sets it), CPUs, and the request's CPU shares (cgroups.shares)."""
    args: list[str] = []
    if launch.command:
        args += ["--entrypoint", launch.command[0]]
    if launch.memory_limit is not None:
        args += ["--memory", str(launch.memory_limit), "--memory-swap", str(launch.memory_limit)]
    if launch.cpu_limit is not None:
        args += ["--cpus", f"{launch.cpu_limit:g}"]
    args += ["--cpu-shares", str(shares(launch.cpu_request))]
    return tuple(args)


class EngineContainer(Container):
    def __init__(
        self,
        runtime: "ContainerRuntime",
        name: str,
        launch: Launch,
        started: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.launch = launch
        loop = asyncio.get_running_loop()
        self.started = loop.time() if started is None else started  # when `ENGINE run` began
        self.exited = loop.create_task(self._wait())
        self.usage_files: UsageFiles | str | None = None  # its cgroups, or why they are unknown

    async def _wait(self) -> int:
        pipe = asyncio.subprocess.PIPE
        waiter = await self.runtime.spawn("wait", self.name, stdout=pipe, stderr=pipe)
        output, errors = await waiter.communicate()
        if waiter.returncode == 0 and output.split():
            return int(output.split()[0])
        with open(self.launch.log_path, "ab") as log:
            log.write(b"rehearsal: no exit status from the engine: " + errors)
        return NO_EXIT_STATUS

    def is_alive(self) -> bool:
        return not self.exited.done()

    async def signal(self, signum: int) -> None:
        if self.is_alive():
            name = signal.Signals(signum).name.removeprefix("SIG")
            # Fails harmlessly when the container has just exited.
            await (await self.runtime.spawn("kill", "--signal", name, self.name)).wait()

    async def kill(self) -> None:
        await self.signal(signal.SIGKILL)

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    async def exec(self, command: tuple[str, ...], timeout: float) -> int | None:
        process = await self.runtime.spawn("exec", self.name, *command)
        return await wait_or_kill(process, timeout)

    async def oom_killed(self) -> bool:
        pipe = asyncio.subprocess.PIPE
        inspect = await self.runtime.spawn(
            "inspect", "--format", "{{.State.OOMKilled}}", self.name, stdout=pipe
        )
        output, _ = await inspect.communicate()
        return output.strip() == b"true"

    async def find_usage_files(self) -> UsageFiles | str:
        pipe = asyncio.subprocess.PIPE
        inspect = await self.runtime.spawn(
            "inspect", "--format", "{{.State.Pid}}", self.name, stdout=pipe
        )
        output, _ = await inspect.communicate()
        if not output.strip().isdigit() or int(output) <= 0:
            return f"{self.runtime.name} inspect gave no pid for {self.name}"
        try:
            return usage_files_of(int(output))
        except (OSError, ValueError) as error:
            return str(error)

    async def usage(self) -> ContainerUsage | None:
        if not self.is_alive():
            return None
        if self.usage_files is None:
            self.usage_files = await self.find_usage_files()
        files = self.usage_files
        if isinstance(files, str):
            return None
        try:
            cpu, memory = files.cpu_seconds(), files.working_set()
        except OSError:  # the container has just exited, and its cgroups with it
            return None
        return ContainerUsage(cpu, memory, self.started, asyncio.get_running_loop().time())


class ContainerRuntime(Runtime):
    """Runs each pod as a container of the locally built image for its tag."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.run_id = uuid.uuid4().hex[:8]
        self.helpers: list[asyncio.subprocess.Process] = []
        self.runs: list[asyncio.subprocess.Process] = []  # `ENGINE run` commands
        self.count = 0
        # The engine's commands run here: podman's conmon leaves a file `oom` in its working
        # directory when a container is OOM-killed, which must not land in the caller's.
        self.workdir: str | None = None

    @classmethod
    def named(cls, engine: str, server: str = "app") -> "ContainerRuntime":
        if server != "app":
            raise RehearsalError(
                f"--app {server}: --runtime {engine} runs the image, which holds only app/ "
                "(use --runtime process)"
            )
        return cls(Engine.named(engine))

    def pod_network_problem(self) -> str | None:
        # podman joins a namespace by its file (`--network ns:PATH`, containers/common
        # libnetwork/types NSPath); docker only another container's (`container:NAME`).
        if self.engine.name != "podman":
            return f"{self.name} cannot join a network namespace by its file"
        return None

    def check(self, workloads: list[Workload]) -> None:
        problem = self.engine.problem()
        if problem:
            raise RehearsalError(f"--runtime {self.name}: {problem}")
        for workload in workloads:
            reference = workload.deployment.template.image
            try:
                image = self.image_for(reference)
            except ValueError as error:
                raise RehearsalError(f"{workload.source}: {error}") from None
            if self.engine.image_exists(image):
                continue
            if image == reference:
                raise RehearsalError(
                    f"{workload.source}: image {reference}: {self.name} does not have it"
                    " locally (the rehearsal never pulls: pull or build it first)"
                )
            tag = ImageRef.parse(image).tag
            raise RehearsalError(
                f"{workload.source}: image {reference} runs as {image}, which {self.name} "
                f"does not have: build it with `zdt image build {tag}`"
            )

    @staticmethod
    def image_for(reference: str) -> str:
        """This repository's image runs as its local build with the same tag; any other image
        as the manifest names it, if the engine has it."""
        if ImageRef.parse(reference).name == ImageRef.parse(IMAGE_REPOSITORY).name:
            return local_image(reference)
        return reference

    async def spawn(
        self, *args: str, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    ) -> asyncio.subprocess.Process:
        """Start `ENGINE ARGS...` (stopped by cleanup() if it is still running then)."""
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="zdt-engine-")
        process = await asyncio.create_subprocess_exec(
            self.engine.name,
            *args,
            cwd=self.workdir,
            env=self.engine.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        self.helpers = [p for p in self.helpers if p.returncode is None] + [process]
        return process

    @property
    def prefix(self) -> str:
        """Every container of this runtime is named so (and removed by cleanup())."""
        return f"{NAME_PREFIX}{self.run_id}-"

    async def start(self, launch: Launch) -> Container:
        self.count += 1
        name = f"{self.prefix}{self.count}-{launch.pod}"
        # The manifest's command replaces the image's entrypoint, its args the image's CMD, each
        # with its $(VAR) references expanded as the kubelet does.
        command = tuple(expand(part, launch.env) for part in launch.command)
        arguments = tuple(expand(part, launch.env) for part in launch.args)
        entrypoint = ("--entrypoint", command[0]) if command else ()
        args = self.engine.run_args(
            self.image_for(launch.image),
            launch.env,
            name=name,
            publish=f"{launch.address}:{launch.port}:{launch.port}",
            network=f"ns:{launch.netns}" if launch.netns else None,
            read_only=launch.read_only_root,
            user=launch.user,
            extra_args=(
                "--hostname",
                launch.pod,
                "--pull",
                "never",
                *entrypoint,
                *resource_args(launch),
            ),
            command=(*command[1:], *arguments),
        )
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = asyncio.get_running_loop().time()
        run = await self.spawn(*args, stderr=asyncio.subprocess.PIPE)
        self.runs.append(run)
        _, errors = await run.communicate()
        if run.returncode != 0:
            # The kubelet records a failed start and retries, as for a process that cannot start.
            raise OSError(f"{self.name} run {name}: {errors.decode().strip()}")
        with open(launch.log_path, "ab") as log:
            await self.spawn("logs", "--follow", name, stdout=log, stderr=log)
        return EngineContainer(self, name, launch, started)

    async def cleanup(self) -> None:
        # A start cancelled by the end of the run may still be creating its container.
        await asyncio.gather(*(run.wait() for run in self.runs))
        self.runs = []
        try:
            await asyncio.to_thread(self.engine.remove_prefixed, self.prefix)
        except EngineError as error:  # do not hide how the run itself ended
            print(
                f"rehearsal: warning: containers {self.prefix}* not removed: {error}",
                file=sys.stderr,
            )
        for process in self.helpers:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.helpers = []
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


ENGINE_RUNTIMES = {engine: partial(ContainerRuntime.named, engine) for engine in ENGINES}

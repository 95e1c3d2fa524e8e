"""Fakes for testing the emulated controller, kubelet and Service without processes or sockets.

VirtualTimeLoop is an asyncio event loop whose clock jumps to the next timer instead of
waiting, so the real emulation code (asyncio sleeps, timeouts, call_at) runs a minute of
rollout in milliseconds, in the same order as in real time. FakeRuntime's containers answer
probes, signals and exec from a scripted Behaviour, and report its scripted resource usage.
"""

import asyncio
import random
import selectors
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.rehearsal.cluster.deployment import DeploymentController
from tools.rehearsal.cluster.network.lag import UniformLag
from tools.rehearsal.cluster.network.view import EndpointView
from tools.rehearsal.cluster.node.container import Container, ContainerUsage, Launch
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.runtime import Runtime
from tools.rehearsal.cluster.rollouts.controller import RolloutController
from tools.rehearsal.manifests.deployment import Deployment
from tools.rehearsal.manifests.pod import PodTemplate, PreStop, Probe
from tools.rehearsal.manifests.rollout import Analysis, BlueGreen, Rollout
from tools.rehearsal.timeline import Timeline

SIGKILL_STATUS = 128 + signal.SIGKILL


class _InstantSelector(selectors.DefaultSelector):
    """Polls for real I/O (the loop's own wake-up pipe), then moves the clock on by the
    timeout the loop would have slept."""

    loop: "VirtualTimeLoop"

    def select(self, timeout=None):
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("virtual time: nothing scheduled and nothing ready (deadlock)")
        self.loop.virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = _InstantSelector()
        super().__init__(selector)
        selector.loop = self
        self.virtual_now = 0.0

    def time(self) -> float:
        return self.virtual_now


def run(coroutine):
    """Run a coroutine to completion in virtual time, then cancel what is left, as asyncio.run
    does."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()


@dataclass(frozen=True)
class Used:
    """A fake container's resource usage, some seconds after its start."""

    cpu_seconds: float  # cumulative since its start
    memory: int  # working set, bytes


def steady(cores: float, memory: int) -> Callable[[float], Used]:
    """Usage of a container that uses `cores` CPUs and `memory` bytes from its start."""
    return lambda age: Used(cores * age, memory)


@dataclass
class Behaviour:
    """How a fake container of one version behaves (seconds from its start or its SIGTERM)."""

    ready_after: float = 0.5  # probes succeed from then on
    never_ready: bool = False
    live: bool = True  # liveness probes succeed
    drain: float = 1.0  # exits 0 this long after SIGTERM
    ignore_sigterm: bool = False
    ready_while_draining: bool = False  # a server whose /ready does not turn 503 on SIGTERM
    usage: Callable[[float], Used] | None = None  # by seconds since its start (None: unmeasured)


@dataclass
class TableReplicaSet:
    """A ReplicaSet as Kubernetes' test tables give one: spec.replicas, status.availableReplicas
    (all of its replicas unless said), creationTimestamp and the replica annotations."""

    name: str
    replicas: int
    created_at: float = 0.0
    available_replicas: int | None = None
    desired_replicas: int | None = None
    max_replicas: int | None = None

    def available(self, min_ready_seconds: float) -> int:
        return self.replicas if self.available_replicas is None else self.available_replicas


def counted(name: str, counts: tuple[int, int]) -> TableReplicaSet:
    """A ReplicaSet from an Argo Rollouts canary table's (spec.replicas, availableReplicas)."""
    replicas, available = counts
    return TableReplicaSet(name, replicas, available_replicas=available)


class FakeContainer(Container):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.exited: asyncio.Future[int] = self.loop.create_future()
        self.sigterm_at: float | None = None
        self.signals: list[tuple[float, int]] = []

    def is_alive(self) -> bool:
        return not self.exited.done()

    def answers(self, probe: Probe) -> bool:
        b = self.behaviour
        if not self.is_alive() or b.never_ready:
            return False
        if self.loop.time() - self.started < b.ready_after:
            return False
        if probe.kind == "liveness":
            return b.live
        if probe.kind == "readiness" and self.sigterm_at is not None:
            return b.ready_while_draining
        return True

    def _exit(self, status: int) -> None:
        if not self.exited.done():
            self.exited.set_result(status)

    async def signal(self, signum: int) -> None:
        self.signals.append((self.loop.time(), signum))
        if signum == signal.SIGTERM and self.sigterm_at is None:
            self.sigterm_at = self.loop.time()
            if not self.behaviour.ignore_sigterm:
                self.loop.call_later(self.behaviour.drain, self._exit, 0)

    async def kill(self) -> None:
        self.signals.append((self.loop.time(), signal.SIGKILL))
        self._exit(SIGKILL_STATUS)

    async def wait(self) -> int:
        return await asyncio.shield(self.exited)

    async def exec(self, command: tuple[str, ...], timeout: float) -> int | None:
        return 0

    def crash(self, status: int = 1) -> None:
        self._exit(status)

    async def usage(self) -> ContainerUsage | None:
        if self.behaviour.usage is None or not self.is_alive():
            return None
        now = self.loop.time()
        used = self.behaviour.usage(now - self.started)
        return ContainerUsage(used.cpu_seconds, used.memory, self.started, now)


class FakeRuntime(Runtime):
    name = "fake"

    def __init__(self, behaviours: dict[str, Behaviour] | None = None) -> None:
        self.behaviours = behaviours or {}
        self.containers: dict[str, list[FakeContainer]] = {}  # by pod name, oldest first

    async def start(self, launch: Launch) -> Container:
        container = FakeContainer(self.behaviours.get(launch.version, Behaviour()))
        self.containers.setdefault(launch.pod, []).append(container)
        return container

    async def probe(self, probe: Probe, address: str, container: Container) -> bool:
        return container.answers(probe)


def probe(kind: str, period: float = 1, failures: int = 3, successes: int = 1) -> Probe:
    return Probe(
        kind=kind,
        action="http",
        port=8080,
        path="/ready" if kind == "readiness" else "/healthz",
        period=period,
        failure_threshold=failures,
        success_threshold=successes,
    )


def template(
    version: str,
    *,
    pre_stop: float | None = 5,
    grace: float = 35,
    liveness: Probe | None = None,
    readiness: Probe | None = None,
    readiness_gates: tuple[str, ...] = (),
) -> PodTemplate:
    return PodTemplate(
        template_hash=f"hash-{version}",
        image=f"registry.test/app:{version}",
        version=version,
        container_port=8080,
        env=(),
        startup=None,
        readiness=readiness or probe("readiness", failures=2),
        liveness=liveness,
        pre_stop=None if pre_stop is None else PreStop("sleep", seconds=pre_stop),
        termination_grace=grace,
        readiness_gates=readiness_gates,
    )


def deployment(
    version: str,
    replicas: int = 3,
    max_surge: int | str = 1,
    max_unavailable: int | str = 0,
    min_ready: float = 3,
    deadline: float = 60,
    **template_options,
) -> Deployment:
    return Deployment(
        name="app",
        replicas=replicas,
        strategy_type="RollingUpdate",
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        min_ready_seconds=min_ready,
        progress_deadline_seconds=deadline,
        template=template(version, **template_options),
    )


def blue_green(analysis: Analysis | None = None) -> Rollout:
    """A blue-green Rollout as the tests release it: auto-promoted, the pre-promotion `analysis`
    (None: none), 30 s scale-down and abort scale-down delays."""
    return Rollout(
        "app",
        BlueGreen(
            active_service="app",
            preview_service="app-preview",
            auto_promotion=True,
            pre_promotion_analysis=analysis,
            scale_down_delay=30,
            abort_scale_down_delay=30,
        ),
    )


@dataclass
class Cluster:
    """The emulated control plane around fake containers, wired as the rehearsal wires it."""

    runtime: FakeRuntime
    propagation: float = 1.0
    jitter: float = 0.0
    log_dir: Path = Path("/nonexistent")  # fake containers write no log
    rollout: Rollout | None = None  # emulate Argo Rollouts' controller instead
    verdicts: list[bool] = field(default_factory=list)  # the analyses' results, in order
    analysis_seconds: float = 3.0
    timeline: Timeline = field(init=False)
    view: EndpointView = field(init=False)
    controller: DeploymentController = field(init=False)
    routes: dict[str, list[tuple[float, str]]] = field(init=False)  # Service -> (t, hash)
    analyses: list[tuple[float, str]] = field(init=False)  # (t, Service) of each analysis

    def __post_init__(self) -> None:
        self.timeline = Timeline(clock=asyncio.get_running_loop().time)
        lag = UniformLag(self.propagation, self.jitter)
        self.view = EndpointView(self.timeline, lag, random.Random(7))
        self.routes, self.analyses = {}, []
        if self.rollout is None:
            self.controller = DeploymentController(self.timeline, self.make_pod, random.Random(7))
        else:
            self.controller = self._rollout_controller(self.rollout)
        self.addresses = (f"127.0.0.{n}" for n in range(2, 255))

    def _rollout_controller(
        self, rollout: Rollout, workload: DeploymentController | None = None
    ) -> RolloutController:
        return RolloutController(
            self.timeline,
            self.make_pod,
            random.Random(7),
            rollout=rollout,
            route=self.route,
            analyse=self.analyse,
            workload=workload,
        )

    def adopt(self, rollout: Rollout) -> RolloutController:
        """Argo Rollouts' controller for a Rollout with workloadRef, beside the Deployment this
        cluster runs; it becomes the cluster's controller, not yet applied or started."""
        self.controller = self._rollout_controller(rollout, workload=self.controller)
        return self.controller

    def route(self, service: str, template_hash: str) -> None:
        seen = self.routes.setdefault(service, [])
        if not seen or seen[-1][1] != template_hash:
            seen.append((self.timeline.now(), template_hash))

    async def analyse(self, analysis, service: str) -> bool:
        self.analyses.append((self.timeline.now(), service))
        await asyncio.sleep(self.analysis_seconds)
        return self.verdicts.pop(0)

    def make_pod(self, name: str, template: PodTemplate) -> Pod:
        return Pod(
            name,
            template,
            next(self.addresses),
            self.runtime,
            self.timeline,
            self.changed,
            self.log_dir,
        )

    def changed(self, pod: Pod) -> None:
        self.view.publish(pod.name, pod.endpoint())
        self.controller.wake.set()

    def events(self, source: str | None = None) -> list[tuple[float, str, str]]:
        return [
            (e.t, e.source, e.kind)
            for e in self.timeline.events
            if source is None or e.source == source
        ]

    async def until(self, condition, timeout: float = 600, step: float = 0.05) -> float:
        """Wait (in virtual time) until condition() holds; return the run time then."""
        deadline = self.timeline.now() + timeout
        while not condition():
            if self.timeline.now() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s of virtual time")
            await asyncio.sleep(step)
        return self.timeline.now()

    async def stop(self) -> None:
        await self.controller.stop()
        for pod in self.controller.pods():
            await pod.force_stop()

"""Repeated releases of one Deployment under its HorizontalPodAutoscaler, in virtual time
(tests/emulation.py): the emulated Deployment controller, kubelet, metrics-server and HPA run as
a rehearsal wires them (tools/rehearsal/cluster/autoscaling/pipeline.py), over fake containers
whose CPU follows a load model, and every release's counts are recorded.

The load model: a fixed load (cores) shared evenly by the pods the Service routes to (Ready and
not terminating, as the EndpointSlice controller has them; the Service's propagation lag is left
out), plus, optionally, a warm-up per new container: extra cores for its first seconds whether or
not it serves yet, as a JVM-like service burns CPU on class loading and JIT compilation after it
turned ready. Each container's cumulative CPU is exact: the shares are integrated at every change
of the routed pods.

The manifests are the repository's (base/deployment.yaml, base/horizontalpodautoscaler.yaml) or
edits of them; each release sets a new image tag, as a release's kustomize `images:` does.
"""

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from tests.emulation import Behaviour, Cluster, FakeContainer, FakeRuntime, Used, run
from tools.rehearsal.cluster.autoscaling.pipeline import Autoscaling
from tools.rehearsal.cluster.autoscaling.replica_calculator import PodInfo, group_pods
from tools.rehearsal.cluster.autoscaling.status import Reconcile
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable
from tools.rehearsal.cluster.node.container import Container, Launch
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler, read_autoscaler
from tools.rehearsal.manifests.deployment import Deployment, read_deployment
from tools.rehearsal.timeline import Timeline
from tools.repo import ROOT

NAME = "zero-downtime-app"
METRIC_RESOLUTION = 15.0  # metrics-server's --metric-resolution in its manifests
SYNC_PERIOD = 15.0  # --horizontal-pod-autoscaler-sync-period's default
# The starting pods stand for pods that have served for an hour (tools/rehearsal/run.py).
STARTING_AGE = 3600.0
MEMORY = 64 * 2**20


def shipped_deployment() -> dict:
    return yaml.safe_load((ROOT / "base" / "deployment.yaml").read_text())


def shipped_autoscaler() -> dict:
    return yaml.safe_load((ROOT / "base" / "horizontalpodautoscaler.yaml").read_text())


@dataclass(frozen=True)
class LoadModel:
    """How the service's containers use CPU (a model, in cores and seconds)."""

    load: float  # the users' demand, shared evenly by the routed pods
    warm_up: float = 0.0  # extra cores a new container burns ...
    warm_up_seconds: float = 0.0  # ... for this long after its start
    ready_after: float = 0.5  # its probes succeed from then on


@dataclass(frozen=True)
class Releases:
    count: int = 5
    first_at: float = 60.0  # run seconds
    interval: float = 120.0  # from one release to the next; the last one is held as long


class SharedLoad:
    """Every pod's cumulative CPU under a load model."""

    def __init__(self, model: LoadModel, clock: Callable[[], float]) -> None:
        self.model = model
        self.clock = clock
        self.served: dict[str, float] = {}  # core-seconds of the load, by pod name
        self.routed: frozenset[str] = frozenset()
        self.since = clock()
        # Containers started while this is False stand for ones that have served for long:
        # their warm-up is over.
        self.cold_starts = False
        self.cold: set[str] = set()  # pods whose container starts cold

    def started(self, pod: str) -> None:
        if self.cold_starts:
            self.cold.add(pod)

    def advance(self) -> None:
        """Share the load since the last change among the pods routed since then."""
        now = self.clock()
        if self.routed:
            share = self.model.load / len(self.routed) * (now - self.since)
            for name in self.routed:
                self.served[name] = self.served.get(name, 0.0) + share
        self.since = now

    def route(self, pods: list[Pod]) -> None:
        """The routed pods may have changed (a pod turned Ready, unready or terminating)."""
        self.advance()
        self.routed = frozenset(
            pod.name for pod in pods if (endpoint := pod.endpoint()) and endpoint.ready
        )

    def used(self, pod: str, age: float) -> Used:
        self.advance()
        warm_up = 0.0
        if pod in self.cold:
            warm_up = self.model.warm_up * min(age, self.model.warm_up_seconds)
        return Used(self.served.get(pod, 0.0) + warm_up, MEMORY)


class LoadedRuntime(FakeRuntime):
    """Fake containers whose usage is their pod's under the shared load."""

    def __init__(self, load: SharedLoad) -> None:
        super().__init__()
        self.load = load

    async def start(self, launch: Launch) -> Container:
        pod, load = launch.pod, self.load
        behaviour = Behaviour(
            ready_after=load.model.ready_after, usage=lambda age: load.used(pod, age)
        )
        load.started(pod)
        container = FakeContainer(behaviour)
        self.containers.setdefault(pod, []).append(container)
        return container


@dataclass
class LoadedCluster(Cluster):
    load: SharedLoad | None = None

    def changed(self, pod: Pod) -> None:
        self.load.route(self.controller.pods())
        super().changed(pod)


@dataclass(frozen=True)
class Counted:
    """The pods one HPA sync counted as ready (replica_calculator.go groupPods' readyPodCount):
    their samples make the average it scales on."""

    t: float
    ready: int


class ObservedAutoscaling(Autoscaling):
    """The rehearsal's HPA wiring, noting what each sync's pod listing and metrics give
    groupPods (the sync reads the metrics right after the listing, at the same instant)."""

    def __init__(
        self, pods: Callable[[], list[Pod]], timeline: Timeline, resolution: float, period: float
    ) -> None:
        super().__init__(pods, timeline, resolution, period)
        self.counted: list[Counted] = []

    def pod_infos(self, selector: str | None) -> list[PodInfo]:
        pods = super().pod_infos(selector)
        names = [pod.name for pod in pods]
        try:
            metrics = self.metrics.pod_metrics("cpu", names)
        except MetricsUnavailable:
            return pods
        config, now = self.config, self.timeline.now()
        groups = group_pods(
            pods,
            metrics,
            "cpu",
            config.horizontal_pod_autoscaler_cpu_initialization_period,
            config.horizontal_pod_autoscaler_initial_readiness_delay,
            now,
        )
        self.counted.append(Counted(now, groups.ready_count))
        return pods


@dataclass(frozen=True)
class Rollout:
    """One release and the HPA's counts (spec.replicas as it wrote it) until the next."""

    version: str
    released_at: float
    completed_at: float | None  # None: the next release came first
    before: int  # the count when it was released
    peak: int  # the highest count until the next release
    settled: int  # the count just before the next release (the last one: after its hold)
    most_counted: int  # the most pods a sync counted as ready meanwhile


@dataclass
class Rehearsed:
    need: int  # ceil(load / target per pod), within [minReplicas, maxReplicas]
    rollouts: list[Rollout]
    syncs: list[Reconcile] = field(repr=False)

    @property
    def settled(self) -> list[int]:
        return [rollout.settled for rollout in self.rollouts]

    @property
    def peaks(self) -> list[int]:
        return [rollout.peak for rollout in self.rollouts]

    def describe(self) -> str:
        lines = [f"the load needs {self.need} pods"]
        for r in self.rollouts:
            took = (
                "not done" if r.completed_at is None else f"{r.completed_at - r.released_at:.0f}s"
            )
            lines.append(
                f"{r.version} at {r.released_at:.0f}s (rollout {took}): {r.before} -> peak"
                f" {r.peak} -> {r.settled} before the next; up to {r.most_counted} pods counted"
            )
        return "\n".join(lines)


def release_of(manifest: dict, number: int, hpa_min: int) -> Deployment:
    """The Deployment of release `number`: the manifest with image tag v<number>."""
    resource = copy.deepcopy(manifest)
    container = resource["spec"]["template"]["spec"]["containers"][0]
    container["image"] = f"{container['image']}:v{number}"
    return read_deployment(resource, "base", {}, hpa_min)


def need_of(hpa: HorizontalPodAutoscaler, deployment: Deployment, load: float) -> int:
    """The pods the load alone needs: ceil(load / target per pod), within the HPA's bounds
    (in millicores x percent, so that no rounding of floats decides)."""
    load_share = round(load * 1000) * 100
    target = (
        round(deployment.template.cpu_request * 1000) * hpa.metrics[0].target.average_utilization
    )
    return min(hpa.max_replicas, max(hpa.min_replicas, -(-load_share // target)))


def count_at(syncs: list[Reconcile], t: float) -> int:
    """spec.replicas at `t` as the HPA left it: its last sync's desired count."""
    return [sync.desired_replicas for sync in syncs if sync.t < t][-1]


def rehearse(
    deployment_manifest: dict, hpa_manifest: dict, model: LoadModel, releases: Releases
) -> Rehearsed:
    """Run the starting release and `releases.count` more under the HPA, in virtual time."""
    hpa = read_autoscaler([deployment_manifest, hpa_manifest], "base", "Deployment", NAME)
    starting = release_of(deployment_manifest, 1, hpa.min_replicas)

    async def scenario():
        load = SharedLoad(model, asyncio.get_running_loop().time)
        cluster = LoadedCluster(LoadedRuntime(load), load=load)
        controller = cluster.controller
        autoscaling = ObservedAutoscaling(
            controller.pods, cluster.timeline, METRIC_RESOLUTION, SYNC_PERIOD
        )
        controller.apply(starting)
        controller.start()
        autoscaling.start(hpa, controller)
        await cluster.until(lambda: controller.completed_at is not None)
        for pod in controller.pods():
            pod.backdate(STARTING_AGE)
        await asyncio.sleep(releases.first_at - cluster.timeline.now())
        done: list[tuple[float, float | None]] = []  # (released, completed)
        load.cold_starts = True
        for number in range(2, releases.count + 2):
            released = cluster.timeline.now()
            controller.apply(release_of(deployment_manifest, number, hpa.min_replicas))
            await asyncio.sleep(releases.interval)
            done.append((released, controller.completed_at))
        history = list(autoscaling.controller.history)
        await autoscaling.stop()
        await cluster.stop()
        return done, history, autoscaling.counted

    done, syncs, counted = run(scenario())
    rollouts = []
    for index, (released, completed) in enumerate(done):
        until = released + releases.interval
        counts = [s.desired_replicas for s in syncs if released <= s.t < until]
        before = count_at(syncs, released)
        rollouts.append(
            Rollout(
                version=f"v{index + 2}",
                released_at=released,
                completed_at=completed,
                before=before,
                peak=max([before, *counts]),
                settled=count_at(syncs, until),
                most_counted=max(c.ready for c in counted if released <= c.t < until),
            )
        )
    return Rehearsed(need_of(hpa, starting, model.load), rollouts, syncs)

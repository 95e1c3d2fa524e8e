"""The HPA with what it reads, wired to one rehearsal's pods: the kubelet's resource metrics of
every running container (node/resource_metrics.py), metrics-server scraping them at its
resolution (metrics/server.py), and each pod's status as the API server has it (PodInfo).

metrics-server and the HPA of the starting state run before the load starts, as in any cluster;
their clocks are independent there, any phase as real as another. Here the scrapes fall
METRICS_DELAY after the load starts, then every resolution: the first finds the starting pods
too young for metrics-server's fresh-container rule (which rates a container from its start only
when it is 10 s to one resolution old), so every pod's first rate covers a whole resolution of
load, whatever time the starting pods took to come up in every node's view, and no first rate
hinges on a millisecond at that rule's edges. Each HPA sync comes HPA_PHASE after a scrape, so
it reads the scrape just before it; its first decision with metrics comes `first_decision()`
after the load starts. An HPA the new state creates syncs at once, as upstream's enqueueHPA
does.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tools.rehearsal.cluster.autoscaling.config import ControllerConfig
from tools.rehearsal.cluster.autoscaling.controller import HorizontalController
from tools.rehearsal.cluster.autoscaling.replica_calculator import ContainerInfo, PodInfo
from tools.rehearsal.cluster.autoscaling.status import Reconcile
from tools.rehearsal.cluster.autoscaling.target import ScaleTarget
from tools.rehearsal.cluster.metrics.server import MetricsServer, UsageSample
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.resource_metrics import endpoint
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler
from tools.rehearsal.timeline import Timeline

METRICS_DELAY = 1.0
HPA_PHASE = 1.0


def first_decision(resolution: float) -> float:
    """Seconds from the load's start to the HPA's first sync with a full resolution of metrics
    (the scrape that rates the starting pods, then HPA_PHASE)."""
    return METRICS_DELAY + resolution + HPA_PHASE


@dataclass
class AutoscalingSummary:
    """What the HPA saw and did in a run, and what metrics-server served it."""

    hpa: HorizontalPodAutoscaler  # the last spec it ran with
    target: str  # "Deployment zero-downtime-app", "Rollout zero-downtime-app"
    syncs: list[Reconcile]
    usage: list[UsageSample]  # every pod's CPU and memory after each scrape
    resolution: float
    sync_period: float
    describe: str  # as `kubectl describe hpa` prints it at the end of the run
    top: str  # as `kubectl top pods` prints it after the last scrape


def pod_info(pod: Pod) -> PodInfo:
    """The pod as the HPA's pod lister returns it: phase, deletion, Ready and its last
    transition, start time, and the container's requests in milli-units (Quantity.MilliValue)."""
    template = pod.template
    requests = {}
    if template.cpu_request is not None:
        requests["cpu"] = round(template.cpu_request * 1000)
    if template.memory_request is not None:
        requests["memory"] = template.memory_request * 1000
    return PodInfo(
        name=pod.name,
        containers=(ContainerInfo(template.container_name, requests),),
        phase=pod.phase,
        deleting=pod.terminating,
        ready=pod.ready,
        ready_transition=pod.ready_transition,
        start_time=pod.start_time,
    )


class Autoscaling:
    def __init__(
        self,
        pods: Callable[[], list[Pod]],
        timeline: Timeline,
        resolution: float,
        sync_period: float,
    ) -> None:
        self.pods = pods  # every pod of the app the rehearsal created (gone ones too)
        self.timeline = timeline
        self.metrics = MetricsServer(endpoint(self.running, timeline), timeline, resolution)
        self.config = ControllerConfig(horizontal_pod_autoscaler_sync_period=sync_period)
        self.controller: HorizontalController | None = None
        self._starting: list[asyncio.TimerHandle] = []

    def running(self) -> list[Pod]:
        return [pod for pod in self.pods() if not pod.gone]

    def pod_infos(self, selector: str | None) -> list[PodInfo]:
        """The pods a scale's selector selects (None: every pod of the app; else those of one
        pod-template hash), deleting ones included, as the pod lister lists them."""
        return [
            pod_info(pod)
            for pod in self.running()
            if selector is None or pod.template.template_hash == selector
        ]

    def start(self, spec: HorizontalPodAutoscaler | None, target: ScaleTarget) -> None:
        """The load starts: metrics-server scrapes from METRICS_DELAY on, and the starting
        state's HPA, if it has one, syncs HPA_PHASE after each scrape."""
        loop = asyncio.get_running_loop()
        self._starting = [loop.call_later(METRICS_DELAY, self.metrics.start)]
        if spec is not None:
            self.controller = self.controller_of(spec, target)
            first = METRICS_DELAY + HPA_PHASE
            self._starting.append(loop.call_later(first, self.controller.start))

    def controller_of(
        self, spec: HorizontalPodAutoscaler, target: ScaleTarget
    ) -> HorizontalController:
        return HorizontalController(
            spec, target, self.pod_infos, self.metrics, self.timeline, self.config
        )

    def apply(self, spec: HorizontalPodAutoscaler, target: ScaleTarget) -> None:
        """The HPA object as the new state has it (its target may have moved to a Rollout); one
        the new state creates syncs at once."""
        if self.controller is None:
            self.controller = self.controller_of(spec, target)
            self.controller.start()
        else:
            self.controller.apply(spec, target)

    def summary(self) -> AutoscalingSummary | None:
        controller = self.controller
        if controller is None:
            return None
        return AutoscalingSummary(
            hpa=controller.spec,
            target=f"{controller.target.kind} {controller.spec.target.name}",
            syncs=list(controller.history),
            usage=list(self.metrics.history),
            resolution=self.metrics.resolution,
            sync_period=self.config.horizontal_pod_autoscaler_sync_period,
            describe=controller.describe(),
            top=self.metrics.top(),
        )

    async def stop(self) -> None:
        for handle in self._starting:
            handle.cancel()
        if self.controller is not None:
            await self.controller.stop()
        await self.metrics.stop()

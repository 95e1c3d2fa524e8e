"""The HorizontalPodAutoscaler controller running in the rehearsal's asyncio loop: one HPA,
synced as kubernetes pkg/controller/podautoscaler/horizontal.go schedules it (enqueueHPA when the
HPA is created, then processNextWorkItem's AddRateLimited with rate_limiters.go's fixed interval:
a sync every --horizontal-pod-autoscaler-sync-period after the previous one), each sync reading
the target's scale, the pods its selector selects and their metrics, and writing the scale when it
rescales. Every event goes on the timeline; every sync is kept in `history`.
"""

import asyncio
import contextlib
from collections.abc import Callable

from tools.rehearsal.cluster.autoscaling.config import DEFAULT_CONFIG, ControllerConfig
from tools.rehearsal.cluster.autoscaling.describe import describe
from tools.rehearsal.cluster.autoscaling.horizontal import MetricQuery, query_of, reconcile
from tools.rehearsal.cluster.autoscaling.replica_calculator import PodInfo, PodMetrics
from tools.rehearsal.cluster.autoscaling.status import (
    COMPONENT,
    AutoscalerState,
    HpaEvent,
    Reconcile,
)
from tools.rehearsal.cluster.autoscaling.target import ScaleTarget
from tools.rehearsal.cluster.metrics.api import MetricsSource, MetricsUnavailable
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler
from tools.rehearsal.timeline import Timeline

# The pods a scale's selector selects (None: every pod of the app; else one pod-template hash),
# deleting ones included.
Pods = Callable[[str | None], list[PodInfo]]


class HorizontalController:
    def __init__(
        self,
        spec: HorizontalPodAutoscaler,
        target: ScaleTarget,
        pods: Pods,
        metrics: MetricsSource,
        timeline: Timeline,
        config: ControllerConfig = DEFAULT_CONFIG,
    ) -> None:
        self.spec, self.target = spec, target
        self.pods, self.metrics = pods, metrics
        self.timeline, self.config = timeline, config
        self.state = AutoscalerState()
        self.history: list[Reconcile] = []
        self.events: list[tuple[float, HpaEvent]] = []  # (t, event), for describe()
        self._created = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """The HPA is created: sync now, then every sync period."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def apply(self, spec: HorizontalPodAutoscaler, target: ScaleTarget) -> None:
        """The HPA object changed (e.g. its scaleTargetRef moved from the Deployment to a
        Rollout). The same object (namespace and name) keeps its recommendations, scale events
        and status, and its next sync comes on schedule (updateHPA's rate-limited enqueue);
        another object starts afresh, synced at once (enqueueHPA)."""
        same = (spec.namespace, spec.name) == (self.spec.namespace, self.spec.name)
        self.spec, self.target = spec, target
        if not same:
            self.state = AutoscalerState()
            self._created.set()

    def sync(self) -> Reconcile:
        """One reconcile, now."""
        scale = self.target.get_scale()
        pods = self.pods(scale.selector)
        names = [pod.name for pod in pods]
        metrics: dict[MetricQuery, PodMetrics | MetricsUnavailable] = {}
        for metric in self.spec.metrics:
            query = query_of(metric)
            if query in metrics:
                continue
            try:
                metrics[query] = self.metrics.pod_metrics(query.resource, names, query.container)
            except MetricsUnavailable as unavailable:
                metrics[query] = unavailable
        result = reconcile(
            self.spec,
            self.state,
            scale,
            pods,
            metrics,
            self.timeline.now(),
            self.target.update_scale,
            self.config,
        )
        for event in result.events:
            self.timeline.record(COMPONENT, event.reason, event.message)
            self.events.append((result.t, event))
        self.history.append(result)
        return result

    def describe(self) -> str:
        """The HPA as `kubectl describe hpa` shows it."""
        return describe(self.spec, self.state, self.target.kind, self.events, self.timeline.now())

    async def _loop(self) -> None:
        while True:
            self._created.clear()
            self.sync()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation (stop())
            # that arrives as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.horizontal_pod_autoscaler_sync_period):
                    await self._created.wait()

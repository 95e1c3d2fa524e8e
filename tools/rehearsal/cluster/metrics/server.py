"""metrics-server: scrapes the kubelet's /metrics/resource every `resolution` seconds and serves
the resource metrics API (sigs.k8s.io/metrics-server).

- the scrape loop (pkg/server/server.go runScrape, tick): a scrape at the start, then one per
  tick of a ticker at --metric-resolution (15 s in metrics-server's manifests/base/
  deployment.yaml and Helm chart; the binary's default is 60 s; at least 10 s, and at least
  --kubelet-request-timeout / 0.9: cmd/metrics-server/app/options/options.go validate); a
  request that outlives --kubelet-request-timeout (10 s) or fails to parse stores an empty
  scrape, which drops every pod (pkg/scraper/scraper.go Scrape); the node stagger (up to 8 ms
  per node) is left out;
- storage and rates: pkg/storage/pod.go (storage.py);
- PodMetrics for a list of pods, sorted by namespace and name (pkg/api/pod.go getMetrics).

`pod_metrics` is the MetricsSource the HPA reads. metrics-server serves per-container usage and
leaves the sums to its client, so this does what the HPA's client does with the list
(kubernetes pkg/controller/podautoscaler/metrics/client.go resourceMetricsClient.
GetResourceMetric): "no metrics returned from resource metrics API" when the list is empty;
otherwise a pod's value is the sum of its containers' MilliValue (CPU rounded up to millicores,
memory bytes x 1000), a pod with no container or one missing the resource is left out
(getPodMetrics); for a ContainerResource only that container's value, a pod without it left out
(getContainerMetrics).

Times in the API are run seconds on the rehearsal's Timeline.
"""

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric
from tools.rehearsal.cluster.metrics.decode import decode
from tools.rehearsal.cluster.metrics.storage import SECOND, PodMetrics, PodRef, PodStorage
from tools.rehearsal.cluster.metrics.top import millicores, no_metrics, print_pod_metrics
from tools.rehearsal.cluster.node.resource_metrics import WallClock
from tools.rehearsal.timeline import Timeline

RESOLUTION = 15.0  # --metric-resolution, seconds
MIN_RESOLUTION = 10.0
REQUEST_TIMEOUT = 10.0  # --kubelet-request-timeout (options/kubelet_client.go)
NO_METRICS = "no metrics returned from resource metrics API"


@dataclass(frozen=True)
class UsageSample:
    """What metrics-server served for one pod after one scrape."""

    t: float  # run seconds: the scrape
    pod: str
    cpu: int  # millicores, summed over the pod's containers as the HPA sums them
    memory: int  # working set bytes, likewise
    timestamp: float  # run seconds: the end of the window the CPU was measured over
    window: float  # seconds


def milli_value(resource: str, usage_cpu: int, usage_memory: int) -> int | None:
    """Quantity.MilliValue of a container's usage of `resource` (None: not served)."""
    if resource == "cpu":
        return millicores(usage_cpu)
    if resource == "memory":
        return usage_memory * 1000
    return None


class MetricsServer:
    def __init__(
        self,
        scrape: Callable[[], Awaitable[str]],
        timeline: Timeline,
        resolution: float = RESOLUTION,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        if resolution < MIN_RESOLUTION:
            raise ValueError(
                f"metric-resolution should be a time duration at least 10s, but value"
                f" {resolution:g}s provided"
            )
        if resolution * 9 / 10 < request_timeout:
            raise ValueError(
                "metric-resolution should be larger than kubelet-request-timeout, but"
                f" metric-resolution value {resolution:g}s kubelet-request-timeout value"
                f" {request_timeout:g}s provided"
            )
        self.scrape = scrape  # the kubelet's GET /metrics/resource
        self.timeline = timeline
        self.clock = WallClock.of(timeline)
        self.resolution = resolution
        self.request_timeout = request_timeout
        self.storage = PodStorage(round(resolution * SECOND))
        self.history: list[UsageSample] = []
        self.scrapes: list[float] = []  # run seconds of each scrape
        self.failures: list[str] = []  # why scrapes stored nothing
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def run(self) -> None:
        """A scrape now, then one on each tick of a time.Ticker."""
        loop = asyncio.get_running_loop()
        began, ticks = loop.time(), 0
        while True:
            await self.tick()
            ticks += 1
            # A tick due during a slow scrape waits in the ticker's channel; earlier ones drop.
            ticks = max(ticks, math.floor((loop.time() - began) / self.resolution))
            await asyncio.sleep(max(0.0, began + ticks * self.resolution - loop.time()))

    async def tick(self) -> None:
        """One scrape of the kubelet, stored."""
        loop = asyncio.get_running_loop()
        now = self.timeline.now()
        request_ms = self.clock.epoch_ms(loop.time())
        try:
            async with asyncio.timeout(self.request_timeout):
                text = await self.scrape()
            batch = decode(text, request_ms)
        except TimeoutError:
            batch = {}
            self.failures.append(f"timeout to access kubelet after {self.request_timeout:g}s")
        except ValueError as error:
            batch = {}
            self.failures.append(f"failed parsing metrics: {error}")
        self.storage.store(batch)
        self.scrapes.append(now)
        for item in self.get_pod_metrics(sorted(self.storage.last)):
            cpu = pod_values(item, "cpu")
            if cpu is not None:
                memory = sum(container.memory for container in item.containers)
                timestamp, window = self.times(item)
                self.history.append(UsageSample(now, item.pod.name, cpu, memory, timestamp, window))

    def times(self, item: PodMetrics) -> tuple[float, float]:
        """A PodMetrics' timestamp (run seconds) and window (seconds)."""
        if item.timestamp is None:
            return 0.0, 0.0
        return self.clock.run_seconds(item.timestamp // 1_000_000), item.window / SECOND

    def get_pod_metrics(self, pods: list[PodRef]) -> list[PodMetrics]:
        """GET .../pods: the PodMetrics of those of `pods` stored, by namespace and name."""
        return sorted(self.storage.get_metrics(pods), key=lambda item: item.pod)

    def refs(self, pods: Collection[str] | None, namespace: str | None) -> list[PodRef]:
        """The stored pods of these names (or any) in `namespace` (or any)."""
        return [
            ref
            for ref in self.storage.last
            if (pods is None or ref.name in pods)
            and (namespace is None or ref.namespace == namespace)
        ]

    def pod_metrics(
        self,
        resource: str,
        pods: Collection[str],
        container: str | None = None,
        namespace: str | None = None,
    ) -> dict[str, PodMetric]:
        items = self.get_pod_metrics(self.refs(pods, namespace))
        if not items:
            raise MetricsUnavailable(NO_METRICS)
        result = {}
        for item in items:
            if container is None:
                value = pod_values(item, resource)
            else:
                value = container_value(item, resource, container)
            if value is not None:
                timestamp, window = self.times(item)
                result[item.pod.name] = PodMetric(value, timestamp, window)
        return result

    def top(self, pods: Collection[str] | None = None, namespace: str | None = None) -> str:
        """`kubectl top pods` for `pods` (the pods the API lists; by default those of the last
        scrape) in `namespace` (or any): the table, or what kubectl says without metrics."""
        refs = self.refs(pods, namespace)
        listed = bool(refs) if pods is None else bool(pods)
        items = self.get_pod_metrics(refs)
        return print_pod_metrics(items) or no_metrics(listed, namespace or "default")


def pod_values(item: PodMetrics, resource: str) -> int | None:
    """client.go getPodMetrics: the sum of the containers' values; None when the pod has no
    container or one lacks the resource."""
    if not item.containers:
        return None
    total = 0
    for c in item.containers:
        value = milli_value(resource, c.cpu, c.memory)
        if value is None:
            return None
        total += value
    return total


def container_value(item: PodMetrics, resource: str, container: str) -> int | None:
    """client.go getContainerMetrics: that container's value (None: not there)."""
    for c in item.containers:
        if c.name == container:
            return milli_value(resource, c.cpu, c.memory)
    return None

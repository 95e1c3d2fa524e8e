"""metrics-server's pod storage: the last two scrapes' points of each container, and the pod
metrics served from them (sigs.k8s.io/metrics-server pkg/storage/pod.go podStorage, types.go).

Times are integer nanoseconds since the epoch, as Go's time.Time, so that windows and rates come
out as metrics-server computes them.
"""

from dataclasses import dataclass

SECOND = 1_000_000_000  # nanoseconds
# pod.go freshContainerMinMetricsResolution: a container started at least this long before its
# first point gets a rate from its start (and 0 CPU then) instead of waiting for a second point.
FRESH_CONTAINER_MIN_RESOLUTION = 10 * SECOND


@dataclass(frozen=True, order=True)
class PodRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class MetricsPoint:
    """One container's counters at one time (types.go MetricsPoint)."""

    start_time: int | None  # ns; None: not reported (Go's zero time, before any other)
    timestamp: int  # ns, when the counters were read
    cumulative_cpu: int  # ns of CPU time since start_time
    memory: int  # working set, bytes


Batch = dict[PodRef, dict[str, MetricsPoint]]  # a scrape's points, by pod and container


@dataclass(frozen=True)
class ContainerMetrics:
    name: str
    cpu: int  # nanocores: the quantity metrics-server serves, at scale -9
    memory: int  # bytes


@dataclass(frozen=True)
class PodMetrics:
    """metrics.k8s.io PodMetrics as metrics-server serves it."""

    pod: PodRef
    timestamp: int | None  # ns: the end of the earliest container's window (None: no container)
    window: int  # ns
    containers: tuple[ContainerMetrics, ...]


class UsageError(ValueError):
    pass


def before(a: int | None, b: int | None) -> bool:
    """time.Time.Before, where None is Go's zero time (before every other)."""
    return b is not None and (a is None or a < b)


def resource_usage(last: MetricsPoint, prev: MetricsPoint) -> tuple[int, int, int, int]:
    """(nanocores, memory bytes, timestamp, window) between two points of a container
    (types.go resourceUsage); UsageError when the counters went backwards."""
    if before(last.start_time, prev.start_time):
        raise UsageError("unexpected decrease in startTime of node/container")
    if last.cumulative_cpu < prev.cumulative_cpu:
        raise UsageError("unexpected decrease in cumulative CPU usage value")
    window = last.timestamp - prev.timestamp
    seconds, nanoseconds = divmod(window, SECOND)  # time.Duration.Seconds
    rate = (last.cumulative_cpu - prev.cumulative_cpu) / (seconds + nanoseconds / 1e9)
    return int(rate), last.memory, last.timestamp, window


class PodStorage:
    def __init__(self, resolution: int) -> None:
        self.resolution = resolution  # ns: --metric-resolution
        self.last: Batch = {}
        self.prev: Batch = {}

    def ready(self) -> bool:
        """storage.go podReady: some pod can be served."""
        return bool(self.prev)

    def store(self, batch: Batch) -> None:
        """pod.go Store: the new points become the last ones; the previous point of each
        container is the start of a fresh container, the stored last point when the new one is
        newer, or the stored previous point when that is still older (no restart between)."""
        last: Batch = {}
        prev: Batch = {}
        for pod, containers in batch.items():
            new_last, new_prev = {}, {}
            for name, point in containers.items():
                new_last[name] = point
                age = None if point.start_time is None else point.timestamp - point.start_time
                if age is not None and FRESH_CONTAINER_MIN_RESOLUTION <= age < self.resolution:
                    new_prev[name] = MetricsPoint(
                        point.start_time, point.start_time, 0, point.memory
                    )
                    continue
                stored = self.last.get(pod, {}).get(name)
                # A point whose container started after the stored one was read: a restart.
                if stored is None or not before(point.start_time, stored.timestamp):
                    continue
                if point.timestamp > stored.timestamp:
                    new_prev[name] = stored
                else:
                    # Go would keep a zero point for a container missing there (a rate over
                    # centuries); a pod with one container always has it.
                    earlier = self.prev.get(pod, {}).get(name)
                    if earlier is not None and earlier.timestamp < point.timestamp:
                        new_prev[name] = earlier
            if new_prev:
                prev[pod] = new_prev
            last[pod] = new_last
        self.last, self.prev = last, prev

    def get_metrics(self, pods: list[PodRef]) -> list[PodMetrics]:
        """pod.go GetMetrics: the pods with a last and a previous point for every container;
        a container whose counters went backwards is left out of its pod."""
        results = []
        for pod in pods:
            if pod not in self.last or pod not in self.prev:
                continue
            last, prev = self.last[pod], self.prev[pod]
            if any(name not in prev for name in last):
                continue
            containers = []
            earliest: tuple[int, int] | None = None  # (timestamp, window)
            for name in sorted(last):  # Go's map order is random; ties keep the first
                try:
                    cpu, memory, timestamp, window = resource_usage(last[name], prev[name])
                except UsageError:
                    continue
                containers.append(ContainerMetrics(name, cpu, memory))
                if earliest is None or earliest[0] > timestamp:
                    earliest = (timestamp, window)
            timestamp, window = earliest if earliest is not None else (None, 0)
            results.append(PodMetrics(pod, timestamp, window, tuple(containers)))
        return results

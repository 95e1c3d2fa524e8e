"""What metrics-server takes from a kubelet's /metrics/resource text (sigs.k8s.io/metrics-server
pkg/scraper/client/resource/decode.go decodeBatch), parsed with prometheus_client's text parser.

Per container, from its container, pod and namespace labels: container_cpu_usage_seconds_total
(core-seconds, kept as whole nanoseconds), container_memory_working_set_bytes and
container_start_time_seconds; a sample's timestamp (ms) is when it was read, the request's time
when it has none. A pod any of whose containers lacks CPU or memory, or reports 0 for either, is
left out whole (checkContainerMetrics). The node_* lines feed node metrics, which are not kept.
The start time is read to the microsecond (below), not through Go's float nanoseconds.
"""

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tools.rehearsal.cluster.metrics.storage import Batch, MetricsPoint, PodRef

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
START_TIME = "container_start_time_seconds"
MILLISECOND = 1_000_000  # nanoseconds


@dataclass
class Partial:
    """A container's point while its lines are read (Go's zero values: 0 and None)."""

    start_time: int | None = None
    timestamp: int | None = None
    cumulative_cpu: int = 0
    memory: int = 0

    def empty(self) -> bool:
        return self == Partial()


def decode(text: str, request_ms: int) -> Batch:
    """The pods' points in `text` (ValueError when it is not the text format)."""
    pods: dict[PodRef, dict[str, Partial]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in (CPU, MEMORY, START_TIME):
                continue
            labels = sample.labels
            pod = PodRef(labels.get("namespace", ""), labels.get("pod", ""))
            point = pods.setdefault(pod, {}).setdefault(labels.get("container", ""), Partial())
            ms = request_ms if sample.timestamp is None else round(float(sample.timestamp) * 1000)
            if sample.name == CPU:
                point.cumulative_cpu = int(sample.value * 1e9)
                point.timestamp = ms * MILLISECOND
            elif sample.name == MEMORY:
                point.memory = int(sample.value)
                point.timestamp = ms * MILLISECOND
            else:
                # To the microsecond: Go's int64(value*1e9) lands up to 128 ns off, which on the
                # exact times of a virtual clock would let the wall clock decide the fresh rule.
                point.start_time = round(sample.value * 1e6) * 1000
    batch: Batch = {}
    for pod, containers in pods.items():
        complete = complete_points(containers)
        if complete is not None:
            batch[pod] = complete
    return batch


def complete_points(containers: dict[str, Partial]) -> dict[str, MetricsPoint] | None:
    """decode.go checkContainerMetrics: None when a container misses CPU or memory."""
    points = {}
    for name, point in containers.items():
        if point.empty():
            continue
        if point.cumulative_cpu == 0 or point.memory == 0 or point.timestamp is None:
            return None
        points[name] = MetricsPoint(
            point.start_time, point.timestamp, point.cumulative_cpu, point.memory
        )
    return points

"""The kubelet's resource metrics endpoint, /metrics/resource, for the node's pods.

The text is what the kubelet's collector (kubernetes pkg/kubelet/metrics/collectors/
resource_metrics.go, resourceMetricsCollector.CollectWithStability) serves through the
Prometheus registry, in the text exposition format:
- one line per running container in container_cpu_usage_seconds_total (counter, core-seconds)
  and container_memory_working_set_bytes (gauge), each stamped with the time its counters were
  read, in milliseconds since the epoch; container_start_time_seconds (gauge, epoch seconds, no
  stamp); labels container, namespace and pod;
- resource_scrape_error and scrape_error 0 (the stats were read);
- families sorted by name and lines by their label values, values as Go's
  strconv.FormatFloat(v, 'g', -1, 64) writes them ("4.718592e+07"), as client_golang's Gather
  and expfmt do.
The usage is read when the endpoint is asked, as the CRI stats provider reads it (cAdvisor
serves what its last housekeeping read). The node_* and pod_* lines (the
node's and the pod's own cgroups) are not served: metrics-server's pod metrics read neither.
"""

import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from tools.rehearsal.cluster.node.container import ContainerUsage
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.timeline import Timeline

CPU_HELP = "[STABLE] Cumulative cpu time consumed by the container in core-seconds"
MEMORY_HELP = "[STABLE] Current working set of the container in bytes"
START_HELP = "[STABLE] Start time of the container since unix epoch in seconds"
ERROR_HELP = "1 if there was an error while getting container metrics, 0 otherwise"


@dataclass(frozen=True)
class WallClock:
    """The run's clock (the loop's) as the Unix epoch the kubelet stamps samples with, in
    milliseconds, anchored at the run's start (Timeline.start, Timeline.wall_start)."""

    start: float  # the run's start on the loop's clock
    start_ms: int  # and since the epoch

    @classmethod
    def of(cls, timeline: Timeline) -> "WallClock":
        return cls(timeline.start, round(timeline.wall_start * 1000))

    def epoch_ms(self, loop_time: float) -> int:
        return self.start_ms + round((loop_time - self.start) * 1000)

    def run_seconds(self, epoch_ms: int) -> float:
        return (epoch_ms - self.start_ms) / 1000


@dataclass(frozen=True)
class ContainerStats:
    namespace: str
    pod: str
    container: str
    usage: ContainerUsage


async def container_stats(pods: Iterable[Pod]) -> list[ContainerStats]:
    """The usage of every running container of `pods` (a container without one is left out,
    as the kubelet leaves out a container without CPU or memory stats)."""
    stats = []
    for pod in pods:
        if pod.gone or pod.container is None:
            continue
        usage = await pod.container.usage()
        if usage is not None:
            template = pod.template
            name = template.container_name
            stats.append(ContainerStats(template.namespace, pod.name, name, usage))
    return stats


def format_value(value: float) -> str:
    """`value` as Go's strconv.FormatFloat(value, 'g', -1, 64): the shortest digits that read
    back the same, in %e form when the exponent is below -4 or at least 6 (strconv/ftoa.go)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    point = len(digit_tuple) + exponent  # where the decimal point falls after the digits' first
    sign_text = "-" if sign else ""
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign_text}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{sign_text}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign_text}{digits}{'0' * (point - len(digits))}"
    return f"{sign_text}{digits[:point]}.{digits[point:]}"


def escape(label_value: str) -> str:
    return label_value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def family(name: str, kind: str, help_text: str, lines: list[tuple[str, str]]) -> list[str]:
    """A metric family's lines; `lines` are (labels, "value[ timestamp]") pairs."""
    if not lines:  # the registry drops a family without samples
        return []
    samples = [f"{name}{labels} {rest}" for labels, rest in sorted(lines)]
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def exposition(stats: list[ContainerStats], clock: WallClock) -> str:
    """The text of /metrics/resource for these containers."""
    cpu, memory, start = [], [], []
    for stat in stats:
        labels = (
            f'{{container="{escape(stat.container)}",namespace="{escape(stat.namespace)}",'
            f'pod="{escape(stat.pod)}"}}'
        )
        stamp = clock.epoch_ms(stat.usage.timestamp)
        cpu.append((labels, f"{format_value(stat.usage.cpu_seconds)} {stamp}"))
        memory.append((labels, f"{format_value(stat.usage.memory_working_set)} {stamp}"))
        started = clock.epoch_ms(stat.usage.started) / 1000
        if started > 0:
            start.append((labels, format_value(started)))
    lines = [
        *family("container_cpu_usage_seconds_total", "counter", CPU_HELP, cpu),
        *family("container_memory_working_set_bytes", "gauge", MEMORY_HELP, memory),
        *family("container_start_time_seconds", "gauge", START_HELP, start),
        *family("resource_scrape_error", "gauge", f"[STABLE] {ERROR_HELP}", [("", "0")]),
        *family("scrape_error", "gauge", f"[ALPHA] {ERROR_HELP}", [("", "0")]),
    ]
    return "".join(f"{line}\n" for line in lines)


def endpoint(pods: Callable[[], Iterable[Pod]], timeline: Timeline) -> Callable[[], Awaitable[str]]:
    """GET /metrics/resource on the kubelet of the node that runs `pods()`."""
    clock = WallClock.of(timeline)

    async def get() -> str:
        return exposition(await container_stats(pods()), clock)

    return get

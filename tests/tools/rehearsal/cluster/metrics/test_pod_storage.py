"""metrics-server's pod storage, against the cases of its own tests (sigs.k8s.io/metrics-server
pkg/storage/pod_test.go "Pod storage", types_test.go Test_resourceUsage), ported as named
vectors: the batches stored in turn, then what GetMetrics returns for pod1."""

from dataclasses import dataclass

import pytest

from tools.rehearsal.cluster.metrics.storage import (
    SECOND,
    ContainerMetrics,
    MetricsPoint,
    PodMetrics,
    PodRef,
    PodStorage,
    UsageError,
    resource_usage,
)

MIB = 1024 * 1024
CORE_SECOND = SECOND  # a core for a second, in nanoseconds of CPU
START = 1_700_000_000 * SECOND  # containerStart
POD = PodRef("ns1", "pod1")


def point(start: float | None, at: float, cpu: float, memory: int) -> MetricsPoint:
    """newMetricsPoint, times in seconds after START (start None: Go's zero time)."""
    started = None if start is None else START + round(start * SECOND)
    return MetricsPoint(started, START + round(at * SECOND), round(cpu * CORE_SECOND), memory)


@dataclass(frozen=True)
class Case:
    name: str
    batches: list[dict[str, MetricsPoint]]  # pod1's containers in each stored batch
    ready: bool
    expected: list[PodMetrics]


def served(at: float, window: float, *containers: ContainerMetrics) -> list[PodMetrics]:
    return [PodMetrics(POD, START + round(at * SECOND), round(window * SECOND), containers)]


CASES = [
    Case(
        "provides pod metrics from stored batches",
        [{"container1": point(0, 120, 1, 4 * MIB)}, {"container1": point(0, 125, 6, 5 * MIB)}],
        True,
        served(125, 5, ContainerMetrics("container1", 1 * CORE_SECOND, 5 * MIB)),
    ),
    Case(
        "waits for the second batch before serving",
        [{"container1": point(0, 120, 1, 4 * MIB)}],
        False,
        [],
    ),
    Case(
        "returns empty after a batch without the pod",
        [{"container1": point(0, 120, 1, 4 * MIB)}, {"container1": point(0, 125, 6, 5 * MIB)}, {}],
        False,
        [],
    ),
    Case(
        "returns timestamp of earliest container of pod",
        [
            {"container1": point(0, 110, 1, 4 * MIB), "container2": point(0, 115, 2, 5 * MIB)},
            {"container1": point(0, 120, 6, 6 * MIB), "container2": point(0, 125, 7, 7 * MIB)},
        ],
        True,
        served(
            120,
            10,
            ContainerMetrics("container1", 500_000_000, 6 * MIB),
            ContainerMetrics("container2", 500_000_000, 7 * MIB),
        ),
    ),
    Case(
        "handle repeated pod metric point",
        [{"container1": point(0, 110, 1, 4 * MIB)}, {"container1": point(0, 110, 1, 4 * MIB)}],
        False,
        [],
    ),
    Case(
        "should detect container restart and return results based on window from start time",
        [{"container1": point(0, 10, 1, 4 * MIB)}, {"container1": point(15, 25, 5, 5 * MIB)}],
        True,
        served(25, 10, ContainerMetrics("container1", 500_000_000, 5 * MIB)),
    ),
    Case(
        "should return pod empty metrics if decreased data point reported",
        [{"container1": point(0, 110, 20, 4 * MIB)}, {"container1": point(0, 120, 10, 4 * MIB)}],
        True,
        [PodMetrics(POD, None, 0, ())],
    ),
    Case(
        "should handle pod metrics older than prev",
        [
            {"container1": point(0, 1115, 20, 4 * MIB)},
            {"container1": point(0, 1125, 40, 4 * MIB)},
            {"container1": point(0, 115, 10, 4 * MIB)},
        ],
        False,
        [],
    ),
    Case(
        "should handle pod metrics prev.ts < newNode.ts < last.ts",
        [
            {"container1": point(0, 115, 10, 4 * MIB)},
            {"container1": point(0, 125, 50, 5 * MIB)},
            {"container1": point(0, 120, 35, 5 * MIB)},
        ],
        True,
        served(120, 5, ContainerMetrics("container1", 5 * CORE_SECOND, 5 * MIB)),
    ),
    Case(
        "should not use start time to return metric in one cycle for long running container",
        [{"container1": point(0, 120, 1, 4 * MIB)}],
        False,
        [],
    ),
    Case(
        "should use start time to return metric in one cycle for fresh new container",
        [{"container1": point(0, 10, 10, 4 * MIB)}],
        True,
        served(10, 10, ContainerMetrics("container1", 1 * CORE_SECOND, 4 * MIB)),
    ),
    Case(
        "should get empty metrics in one cycle for fresh new container's start time after "
        "timestamp",
        [{"container1": point(0, -10, 10, 4 * MIB)}],
        False,
        [],
    ),
    Case(
        "should get empty metrics in one cycle for fresh new container's time duration less "
        "than 10s between start time and timestamp",
        [{"container1": point(0, 9, 10, 4 * MIB)}],
        False,
        [],
    ),
    Case(
        "provides pod metrics from stored batches when StartTime is zero",
        [
            {"container1": point(None, 120, 1, 4 * MIB)},
            {"container1": point(None, 125, 6, 5 * MIB)},
        ],
        True,
        served(125, 5, ContainerMetrics("container1", 1 * CORE_SECOND, 5 * MIB)),
    ),
    Case(
        "should get empty metrics if not all containers data points of one pod reported at the "
        "first cycle",
        [
            {"container1": point(0, 110, 1, 4 * MIB)},
            {"container1": point(0, 120, 6, 6 * MIB), "container2": point(0, 120, 8, 5 * MIB)},
        ],
        True,
        [],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_pod_storage_as_metrics_server_tests_it(case: Case):
    storage = PodStorage(60 * SECOND)
    for batch in case.batches:
        storage.store({POD: batch} if batch else {})
    assert storage.ready() is case.ready
    assert storage.get_metrics([POD]) == case.expected
    assert storage.get_metrics([PodRef("ns1", "pod2")]) == []


def test_resource_usage_is_the_cpu_rate_and_the_last_working_set_over_the_window():
    # types_test.go Test_resourceUsage: 200 ns of CPU over 10 ms is 20000 nanocores.
    start = START
    last = MetricsPoint(start, start + 20_000_000, 500, 600)
    prev = MetricsPoint(start, start + 10_000_000, 300, 400)
    assert resource_usage(last, prev) == (20_000, 600, start + 20_000_000, 10_000_000)
    later_start = MetricsPoint(start + 20_000_000, start + 10_000_000, 300, 400)
    with pytest.raises(UsageError, match="unexpected decrease in startTime"):
        resource_usage(last, later_start)
    less_cpu = MetricsPoint(start, start + 20_000_000, 100, 600)
    with pytest.raises(UsageError, match="unexpected decrease in cumulative CPU usage value"):
        resource_usage(less_cpu, prev)


def test_a_fresh_container_is_only_fresh_below_the_resolution():
    # At the project's 15 s resolution only a first point 10 to 15 s after the start is enough.
    storage = PodStorage(15 * SECOND)
    storage.store({POD: {"app": point(0, 14.9, 1.49, MIB)}})
    assert storage.get_metrics([POD]) == served(14.9, 14.9, ContainerMetrics("app", 10**8, MIB))
    storage.store({POD: {"app": point(0, 15, 1.5, MIB)}})  # and the next point is measured
    assert storage.get_metrics([POD])[0].window == round(0.1 * SECOND)
    storage = PodStorage(15 * SECOND)
    storage.store({POD: {"app": point(0, 15, 1.5, MIB)}})
    assert storage.get_metrics([POD]) == []

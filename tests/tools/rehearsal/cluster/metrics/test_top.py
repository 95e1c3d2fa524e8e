"""`kubectl top pods` output, against the cases of kubectl's own test (kubernetes/kubectl
pkg/metricsutil/metrics_printer_test.go TestPrintPodMetrics, default sort and columns)."""

from tools.rehearsal.cluster.metrics.storage import ContainerMetrics, PodMetrics, PodRef
from tools.rehearsal.cluster.metrics.top import millicores, no_metrics, print_pod_metrics

GIB = 1024**3


def pod(name: str, *memories: int) -> PodMetrics:
    """A pod whose containers each use 0.2 cores and these many bytes."""
    containers = tuple(
        ContainerMetrics(f"container{n}", 200_000_000, memory)
        for n, memory in enumerate(memories, 1)
    )
    return PodMetrics(PodRef("default", name), 0, 60, containers)


def test_single_pod_with_multiple_containers():
    assert print_pod_metrics([pod("test", GIB, GIB)]) == (
        "NAME   CPU(cores)   MEMORY(bytes)   \ntest   400m         2048Mi          \n"
    )


def test_multiple_pods_sorted_by_name():
    assert print_pod_metrics([pod("test-1", 3 * GIB, 2 * GIB), pod("test", GIB, GIB)]) == (
        "NAME     CPU(cores)   MEMORY(bytes)   \n"
        "test     400m         2048Mi          \n"
        "test-1   400m         5120Mi          \n"
    )


def test_cpu_rounds_up_to_millicores_and_memory_down_to_mebibytes():
    # metrics-server serves nanocores; Quantity.MilliValue rounds up, Value()/Mi down.
    assert millicores(312_000_001) == 313 and millicores(312_000_000) == 312
    usage = PodMetrics(
        PodRef("default", "app-7d9c4-x2x9q"),
        0,
        15,
        (ContainerMetrics("app", 4_000_001, 45 * 1024 * 1024 + 1024 * 1023),),
    )
    assert print_pod_metrics([usage]).splitlines() == [
        "NAME              CPU(cores)   MEMORY(bytes)   ",
        "app-7d9c4-x2x9q   5m           45Mi            ",
    ]


def test_without_metrics_kubectl_says_why():
    assert print_pod_metrics([]) == ""
    assert no_metrics(True, "default") == "error: metrics not available yet\n"
    assert no_metrics(False, "shop") == "No resources found in shop namespace.\n"

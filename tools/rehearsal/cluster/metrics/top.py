"""`kubectl top pods` as kubectl prints it (kubernetes/kubectl pkg/metricsutil/
metrics_printer.go PrintPodMetrics, pkg/cmd/top/top_pod.go RunTopPod).

Each pod's containers are summed as quantities, then printed: CPU as its millicores rounded up
(Quantity.MilliValue) with "m", memory as whole mebibytes with "Mi"; pods sorted by name; the
columns aligned by cli-runtime's tab writer (minimum width 6, padding 3, every cell followed by
its padding, the last one too).
"""

from tools.rehearsal.cluster.metrics.storage import PodMetrics

COLUMNS = ("NAME", "CPU(cores)", "MEMORY(bytes)")
MIN_WIDTH, PADDING = 6, 3  # cli-runtime pkg/printers/tabwriter.go
MEBIBYTE = 1024 * 1024


def millicores(nanocores: int) -> int:
    """Quantity.MilliValue of a CPU quantity: rounded up."""
    return -(-nanocores // 1_000_000)


def aligned(rows: list[tuple[str, ...]]) -> str:
    widths = [max(MIN_WIDTH, *(len(row[i]) + PADDING for row in rows)) for i in range(len(rows[0]))]
    return "".join(
        "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + "\n"
        for row in rows
    )


def print_pod_metrics(metrics: list[PodMetrics]) -> str:
    """The table for these pods ("" for none, as kubectl prints nothing on stdout then)."""
    if not metrics:
        return ""
    rows = [COLUMNS]
    for pod in sorted(metrics, key=lambda m: m.pod.name):
        cpu = sum(container.cpu for container in pod.containers)
        memory = sum(container.memory for container in pod.containers)
        rows.append((pod.pod.name, f"{millicores(cpu)}m", f"{memory // MEBIBYTE}Mi"))
    return aligned(rows)


def no_metrics(pods_listed: bool, namespace: str) -> str:
    """What kubectl says (on stderr) when the API returned no metrics: an error while pods exist
    (verifyEmptyMetrics; pods older than 2 minutes are named there), else that there are none."""
    if pods_listed:
        return "error: metrics not available yet\n"
    return f"No resources found in {namespace} namespace.\n"

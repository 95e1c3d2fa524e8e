"""An HPA as `kubectl describe hpa` shows it (kubectl pkg/describe
describeHorizontalPodAutoscalerV2): its metrics (current / target), replica bounds, behavior, the
target's replicas, conditions and events; a metric reads as the controller names it, e.g. "cpu
resource utilization (percentage of request): 183% (458m) / 70%"."""

from tools.rehearsal.cluster.autoscaling.status import (
    COMPONENT,
    AutoscalerState,
    HpaEvent,
    MetricStatus,
)
from tools.rehearsal.manifests.autoscaler import (
    HorizontalPodAutoscaler,
    ResourceMetric,
    ScalingRules,
)

BINARY = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def quantity(milli: int, resource: str) -> str:
    """A milli-value as the API prints it: cpu in DecimalSI (458m, 2), memory in BinarySI."""
    if milli % 1000:
        return f"{milli}m"
    value = milli // 1000
    if resource == "cpu":
        return str(value)
    for suffix, size in BINARY:
        if value and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def metric_line(metric: ResourceMetric, status: MetricStatus | None) -> str:
    target = metric.target
    of_container = "" if metric.container is None else " container"
    if target.average_utilization is not None:
        name = f"{metric.resource}{of_container} resource utilization (percentage of request)"
        current = "<unknown>"
        if status is not None:
            value = quantity(status.average_value, metric.resource)
            current = f"{status.average_utilization}% ({value})"
        return f"{name}: {current} / {target.average_utilization}%"
    current = "<unknown>" if status is None else quantity(status.average_value, metric.resource)
    target_value = quantity(target.average_value, metric.resource)
    return f"{metric.resource}{of_container} resource: {current} / {target_value}"


def rules_lines(title: str, rules: ScalingRules, default_window: str) -> list[str]:
    window = rules.stabilization_window_seconds
    lines = [
        f"  {title}:",
        f"    Stabilization Window: {default_window if window is None else f'{window} seconds'}",
        f"    Select Policy: {rules.select_policy}",
        "    Policies:",
    ]
    lines += [
        f"      - Type: {p.type}  Value: {p.value}  Period: {p.period_seconds} seconds"
        for p in rules.policies
    ]
    if rules.tolerance is not None:
        lines.append(f"    Tolerance: {rules.tolerance}")
    return lines


def age(seconds: float) -> str:
    """kubectl's short duration (apimachinery duration.HumanDuration), for up to hours."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 10:
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    return f"{minutes}m"


def table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def describe(
    hpa: HorizontalPodAutoscaler,
    state: AutoscalerState,
    target_kind: str,
    events: list[tuple[float, HpaEvent]],
    now: float,
) -> str:
    statuses = state.current_metrics or (None,) * len(hpa.metrics)
    metrics = [metric_line(m, s) for m, s in zip(hpa.metrics, statuses, strict=False)]
    lines = [
        f"Name:          {hpa.name}",
        f"Namespace:     {hpa.namespace}",
        f"Reference:     {target_kind}/{hpa.target.name}",
        "Metrics:       ( current / target )",
        *(f"  {line}" for line in metrics),
        f"Min replicas:  {hpa.min_replicas}",
        f"Max replicas:  {hpa.max_replicas}",
    ]
    if hpa.behavior is not None:
        lines.append("Behavior:")
        lines += rules_lines("Scale Up", hpa.behavior.scale_up, "0 seconds")
        lines += rules_lines(
            "Scale Down", hpa.behavior.scale_down, "the controller's downscale stabilization"
        )
    lines.append(
        f"{target_kind} pods:  {state.current_replicas} current / {state.desired_replicas} desired"
    )
    if state.conditions:
        lines.append("Conditions:")
        header = ("Type", "Status", "Reason", "Message")
        rows = [(c.type, c.status, c.reason, c.message) for c in state.conditions]
        lines += table([header, tuple("-" * len(h) for h in header), *rows])
    if events:
        lines.append("Events:")
        header = ("Type", "Reason", "Age", "From", "Message")
        rows = [(e.type, e.reason, age(now - t), COMPONENT, e.message) for t, e in events]
        lines += table([header, tuple("-" * len(h) for h in header), *rows])
    else:
        lines.append("Events:        <none>")
    return "\n".join(lines)

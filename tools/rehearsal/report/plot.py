"""The timeline picture: answered and failed requests per second, latency, pod lifecycles."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tools.rehearsal.report.findings import per_second  # noqa: E402
from tools.rehearsal.report.latency import percentile  # noqa: E402
from tools.rehearsal.result import Result  # noqa: E402
from tools.rehearsal.timeline import PodEvent  # noqa: E402

PHASE_COLOURS = {
    "starting": "#c7c7c7",
    "ready": "#2ca02c",
    "terminating": "#ff7f0e",
    "draining": "#d62728",
}


def pod_phases(result: Result, pod: str, end: float) -> list[tuple[float, float, str]]:
    """(start, length, phase) bars from the pod's events."""
    bars = []
    phase, since = None, None
    for event in result.events:
        if event.source != pod:
            continue
        new = {
            PodEvent.CREATED: "starting",
            PodEvent.READY: "ready",
            PodEvent.NOT_READY: "starting",
            PodEvent.TERMINATING: "terminating",
            PodEvent.SIGTERM: "draining",
            PodEvent.GONE: None,
        }.get(event.kind, phase)
        if event.kind == PodEvent.NOT_READY and phase in ("terminating", "draining"):
            new = phase
        if new != phase:
            if phase is not None:
                bars.append((since, event.t - since, phase))
            phase, since = new, event.t
    if phase is not None:
        bars.append((since, end - since, phase))
    return bars


def replica_counts(result: Result, end: float) -> dict[str, list[tuple[float, int]]]:
    """Each ReplicaSet's ready pods over time (steps at each pod's ready, not ready, terminating
    and gone), from the pods' events."""
    owner = {pod: rs.name for rs in result.replica_sets for pod in rs.pods}
    ready: dict[str, set[str]] = {rs.name: set() for rs in result.replica_sets}
    steps: dict[str, list[tuple[float, int]]] = {rs.name: [(0.0, 0)] for rs in result.replica_sets}
    for event in result.events:
        rs = owner.get(event.source)
        if rs is None:
            continue
        if event.kind == PodEvent.READY:
            ready[rs].add(event.source)
        elif event.kind in (PodEvent.NOT_READY, PodEvent.TERMINATING, PodEvent.GONE):
            ready[rs].discard(event.source)
        else:
            continue
        steps[rs].append((event.t, len(ready[rs])))
    for rs in steps:
        steps[rs].append((end, len(ready[rs])))
    return steps


def draw_replicas(axis, result: Result, end: float) -> None:
    """Desired (the ReplicaSet's spec.replicas, dashed) and ready pods (solid) per ReplicaSet,
    each HPA rescale marked with what it read."""
    counts = replica_counts(result, end)
    for index, rs in enumerate(result.replica_sets):
        colour = f"C{index}"
        label = f"{rs.version} {rs.name[-10:]}"
        desired = [(0.0, 0)] + [(r.t, r.replicas) for r in rs.resizes]
        desired.append((end, desired[-1][1]))
        axis.plot(
            [t for t, _ in desired], [n for _, n in desired], drawstyle="steps-post",
            linestyle="--", color=colour, linewidth=1,
        )  # fmt: skip
        steps = counts[rs.name]
        axis.plot(
            [t for t, _ in steps], [n for _, n in steps], drawstyle="steps-post", color=colour,
            label=f"{label} ready (dashed: desired)",
        )  # fmt: skip
    scaling = result.autoscaling
    if scaling is not None:
        for sync in scaling.syncs:
            if sync.rescaled:
                axis.axvline(sync.t, color="#9467bd", linewidth=1)
                read = f" ({sync.utilization})" if sync.utilization else ""
                axis.annotate(
                    f"HPA {sync.current_replicas}->{sync.desired_replicas}{read}",
                    (sync.t, sync.desired_replicas), fontsize=7, color="#9467bd",
                    xytext=(3, 2), textcoords="offset points",
                )  # fmt: skip
    axis.set_ylabel("pods")
    axis.legend(loc="upper left", fontsize=7)


def draw_cpu(axis, result: Result) -> None:
    """Each pod's CPU as metrics-server served it after each scrape, against the HPA's target."""
    scaling = result.autoscaling
    by_pod: dict[str, list[tuple[float, int]]] = {}
    for sample in scaling.usage:
        by_pod.setdefault(sample.pod, []).append((sample.t, sample.cpu))
    for pod, points in by_pod.items():
        axis.plot([t for t, _ in points], [m for _, m in points], marker=".", linewidth=0.8,
                  label=pod[-5:])  # fmt: skip
    request = result.target.deployment.template.cpu_request
    for metric in scaling.hpa.metrics:
        utilization = metric.target.average_utilization
        if metric.resource == "cpu" and utilization is not None and request:
            target = request * 1000 * utilization / 100
            axis.axhline(target, color="#9467bd", linestyle=":", linewidth=1)
            axis.text(0, target, f" HPA target {target:.0f}m", fontsize=7, color="#9467bd",
                      va="bottom")  # fmt: skip
    axis.set_ylabel("CPU m (top)")
    if 0 < len(by_pod) <= 12:
        axis.legend(loc="upper left", fontsize=6, ncol=4)


def draw(result: Result, path: Path) -> Path:
    series = per_second(result.records)
    end = max([r.started for r in result.records] + [e.t for e in result.events] + [1.0])
    panels = [3, 1.5, 1.5, 3]
    if result.replica_sets:
        panels.append(2)
    if result.autoscaling is not None:
        panels.append(2)
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(11, 9 + 2 * (len(panels) - 4)),
        sharex=True,
        gridspec_kw={"height_ratios": panels},
    )
    answered, failures, latency, pods, *scaling = axes
    if result.replica_sets:
        draw_replicas(scaling[0], result, end)
    if result.autoscaling is not None:
        draw_cpu(scaling[-1], result)
    for version, counts in series["ok_by_version"].items():
        answered.plot(
            list(counts), list(counts.values()), drawstyle="steps-post", label=version or "?"
        )
    answered.set_ylabel("answered / s")
    answered.legend(loc="upper left", title="version")
    stacked: dict[int, int] = {}
    for kind, counts in series["failed_by_kind"].items():
        bottoms = [stacked.get(second, 0) for second in counts]
        failures.bar(
            list(counts), list(counts.values()), bottom=bottoms, width=1, align="edge", label=kind
        )
        for second, count in counts.items():
            stacked[second] = stacked.get(second, 0) + count
    failures.set_ylabel("failed / s")
    if series["failed_by_kind"]:
        failures.legend(loc="upper left")
    else:
        failures.text(
            0.5, 0.5, "no failed request", transform=failures.transAxes, ha="center", va="center"
        )
    latencies: dict[int, list[float]] = {}
    for record in result.records:
        if record.ok:
            latencies.setdefault(int(record.started), []).append(record.latency * 1000)
    seconds = sorted(latencies)
    p99 = [percentile(latencies[second], 0.99) for second in seconds]
    latency.plot(seconds, p99, drawstyle="steps-post", color="#555")
    latency.set_ylabel("p99 ms")
    names = [pod.name for pod in result.pods]
    for row, name in enumerate(names):
        for start, length, phase in pod_phases(result, name, end):
            pods.broken_barh([(start, length)], (row - 0.4, 0.8), color=PHASE_COLOURS[phase])
    pods.set_yticks(range(len(names)))
    pods.set_yticklabels(
        [
            f"{p.version} {p.name[-5:]}" + (f" ({p.restarts} restarts)" if p.restarts else "")
            for p in result.pods
        ]
    )
    pods.invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLOURS.values()]
    pods.legend(
        handles,
        ["starting / not ready", "ready", "terminating (preStop)", "SIGTERM sent"],
        loc="lower left",
        fontsize=8,
    )
    axes[-1].set_xlabel("seconds")
    for axis in axes:
        axis.axvline(result.rollout_started, color="k", linestyle="--", linewidth=0.8)
        if result.rollout_completed is not None:
            axis.axvline(result.rollout_completed, color="k", linestyle=":", linewidth=0.8)
    failed = len(result.failed)
    figure.suptitle(
        f"{result.name}: {result.source.deployment.template.version} -> "
        f"{result.target.deployment.template.version}, {len(result.records)} requests, "
        f"{failed} failed (dashed: rollout start, dotted: complete)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def draw_releases(rows: list[tuple[str, Result]], path: Path) -> Path:
    """One release strategy above the other: answered requests per second per version, and
    the failed ones, for each rehearsal."""
    figure, axes = plt.subplots(len(rows), 1, figsize=(11, 2.2 * len(rows)), sharex=False)
    for axis, (label, result) in zip(axes, rows, strict=True):
        series = per_second(result.records)
        start = int(result.rollout_started)
        for version, counts in series["ok_by_version"].items():
            seconds = [second - start for second in counts]
            axis.plot(seconds, list(counts.values()), drawstyle="steps-post", label=version or "?")
        failed: dict[int, int] = {}
        for counts in series["failed_by_kind"].values():
            for second, count in counts.items():
                failed[second - start] = failed.get(second - start, 0) + count
        if failed:
            axis.bar(list(failed), list(failed.values()), width=1, align="edge", color="#d62728",
                     label="failed")  # fmt: skip
        axis.axvline(0, color="k", linestyle="--", linewidth=0.8)
        outcome = "aborted: " + result.aborted if result.aborted else (
            "complete" if result.rollout_completed is not None else result.rollout_failed
        )  # fmt: skip
        axis.set_title(
            f"{label}: {len(result.records)} requests, {len(result.failed)} failed ({outcome})",
            fontsize=9,
            loc="left",
        )
        axis.set_ylabel("per second", fontsize=8)
        axis.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("seconds from the start of the release (dashed)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path

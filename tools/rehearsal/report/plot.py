"""The timeline picture: answered and failed requests per second, latency, pod lifecycles."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tools.rehearsal.report.findings import per_second, percentile  # noqa: E402
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


def draw(result: Result, path: Path) -> Path:
    series = per_second(result.records)
    end = max([r.started for r in result.records] + [e.t for e in result.events] + [1.0])
    figure, (answered, failures, latency, pods) = plt.subplots(
        4, 1, figsize=(11, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1.5, 1.5, 3]}
    )
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
    pods.set_xlabel("seconds")
    for axis in (answered, failures, latency, pods):
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

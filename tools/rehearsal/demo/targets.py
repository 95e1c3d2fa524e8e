"""The demo's benchmark targets beside the figures of the run (printed, never asserted;
docs/benchmarks.md)."""

from tools.rehearsal.demo.ours import describe_rescales, rescales_during_rollout
from tools.rehearsal.demo.outside import ExposureRun
from tools.rehearsal.demo.releases import Release
from tools.rehearsal.demo.scaledown import ScaleDownRun
from tools.rehearsal.report import latency
from tools.rehearsal.result import Result

WALL_SECONDS = 150.0


def targets(
    result: Result,
    ours: dict,
    releases: list[Release],
    outside: list[ExposureRun],
    scale_down: list[ScaleDownRun],
    wall_seconds: float,
) -> str:
    """The benchmark targets beside this run's figures (printed, never asserted)."""
    baseline = ours["latency"]["steady"]
    steady, during = baseline["p99_ms"], ours["latency"]["rollout"]["p99_ms"]
    rollout = ours["rollout"]
    load_share = ours["load_rps"] / ours["capacity_rps"] if ours["capacity_rps"] else 0.0
    rows = [
        (
            "load >= 50% of capacity",
            f"{ours['load_rps']:.0f} of {ours['capacity_rps'] or 0:.0f} req/s ({load_share:.0%})",
            load_share >= 0.495,
        ),
        (
            "0 failed of >= 10,000 requests",
            f"{ours['failed']} failed of {ours['requests']}",
            ours["failed"] == 0 and ours["requests"] >= 10_000,
        ),
        (
            "HPA scales ours 3 -> >= 5 in its rollout",
            describe_rescales(result),
            any(sync.desired_replicas >= 5 for sync in rescales_during_rollout(result)),
        ),
    ]
    if steady and during:
        rows.append(
            (
                "p99 during rollout <= 2 x steady",
                f"{during:.1f} vs {steady:.1f} ms ({during / steady:.2f}x)",
                during <= 2 * steady and baseline["requests"] >= latency.MIN_BASELINE_REQUESTS,
            )
        )
    # The baseline's window: after the capacity probe has settled (report/latency.py).
    rows.append(
        (
            f"  steady window, probe + {latency.SETTLE_SECONDS:g} s",
            latency.window_text(baseline),
            baseline["requests"] >= latency.MIN_BASELINE_REQUESTS,
        )
    )
    if rollout["duration_s"] and rollout["lower_bound_s"]:
        ratio = rollout["duration_s"] / rollout["lower_bound_s"]
        rows.append(
            (
                "rollout <= 1.5 x lower bound",
                f"{rollout['duration_s']:.1f} vs {rollout['lower_bound_s']:.1f} s ({ratio:.2f}x)",
                ratio <= 1.5,
            )
        )
    for release in releases:
        result = release.result
        failed = len(result.failed)
        if release.broken and release.strategy == "rollout-blue-green":
            rows.append(("broken v2, blue-green: 0 failed", f"{failed} failed", failed == 0))
        elif release.broken and release.strategy == "rollout-canary":
            rows.append(
                (
                    "broken v2, canary: failed <= bound",
                    f"{failed} failed, bound {result.failure_bound}",
                    0 < failed <= result.failure_bound,
                )
            )
        elif release.broken:
            rows.append(("broken v2, rolling update (beside)", f"{failed} failed", True))
        else:
            rows.append((f"good v2, {release.label.split(',')[0]}: 0 failed", f"{failed} failed",
                         failed == 0 and result.ok))  # fmt: skip
        if result.rollout_duration and result.lower_bound:
            ratio = result.rollout_duration / result.lower_bound
            rows.append(
                (
                    f"  {release.label}: rollout vs lower bound",
                    f"{result.rollout_duration:.1f} vs {result.lower_bound:.1f} s ({ratio:.2f}x)",
                    ratio <= 1.5,
                )
            )
    for run in outside:
        if run.ours and run.result is not None:
            failed = len(run.result.failed)
            figure = f"{failed} failed of {len(run.result.records)}"
            rows.append(("from outside (ALB), ours: 0 failed", figure, run.result.ok))
    for run in scale_down:
        if run.ours and run.result is not None:
            text, ok = run.verdict()
            rows.append(("HPA removing pods, ours: 0 failed", text.split(", ", 1)[1], ok))
    rows.append(
        (
            f"whole demo <= {WALL_SECONDS:g} s",
            f"{wall_seconds:.1f} s",
            wall_seconds <= WALL_SECONDS,
        )
    )
    lines = ["== benchmark targets (ours; printed, not asserted) =="]
    lines += [f"  {name:<34} {figure:<36} {'met' if ok else 'MISSED'}" for name, figure, ok in rows]
    return "\n".join(lines)

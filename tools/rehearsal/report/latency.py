"""Latency windows of a rehearsal: the steady baseline and the rollout, each with the window it
was measured in and how many requests its percentiles rest on."""

import math

from tools.rehearsal.result import Result
from tools.rehearsal.traffic.outcomes import RequestRecord

# The steady baseline starts this long after the capacity probe's backlog is gone. Measured in
# four runs of the demo's ours (2 cores, busy with other work): the probe's last request was
# answered 1-49 ms after the load turned steady (its closed loop keeps no more requests in
# flight than it has clients), but the p50 of the next 0.25 s was 23-42 ms, three to five times
# the window's 6-14 ms, and it was back to that level 0.5 s after the probe (0.75 s in one run).
# 1.5 s is twice the longest.
SETTLE_SECONDS = 1.5
# Fewer requests in a latency window and its p99 rests on a handful of them: 1000 puts at least
# ten above it.
MIN_BASELINE_REQUESTS = 1000


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency(records: list[RequestRecord], start: float, end: float) -> dict:
    """p50 and p99 of the requests answered that started in [start, end), with the window."""
    values = [r.latency * 1000 for r in records if start <= r.started < end and r.ok]
    return {
        "start_s": start,
        "end_s": end,
        "requests": len(values),
        "p50_ms": percentile(values, 0.5),
        "p99_ms": percentile(values, 0.99),
    }


def steady_window(result: Result) -> tuple[float, float]:
    """The steady baseline's window, to the release. After a capacity probe it starts
    SETTLE_SECONDS after the probe's backlog is gone (the last request started before the load
    turned steady answered): the first moments of the steady load still carry the saturation."""
    start = result.steady_started
    if result.capacity is not None:
        backlog = [r.started + r.latency for r in result.records if r.started < start]
        start = max([start, *backlog]) + SETTLE_SECONDS
    return start, max(start, result.rollout_started)


def window_text(figures: dict) -> str:
    """A latency window: where it lies and how many requests its percentiles rest on."""
    text = f"{figures['start_s']:.1f}-{figures['end_s']:.1f} s, {figures['requests']} requests"
    if figures["requests"] < MIN_BASELINE_REQUESTS:
        text += f": too few for a p99 (< {MIN_BASELINE_REQUESTS})"
    return text

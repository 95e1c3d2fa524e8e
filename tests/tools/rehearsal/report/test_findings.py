"""The steady latency baseline (tools/rehearsal/report/findings.py): a window after the capacity
probe has settled, reported with its start, end and number of requests.

The runs are made up, shaped as the demo's ours measured them: a closed-loop capacity probe,
then the steady load, whose first half second after the probe is several times slower than the
rest; a baseline starting where the load turns steady takes that in.
"""

import json
from pathlib import Path

import pytest

from tests.tools.rehearsal.made_up import made_up_result
from tools.rehearsal.report import findings, latency
from tools.rehearsal.result import Result
from tools.rehearsal.traffic.outcomes import OK, RequestRecord

LOAD_STARTED, STEADY_STARTED, ROLLOUT_STARTED, SETTLED = 5.0, 8.0, 20.0, 30.0
PROBE_DRAINED = STEADY_STARTED + 0.05  # the probe's last request answered
RATE = 600.0  # requests/s of the steady load


def spaced(start: float, end: float, rate: float, latency_ms, outcome: str = OK) -> list:
    """Requests every 1/rate s in [start, end); latency_ms(i) for the i-th."""
    count = round((end - start) * rate)
    return [
        RequestRecord(start + i / rate, latency_ms(i) / 1000, outcome, "v1", "wget")
        for i in range(count)
    ]


def probed_records(after_probe_ms: float = 40.0) -> list[RequestRecord]:
    """A 3 s probe at 1000 req/s, one of its requests answered at PROBE_DRAINED; 0.5 s of
    steady load at `after_probe_ms`; then 5 ms but every 50th at 12 ms to the release; 8 ms
    during the rollout."""
    return [
        *spaced(LOAD_STARTED, STEADY_STARTED - 0.01, 1000, lambda i: 16),
        RequestRecord(STEADY_STARTED - 0.01, PROBE_DRAINED - STEADY_STARTED + 0.01, OK, "v1", "go"),
        *spaced(STEADY_STARTED, STEADY_STARTED + 0.5, RATE, lambda i: after_probe_ms),
        *spaced(STEADY_STARTED + 0.5, ROLLOUT_STARTED, RATE, lambda i: 12 if i % 50 == 0 else 5),
        *spaced(ROLLOUT_STARTED, SETTLED, RATE, lambda i: 8),
    ]


def probed_run(
    records: list[RequestRecord] | None = None,
    capacity: float | None = 1000.0,
    rollout_started: float = ROLLOUT_STARTED,
) -> Result:
    return made_up_result(
        records=probed_records() if records is None else records,
        capacity=capacity,
        rate=RATE,
        load_started=LOAD_STARTED,
        steady_started=STEADY_STARTED,
        rollout_started=rollout_started,
        rollout_completed=SETTLED - 1,
        settled=SETTLED,
        final_versions=["v2"] * 3,
    )


def test_the_steady_baseline_starts_once_the_probe_has_settled():
    steady = findings.summarize(probed_run())["latency"]["steady"]
    # From where the load turned steady, the slow half second after the probe (300 requests,
    # 4 % of the window) would be the p99: 40 ms.
    assert (steady["p50_ms"], steady["p99_ms"]) == (5, 12)
    assert steady["start_s"] == pytest.approx(PROBE_DRAINED + latency.SETTLE_SECONDS)
    assert steady["end_s"] == ROLLOUT_STARTED
    expected = round((ROLLOUT_STARTED - steady["start_s"]) * RATE)
    assert abs(steady["requests"] - expected) <= 1


def test_a_probe_request_still_unanswered_holds_the_baseline_back():
    """The backlog is gone when the probe's last request is answered: one stuck for 4 s moves
    the window's start with it."""
    stuck = RequestRecord(STEADY_STARTED - 0.5, 4.0, "timeout", "", "wget")
    steady = findings.summarize(probed_run([*probed_records(), stuck]))["latency"]["steady"]
    assert steady["start_s"] == pytest.approx(STEADY_STARTED + 3.5 + latency.SETTLE_SECONDS)


def test_without_a_probe_the_baseline_is_the_whole_steady_load():
    """A run at a given rate measured no capacity: nothing to settle from."""
    steady = findings.summarize(probed_run(capacity=None))["latency"]["steady"]
    assert (steady["start_s"], steady["end_s"]) == (STEADY_STARTED, ROLLOUT_STARTED)


def test_a_release_before_the_probe_settled_leaves_an_empty_window():
    steady = latency.latency([], *latency.steady_window(probed_run(rollout_started=8.5)))
    assert steady["requests"] == 0 and steady["start_s"] == steady["end_s"]


def test_the_report_and_the_json_give_the_window(tmp_path: Path):
    result = probed_run()
    summary = findings.summarize(result)
    steady = summary["latency"]["steady"]
    window = f"{steady['start_s']:.1f}-{steady['end_s']:.1f} s, {steady['requests']} requests"
    assert f"p50/p99 steady 5.0/12.0 ms ({window})" in findings.text(summary)
    findings.write_json(result, summary, tmp_path / "ours.json")
    written = json.loads((tmp_path / "ours.json").read_text())["latency"]["steady"]
    assert written == steady
    assert set(written) == {"start_s", "end_s", "requests", "p50_ms", "p99_ms"}


def test_a_window_of_few_requests_says_its_p99_means_little():
    few = latency.latency(probed_records(), 10.0, 11.0)
    assert few["requests"] == RATE < latency.MIN_BASELINE_REQUESTS
    assert latency.window_text(few).endswith(
        f"600 requests: too few for a p99 (< {latency.MIN_BASELINE_REQUESTS})"
    )

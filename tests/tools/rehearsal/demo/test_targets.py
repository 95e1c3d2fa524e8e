"""The demo's latency target (tools/rehearsal/demo/targets.py): compared with the settled steady
baseline, whose window the target's line gives."""

from tests.tools.rehearsal.report.test_findings import probed_run
from tools.rehearsal.demo.targets import targets
from tools.rehearsal.report import findings, latency


def target_rows(**run) -> dict[str, tuple[str, str]]:
    """Each target's name: (this run's figure, met or MISSED)."""
    result = probed_run(**run)
    lines = targets(result, findings.summarize(result), [], [], [], 100.0).splitlines()[1:]
    return {line[:36].strip(): tuple(line[36:].strip().rsplit(maxsplit=1)) for line in lines}


def test_the_p99_target_is_against_the_settled_baseline_with_its_window():
    rows = target_rows()
    # During the rollout 8 ms; the settled baseline 12 ms (from where the load turned steady,
    # the probe's slow half second made it 40 ms).
    assert rows["p99 during rollout <= 2 x steady"] == ("8.0 vs 12.0 ms (0.67x)", "met")
    window = rows[f"steady window, probe + {latency.SETTLE_SECONDS:g} s"]
    assert window == ("9.6-20.0 s, 6270 requests", "met")


def test_a_baseline_of_too_few_requests_misses_the_target():
    rows = target_rows(rollout_started=10.5)  # 0.95 s of settled load: 570 requests
    assert rows["p99 during rollout <= 2 x steady"][1] == "MISSED"
    window = rows[f"steady window, probe + {latency.SETTLE_SECONDS:g} s"]
    assert window == ("9.6-10.5 s, 570 requests: too few for a p99 (< 1000)", "MISSED")

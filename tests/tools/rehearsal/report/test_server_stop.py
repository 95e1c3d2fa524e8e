"""The server's stop as the report tells it (tools/rehearsal/report/server.py): the lag a
termination tolerates, measured for any server, the app's hook by its contract, and the timings
recommended against the run's lag model."""

import math
from dataclasses import replace

from tools.rehearsal import tolerance
from tools.rehearsal.cluster.node.shutdown import IDLE_CLOSED, ServerStop
from tools.rehearsal.manifests.pod import PreStop
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.report import server
from tools.rehearsal.result import Result
from tools.repo import ROOT
from tools.validate.workload import QUIET_HOOK_PATH

LAG = 12.0  # every view this late, the model's bound
# A server that stops accepting 0.4 s after its stop signal and exits 2.5 s after it.
STOPPED = ServerStop("p", 0.0, 0.4, IDLE_CLOSED, 0.1, 2.5)


def run(pre_stop: PreStop | None, stops: list[ServerStop]) -> Result:
    # The pods a completed rollout stops are the old ones: the source's template is theirs.
    v1 = load_overlay(ROOT / "overlays/v1", "overlays/v1")
    v2 = load_overlay(ROOT / "overlays/v2", "overlays/v2")
    template = replace(v1.deployment.template, pre_stop=pre_stop)
    v1 = replace(v1, deployment=replace(v1.deployment, template=template))
    return Result(
        name="r",
        source=v1,
        target=v2,
        options=Options(progress=False, propagation_delay=LAG, propagation_jitter=0.0),
        runtime="process",
        records=[],
        events=[],
        pods=[],
        capacity=None,
        rate=1.0,
        load_started=0.0,
        steady_started=0.0,
        rollout_started=0.0,
        rollout_completed=1.0,
        rollout_failed="",
        settled=1.0,
        startup_seconds=1.0,
        final_versions=[],
        proxy_no_endpoint=0,
        proxy_backend_failed=0,
        server_stops=stops,
    )


def test_without_a_hook_the_server_tolerates_its_own_accept_window_and_a_sleep_is_recommended():
    found = server.summary(run(None, [STOPPED]))
    assert found["tolerated_lag_s"] == 0.4
    # The sleep covers the lag the server does not cover itself; the grace period the sleep,
    # the slowest exit and the margin.
    assert found["recommended"] == {
        "preStop_sleep_s": math.ceil(LAG - 0.4),
        "grace_s": math.ceil(math.ceil(LAG - 0.4) + 2.5 + server.EXIT_MARGIN),
    }
    lines = server.text_lines(found)
    assert any("closes idle kept-alive connections when stopped" in line for line in lines)


def test_a_sleep_that_covers_the_lag_needs_no_recommendation():
    slept = replace(STOPPED, deleted=-15.0)  # its preStop took 15 s
    found = server.summary(run(PreStop("sleep", seconds=15), [slept]))
    assert found["tolerated_lag_s"] == 15.4 and found["recommended"] is None


def test_the_apps_hook_is_judged_by_its_contract_not_by_a_quiet_run():
    hook = PreStop("http", port=8080, path=QUIET_HOOK_PATH)
    quick = replace(STOPPED, deleted=-5.0)  # quiet at once: the hook's minimum
    result = run(hook, [quick])
    found = server.summary(result)
    contract = tolerance.of(result.source.deployment.template, "overlays/v1").seconds
    assert found["tolerated_lag_s"] == contract > LAG
    assert found["recommended"] is None

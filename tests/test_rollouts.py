"""Progressive delivery rehearsed: blue-green and canary releases of a good and a broken v2.

Real server processes and load; the Argo Rollouts controller, the kubelet and the Services
emulated; the analysis is the AnalysisTemplate's own command, run against the emulated preview
or canary Service. A broken v2 is ready and healthy but answers /status with 500
(tools/fixtures/broken).
"""

import pytest

from tests.test_rehearsal import SMALL_HPA, V1, V2, options, rehearse, small
from tools.rehearsal.cli import EXIT_ABORTED
from tools.rehearsal.cli import main as cli_main
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay

BLUE_GREEN, CANARY = "rollout-blue-green", "rollout-canary"
# Scaled down as the other rehearsal tests are: 2 replicas, short delays.
SHORT = {
    BLUE_GREEN: [
        variants.put("/spec/strategy/blueGreen/scaleDownDelaySeconds", 2),
        variants.put("/spec/strategy/blueGreen/abortScaleDownDelaySeconds", 2),
    ],
    # The pause before the analysis: still over the 0.6 s these tests' views lag at most.
    CANARY: [
        variants.put("/spec/strategy/canary/steps/1/pause/duration", "2s"),
        variants.put("/spec/strategy/canary/steps/4/pause/duration", "1s"),
    ],
}


def release(tmp_path, component: str, broken: bool = False):
    common = [variants.put("/spec/replicas", 2), variants.put("/spec/minReadySeconds", 1)]
    v2_ops = small(V2) + (variants.broken_release() if broken else [])
    source = variants.write(
        V1, small(V1), tmp_path / "v1", [component], common + SHORT[component], SMALL_HPA
    )
    target = variants.write(
        V2, v2_ops, tmp_path / ("v2-broken" if broken else "v2"), [component],
        common + SHORT[component], SMALL_HPA,
    )  # fmt: skip
    return source, target


def run(tmp_path, component: str, broken: bool = False):
    source, target = release(tmp_path, component, broken)
    return rehearse(load_overlay(source), load_overlay(target), options(tmp_path))


@pytest.mark.rehearsal
@pytest.mark.parametrize("component", [BLUE_GREEN, CANARY])
def test_a_good_release_completes_and_loses_nothing(tmp_path, component):
    result = run(tmp_path, component)
    assert result.ok, result.rollout_failed
    assert result.failed == []
    assert [run.passed for run in result.analyses] == [True]
    assert result.final_versions == ["v2", "v2"]
    assert {record.version for record in result.records} == {"v1", "v2"}


@pytest.mark.rehearsal
def test_a_broken_release_under_blue_green_never_reaches_a_user(tmp_path):
    result = run(tmp_path, BLUE_GREEN, broken=True)
    assert result.aborted == "pre-promotion analysis failed"
    assert [run.passed for run in result.analyses] == [False]
    assert result.failed == []
    # The active Service never moved: every user request was answered by v1.
    assert {record.version for record in result.records} == {"v1"}
    assert result.new_version_exposure == 0
    assert result.aborted_as_designed


@pytest.mark.rehearsal
def test_a_broken_release_under_canary_is_stopped_at_the_first_analysis_within_its_bound(
    tmp_path,
):
    result = run(tmp_path, CANARY, broken=True)
    assert result.aborted == "analysis at step 3 failed"
    assert 0 < len(result.failed) <= result.failure_bound
    assert {record.outcome for record in result.failed} == {"http 500"}
    assert result.aborted_as_designed
    assert result.final_versions == ["v1", "v1"]


@pytest.mark.rehearsal
def test_the_exit_status_says_aborted_as_designed(tmp_path, capsys):
    source, target = release(tmp_path, BLUE_GREEN, broken=True)
    argv = ["--from", str(source), "--to", str(target), "--rate", "100", "--quiet"]
    argv += ["--propagation-delay", "0.5", "--steady-seconds", "0.5", "--out", str(tmp_path)]
    assert cli_main([*argv, "--no-plot"]) == EXIT_ABORTED
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(" requests, 0 failed")


@pytest.mark.rehearsal
def test_a_rollout_adopts_the_running_deployment_under_load_and_loses_nothing(tmp_path):
    """overlays/v1 as a plain Deployment -> the same overlay with the blue-green component
    (workloadRef, scaleDown: progressively): the Rollout's pods join the users' Service, which
    Argo Rollouts then narrows to them, while the Deployment is scaled down."""
    common = [variants.put("/spec/replicas", 2), variants.put("/spec/minReadySeconds", 1)]
    source = variants.write(V1, small(V1), tmp_path / "deployment", kind_ops=SMALL_HPA)
    target = variants.adoption(
        V1, BLUE_GREEN, "progressively", tmp_path / "adopted", small(V1), common, SMALL_HPA
    )
    result = rehearse(load_overlay(source), load_overlay(target), options(tmp_path))
    assert result.ok, result.rollout_failed
    assert result.failed == []
    # The Deployment's two pods went, the Rollout's two serve.
    assert len(result.pods) == 4
    assert result.final_versions == ["v1", "v1"]
    users = f"service {result.target.service.name}"
    selector = [e for e in result.events if e.source == users and e.kind == "selector"]
    assert selector, "the active Service was never narrowed to the Rollout's pods"

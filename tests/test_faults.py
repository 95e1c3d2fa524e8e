"""Fault scenarios people ask about, rehearsed with real server processes and load: a crash,
a node drain under a PodDisruptionBudget, a long request in flight when its pod goes."""

import dataclasses

import pytest

from tests.test_rehearsal import V1, V2, failures, options, rehearse, small, variant
from tools.rehearsal.cluster.faults import CRASH, NODE_DRAIN, SLOW_REQUEST, Faults
from tools.rehearsal.cluster.node.container_runtime import ContainerRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.report.findings import summarize
from tools.rehearsal.traffic.outcomes import OK


def fault(result, kind: str) -> dict:
    (found,) = [f for f in summarize(result)["faults"] if f["kind"] == kind]
    return found


@pytest.mark.rehearsal
def test_a_crash_loses_only_what_was_on_the_crashed_pod_and_the_rollout_goes_on(tmp_path):
    source = variant(tmp_path, V1, small(V1), "v1")
    target = variant(tmp_path, V2, small(V2), "v2")
    result = rehearse(source, target, options(tmp_path, faults=Faults(kill_at=0.3)))
    crash = fault(result, CRASH)
    (killed,) = crash["pods"]
    assert result.rollout_completed is not None
    assert crash["failed_elsewhere"] == 0
    assert crash["failed_on_its_pods"] == len(result.failed)
    assert any(e.source == killed and e.kind == "killed" for e in result.events)
    # The kubelet saw the container die (SIGKILL: 137, or -9 for a process).
    (pod,) = [p for p in result.pods if p.name == killed]
    assert pod.exit_codes and pod.exit_codes[0] in (137, -9)


@pytest.mark.rehearsal
@pytest.mark.parametrize(
    ("max_unavailable", "always_allow_unhealthy", "refusals"),
    [(1, False, True), ("100%", True, False)],
)
def test_a_node_drain_waits_for_the_disruption_budget_and_loses_nothing(
    tmp_path, max_unavailable, always_allow_unhealthy, refusals
):
    source = variant(tmp_path, V1, small(V1), "v1")
    target = variant(tmp_path, V2, small(V2), "v2")
    budget = dataclasses.replace(
        target.disruption_budget,
        max_unavailable=max_unavailable,
        always_allow_unhealthy=always_allow_unhealthy,
    )
    target = dataclasses.replace(target, disruption_budget=budget)
    result = rehearse(source, target, options(tmp_path, faults=Faults(evict_at=0.2)))
    drain = fault(result, NODE_DRAIN)
    assert result.rollout_completed is not None
    assert len(drain["pods"]) >= 2  # both v1 pods, and whatever v2 pod had started
    assert (drain["refused"] > 0) is refusals
    if refusals:  # with the manifests' budget, a drain costs nothing
        assert failures(result) == {}


@pytest.mark.rehearsal
@pytest.mark.parametrize(
    ("graceful_timeout", "seconds", "answered"), [("12", 15, True), ("0", 25, False)]
)
def test_a_long_request_finishes_when_the_graceful_timeout_covers_it(
    tmp_path, graceful_timeout, seconds, answered
):
    env = {"GRACEFUL_TIMEOUT": graceful_timeout}
    source = variant(tmp_path, V1, small(V1, extra_env=env), "v1")
    target = variant(tmp_path, V2, small(V2, extra_env=env), "v2")
    # The request starts with the rollout; its pod is deleted 2 to 6 s into it (over 10 s on a
    # busy CI machine) and killed preStop 1 s + drain 4 s + GRACEFUL_TIMEOUT later, within the
    # 15 s grace period. With 12 s that is after a 15 s request's end however early the deletion;
    # with 0 s it is before a 25 s request's end unless the deletion comes 20 s in (a CI run
    # answered a 15 s one: its pod was deleted 10 s in). The failed request ends the wait early.
    result = rehearse(source, target, options(tmp_path, faults=Faults(slow_request=seconds)))
    slow = fault(result, SLOW_REQUEST)
    assert slow["deleted_while_running"]  # the rollout deleted its pod while it ran
    assert (slow["outcome"] == OK) is answered
    assert result.ok is answered


@pytest.mark.container
@pytest.mark.rehearsal
def test_a_release_that_outgrows_its_memory_limit_is_oom_killed_and_never_rolls_out(
    tmp_path, engine, images
):
    """The engine enforces the manifest's limits (memory 256Mi here): a v2 that allocates more
    at start is OOM-killed and restarted, never becomes ready, the rollout stops at its
    progress deadline, and the v1 pods lose nothing."""
    source = variant(tmp_path, V1, small(V1), "v1")
    hog = [
        *small(V2),
        *variants.memory_hog(400),
        variants.put("/spec/progressDeadlineSeconds", 12),
    ]
    target = variant(tmp_path, V2, hog, "v2-hog")
    assert target.deployment.template.memory_limit == 256 * 2**20
    result = rehearse(source, target, options(tmp_path, rate=80.0), ContainerRuntime(engine))
    assert result.rollout_failed == "ProgressDeadlineExceeded"
    assert failures(result) == {}
    assert {record.version for record in result.records} == {"v1"}
    (hogged,) = [pod for pod in result.pods if pod.version == "v2"]
    assert hogged.restarts >= 1
    assert set(hogged.exit_reasons) == {"OOMKilled"}
    assert set(hogged.exit_codes) == {137}

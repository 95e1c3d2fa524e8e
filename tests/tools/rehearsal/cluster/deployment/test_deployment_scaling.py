"""The emulated Deployment controller scaled through its scale subresource (as an autoscaler or
`kubectl scale` does), in virtual time with fake containers (tests/emulation.py): sync.go's
proportional scaling in the middle of a rollout, Recreate, zero and back.
"""

import asyncio
from dataclasses import dataclass, replace

import pytest

from tests.emulation import Cluster, FakeRuntime, deployment, run
from tools.rehearsal.cluster.autoscaling.target import Scale, ScaleTarget
from tools.rehearsal.cluster.deployment_util import is_scaling_event
from tools.rehearsal.timeline import PodEvent

MIN_READY = 2


async def start(cluster: Cluster, spec) -> None:
    cluster.controller.apply(spec)
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)


@dataclass
class Watch:
    """What a rollout went through, sampled every 10 ms of virtual time until it completed."""

    most_replicas: int = 0  # all ReplicaSets' replicas together
    fewest_available: int = 1_000
    fewest_available_once_reached: int = 1_000  # after `floor` pods were first available
    final: tuple[str, ...] = ()


async def watch(cluster: Cluster, floor: int) -> Watch:
    controller, seen = cluster.controller, Watch()
    reached = False
    while controller.completed_at is None:
        sets = controller.replica_sets
        available = sum(rs.available(MIN_READY) for rs in sets)
        seen.most_replicas = max(seen.most_replicas, sum(rs.replicas for rs in sets))
        seen.fewest_available = min(seen.fewest_available, available)
        reached = reached or available >= floor
        if reached:
            seen.fewest_available_once_reached = min(seen.fewest_available_once_reached, available)
        await asyncio.sleep(0.01)
    seen.final = tuple(p.version for rs in controller.replica_sets for p in rs.active())
    return seen


def test_the_deployment_controller_is_a_scale_target():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        target: ScaleTarget = cluster.controller
        await start(cluster, deployment("v1", 3, min_ready=MIN_READY))
        before = target.get_scale()
        target.update_scale(1)
        right_after = target.get_scale()
        await asyncio.sleep(0)  # the controller's pass
        terminating = sum(p.terminating and not p.gone for p in cluster.controller.pods())
        after_the_pass = target.get_scale()
        await cluster.stop()
        return target.kind, before, right_after, terminating, after_the_pass

    kind, before, right_after, terminating, after_the_pass = run(scenario())
    assert kind == "Deployment"
    assert before == Scale(spec_replicas=3, status_replicas=3, selector=None)
    assert right_after == Scale(1, 3)  # spec at once; the status once the controller acted
    # status.replicas counts the pods that are not terminating.
    assert terminating == 2
    assert after_the_pass == Scale(1, 1)


def test_update_scale_refuses_a_negative_size():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        cluster.controller.apply(deployment("v1", 3))
        with pytest.raises(ValueError, match="must not be negative"):
            cluster.controller.update_scale(-1)

    run(scenario())


def test_scaling_up_in_the_middle_of_a_rollout_shares_the_new_pods_and_keeps_the_bounds():
    """An autoscaler takes a 3-replica Deployment (maxSurge 1, maxUnavailable 0) to 5 while one
    new pod is up: sync.go scales both ReplicaSets in proportion (allowed 5 + 1 = 6), then the
    rollout goes on at the new size."""

    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, deployment("v1", 3, 1, 0, min_ready=MIN_READY))
        controller.apply(deployment("v2", 3, 1, 0, min_ready=MIN_READY))
        before = await watch_until(cluster, lambda: controller.new.available(MIN_READY) == 1)
        controller.update_scale(5)
        seen = await watch(cluster, floor=5)
        events = [(e.kind, e.detail) for e in cluster.timeline.events if e.source == "deployment"]
        sets = [(rs.replicas, rs.desired_replicas, rs.max_replicas) for rs in controller.old]
        await cluster.stop()
        return before, seen, events, sets, controller.get_scale()

    before, seen, events, old_sets, scale = run(scenario())
    assert before.most_replicas <= 3 + 1
    assert seen.most_replicas == 5 + 1  # the room maxSurge gives, used
    assert seen.fewest_available >= 3  # never below the minimum available before the scale
    assert seen.fewest_available_once_reached >= 5  # nor below the new one once reached
    assert seen.final == ("v2",) * 5
    assert scale == Scale(5, 5)
    assert old_sets == [(0, 5, 6)]
    # The old ReplicaSet had 3 of the 4 pods: it got the 2 new ones (3 x 6/4 = 4.5, rounded up).
    assert (
        "proportional scale",
        "5 replicas, 6 with maxSurge: +2 over 2 ReplicaSets: app-hash-v1 3 -> 5 (+2), "
        "app-hash-v2 1 -> 1 (+0)",
    ) in events


async def watch_until(cluster: Cluster, condition) -> Watch:
    """Watch a rollout until condition() holds."""
    seen = Watch()
    while not condition():
        sets = cluster.controller.replica_sets
        seen.most_replicas = max(seen.most_replicas, sum(rs.replicas for rs in sets))
        await asyncio.sleep(0.01)
    return seen


def test_scaling_down_in_the_middle_of_a_rollout_shrinks_both_and_keeps_the_bounds():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, deployment("v1", 5, 1, 0, min_ready=MIN_READY))
        controller.apply(deployment("v2", 5, 1, 0, min_ready=MIN_READY))
        await cluster.until(lambda: controller.new.replicas == 2)
        controller.update_scale(3)
        await asyncio.sleep(0)  # the scaling pass
        right_after = sum(rs.replicas for rs in controller.replica_sets)
        seen = await watch(cluster, floor=3)
        events = [(e.kind, e.detail) for e in cluster.timeline.events if e.source == "deployment"]
        await cluster.stop()
        return right_after, seen, events

    right_after, seen, events = run(scenario())
    assert right_after <= 3 + 1
    assert seen.most_replicas <= 3 + 1
    assert seen.fewest_available >= 3
    assert seen.final == ("v2",) * 3
    assert (
        "proportional scale",
        "3 replicas, 4 with maxSurge: -2 over 2 ReplicaSets: app-hash-v1 4 -> 3 (-1), "
        "app-hash-v2 2 -> 1 (-1)",
    ) in events


def test_a_scaling_event_is_reconciled_by_sync_alone_in_that_pass():
    """syncDeployment: the pass that sees the scaling event scales and annotates; the rollout step
    (here: the new ReplicaSet may not grow, the old one not shrink) waits for the next pass."""

    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        controller.apply(deployment("v1", 3, 1, 0, min_ready=0))
        while not controller.complete():
            controller.reconcile()
            await asyncio.sleep(0.05)
        controller.apply(deployment("v2", 3, 1, 0, min_ready=0))
        controller.reconcile()  # the rollout step: the new ReplicaSet to 1
        assert [rs.replicas for rs in controller.replica_sets] == [3, 1]
        controller.update_scale(5)
        assert is_scaling_event(controller.spec, controller.replica_sets)
        controller.reconcile()
        after = [
            (rs.replicas, rs.desired_replicas, rs.max_replicas) for rs in controller.replica_sets
        ]
        still = is_scaling_event(controller.spec, controller.replica_sets)
        for pod in controller.pods():
            await pod.force_stop()
        return after, still

    after, still = run(scenario())
    assert after == [(5, 5, 6), (1, 5, 6)]  # both annotated, though the new one kept its size
    assert not still


def test_scaling_a_complete_deployment_scales_its_only_replica_set():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, deployment("v1", 3, min_ready=MIN_READY))
        completed = controller.completed_at
        controller.update_scale(5)
        await cluster.until(lambda: controller.new.available(MIN_READY) == 5)
        events = [(e.kind, e.detail) for e in cluster.timeline.events if e.source == "deployment"]
        await cluster.stop()
        return completed, controller.completed_at, events

    completed, completed_after, events = run(scenario())
    assert completed_after == completed  # a complete rollout stays complete (progress.go)
    assert ("scaled up", "app-hash-v1 3 -> 5") in events
    assert not any(kind == "proportional scale" for kind, _ in events)


def test_zero_and_back_in_the_middle_of_a_rollout_brings_up_only_the_new_version():
    """sync.go: at 0 every ReplicaSet goes to zero, and the rollout is complete (DeploymentComplete
    holds at 0, as in Kubernetes); back at 3 no ReplicaSet is active, so there is no scaling event
    and the rollout step grows the new one alone."""

    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, deployment("v1", 3, 1, 0, min_ready=MIN_READY))
        controller.apply(deployment("v2", 3, 1, 0, min_ready=MIN_READY))
        await cluster.until(lambda: controller.new.replicas == 1)
        controller.update_scale(0)
        await cluster.until(lambda: not controller.pods() or all(p.gone for p in controller.pods()))
        at_zero = (controller.get_scale(), [rs.replicas for rs in controller.replica_sets])
        complete_at_zero = controller.completed_at is not None
        controller.update_scale(3)
        await cluster.until(lambda: controller.new.available(MIN_READY) == 3)
        final = [p.version for rs in controller.replica_sets for p in rs.active()]
        await cluster.stop()
        return at_zero, complete_at_zero, final

    at_zero, complete_at_zero, final = run(scenario())
    assert at_zero == (Scale(0, 0), [0, 0])
    assert complete_at_zero
    assert final == ["v2"] * 3


def test_a_complete_deployment_scaled_to_zero_and_back_comes_back_whole():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, deployment("v1", 3, min_ready=MIN_READY))
        controller.update_scale(0)
        await cluster.until(lambda: all(p.gone for p in controller.pods()))
        controller.update_scale(3)
        await cluster.until(lambda: controller.new.available(MIN_READY) == 3)
        scale = controller.get_scale()
        await cluster.stop()
        return scale

    assert run(scenario()) == Scale(3, 3)


@pytest.mark.parametrize("moment", ["old pods terminating", "new pods starting"])
def test_recreate_scaled_in_the_middle_of_a_rollout_never_runs_both_versions(moment):
    """Recreate: while the old pods terminate no ReplicaSet is active, so the new size simply
    applies when the new ReplicaSet comes up; once it has, it is the only active one and scale
    gives it the new size."""

    def spec(version):
        return replace(deployment(version, 3, min_ready=MIN_READY), strategy_type="Recreate")

    async def scenario():
        cluster = Cluster(FakeRuntime())
        controller = cluster.controller
        await start(cluster, spec("v1"))
        controller.apply(spec("v2"))
        if moment == "old pods terminating":
            await cluster.until(lambda: controller.old[0].replicas == 0)
        else:
            await cluster.until(lambda: controller.new.replicas == 3)
        controller.update_scale(5)
        await cluster.until(lambda: controller.completed_at is not None)
        final = [p.version for rs in controller.replica_sets for p in rs.active()]
        gone = [e.t for e in cluster.timeline.events if e.kind == PodEvent.GONE]
        created = [
            e.t
            for e in cluster.timeline.events
            if e.kind == PodEvent.CREATED and e.detail.startswith("v2")
        ]
        await cluster.stop()
        return final, gone, created

    final, gone, created = run(scenario())
    assert final == ["v2"] * 5
    assert len(gone) == 3 and len(created) == 5
    assert max(gone) <= min(created)  # no new pod before every old one is gone

"""The Rollout's scale subresource (what an HPA reads and writes), per strategy, as argo-rollouts
v1.9.1 serves it: spec.replicas, status.HPAReplicas and status.selector (rollout/canary.go
syncRolloutStatusCanary, rollout/bluegreen.go syncRolloutStatusBlueGreen)."""

import dataclasses
from types import SimpleNamespace

import pytest

from tests.emulation import Cluster, FakeRuntime, blue_green, deployment, run, template
from tools.rehearsal.cluster.autoscaling.target import Scale, ScaleTarget
from tools.rehearsal.cluster.deployment import ReplicaSet
from tools.rehearsal.cluster.rollouts.controller import RolloutController, rollout_template
from tools.rehearsal.cluster.rollouts.scale import RolloutStatus, rollout_status
from tools.rehearsal.manifests.rollout import Canary, CanaryStep, Rollout

HELD_CANARY = Rollout(
    "app",
    Canary(
        canary_service="app-canary",
        stable_service="app-stable",
        steps=(CanaryStep(weight=25), CanaryStep(pause=600), CanaryStep(weight=100)),
    ),
)
BLUE_GREEN = blue_green()


def rollout_hash(version: str) -> str:
    return rollout_template(template(version)).template_hash


V1, V2 = rollout_hash("v1"), rollout_hash("v2")


def record(kind: str, version: str, replicas: int = 3):
    return dataclasses.replace(
        deployment(version, replicas=replicas, min_ready=2), strategy_type=kind
    )


def replica_set(version: str, pods: int, ready: int) -> ReplicaSet:
    """A ReplicaSet of `pods` pods, `ready` of them ready (as its status counts them)."""
    made = [SimpleNamespace(ready=n < ready, terminating=False, gone=False) for n in range(pods)]
    return ReplicaSet(f"app-{version}", rollout_template(template(version)), pods, made)


# Cases of argo-rollouts v1.9.1's own tests, over the status they persist.


def test_canary_rollout_status_hpa_status_fields():
    """TestCanaryRolloutStatusHPAStatusFields (rollout/canary_test.go): 4 stable and 1 canary
    pod make HPAReplicas 5, with the Rollout's spec.selector."""
    status = rollout_status([replica_set("v1", 4, 4), replica_set("v2", 1, 1)], None, False)
    assert (status.hpa_replicas, status.selector) == (5, None)


def test_blue_green_rollout_status_hpa_status_fields_active_selector_set():
    """TestBlueGreenRolloutStatusHPAStatusFieldsActiveSelectorSet (rollout/bluegreen_test.go):
    only the active ReplicaSet counts, and the selector adds its hash."""
    status = rollout_status([replica_set("v1", 1, 1), replica_set("v2", 1, 1)], V1, False)
    assert status == RolloutStatus(hpa_replicas=1, selector=V1, ready_replicas=1, healthy=False)


def test_blue_green_rollout_status_hpa_status_fields_no_active_selector():
    """TestBlueGreenRolloutStatusHPAStatusFieldsNoActiveSelector: an active Service without a
    hash yet counts every ReplicaSet, with the Rollout's spec.selector."""
    status = rollout_status([replica_set("v1", 1, 1)], None, False)
    assert (status.hpa_replicas, status.selector) == (1, None)


# The subresource of the emulated controller, in virtual time.


async def released(rollout: Rollout, kind: str, **cluster_options) -> Cluster:
    """v1 up under the Rollout, then v2 applied."""
    cluster = Cluster(FakeRuntime(), rollout=rollout, **cluster_options)
    cluster.controller.apply(record(kind, "v1"))
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)
    cluster.controller.apply(record(kind, "v2"))
    return cluster


def pods_of(controller: RolloutController) -> dict[str, int]:
    return {rs.template.version: len(rs.active()) for rs in controller.replica_sets}


def test_the_rollout_controller_is_a_scale_target_of_kind_rollout():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=HELD_CANARY)
        return cluster.controller

    controller = run(scenario())
    target: ScaleTarget = controller
    assert target.kind == "Rollout"
    with pytest.raises(LookupError, match="not been applied"):
        target.get_scale()


def test_a_canary_reports_every_pod_stable_and_canary_to_the_hpa():
    """#4607: the HPA's selector is the Rollout's spec.selector, HPAReplicas every pod."""

    async def scenario():
        cluster = await released(HELD_CANARY, "Canary")
        controller = cluster.controller
        await cluster.until(lambda: controller.pause_started is not None)
        at_25 = controller.get_scale(), pods_of(controller)
        await cluster.stop()
        return at_25

    scale, pods = run(scenario())
    assert pods == {"v1": 3, "v2": 1}
    assert scale == Scale(spec_replicas=3, status_replicas=4, selector=None)


def test_a_blue_green_rollout_reports_only_the_active_pods_to_the_hpa():
    async def scenario():
        cluster = await released(BLUE_GREEN, "BlueGreen")
        controller = cluster.controller
        v2 = controller.new
        await cluster.until(lambda: v2.available(2) == 3, step=0.01)
        before = controller.get_scale(), pods_of(controller)
        await cluster.until(lambda: controller.selectors["app"] == V2, step=0.01)
        await cluster.until(lambda: controller.get_scale().selector == V2, timeout=1, step=0.01)
        after = controller.get_scale(), pods_of(controller)
        await cluster.stop()
        return before, after

    (before, pods_before), (after, pods_after) = run(scenario())
    # Six pods run, the preview's three count for nothing.
    assert pods_before == {"v1": 3, "v2": 3}
    assert before == Scale(spec_replicas=3, status_replicas=3, selector=V1)
    # After the switch the previous version's pods wait for scaleDownDelaySeconds, uncounted.
    assert pods_after == {"v1": 3, "v2": 3}
    assert after == Scale(spec_replicas=3, status_replicas=3, selector=V2)


def test_update_scale_sets_spec_replicas_at_once_and_the_status_follows_the_reconcile():
    async def scenario():
        cluster = await released(HELD_CANARY, "Canary")
        controller = cluster.controller
        await cluster.until(lambda: controller.pause_started is not None)
        controller.update_scale(5)
        written = controller.get_scale()
        await cluster.until(lambda: controller.get_scale().status_replicas == 5, timeout=1)
        reconciled = controller.get_scale(), pods_of(controller)
        await cluster.stop()
        return written, reconciled

    written, (reconciled, pods) = run(scenario())
    assert written == Scale(spec_replicas=5, status_replicas=4, selector=None)
    # CalculateReplicaCountsForBasicCanary for 25% of 5 within maxSurge 1: 1 canary, 4 stable;
    # the stable's pod still starting counts (status.replicas), not only ready ones.
    assert pods == {"v1": 4, "v2": 1}
    assert reconciled.status_replicas == 5


def test_update_scale_refuses_a_negative_count():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=HELD_CANARY)
        cluster.controller.apply(record("Canary", "v1"))
        with pytest.raises(ValueError, match="non-negative integer"):
            cluster.controller.update_scale(-1)

    run(scenario())


def test_a_release_keeps_the_hpas_count_unless_the_manifests_replicas_changed():
    """As `kubectl apply`'s three-way merge, and Argo CD with ignoreDifferences on
    /spec/replicas: a new template alone leaves spec.replicas to the HPA."""

    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=HELD_CANARY)
        controller = cluster.controller
        controller.apply(record("Canary", "v1"))
        controller.update_scale(5)
        controller.apply(record("Canary", "v2"))
        kept = controller.spec.replicas
        controller.apply(record("Canary", "v3", replicas=4))
        return kept, controller.spec.replicas

    assert run(scenario()) == (5, 4)

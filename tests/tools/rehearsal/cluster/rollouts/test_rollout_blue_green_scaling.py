"""A blue-green Rollout whose spec.replicas changes mid-release (an HPA), as argo-rollouts v1.9.1
reconciles it (rollout/bluegreen.go reconcileBlueGreenReplicaSets, on the scaling event through
rollout/sync.go syncReplicasOnly): the stable and the new ReplicaSet both go to spec.replicas at
once (no maxSurge in blue-green), the active Service moves only to a new ReplicaSet saturated at
the new count (reconcileActiveService: ReadyForPause and IsSaturated), and a previous version
waiting for scaleDownDelaySeconds is sized to spec.replicas until its deadline
(scaleDownDelayHelper). In virtual time, an update_scale call standing in for the HPA."""

import asyncio
import dataclasses

from tests.emulation import Cluster, FakeRuntime, blue_green, deployment, run, template
from tools.rehearsal.cluster.rollouts.controller import rollout_template
from tools.rehearsal.manifests.rollout import Analysis, Rollout

ANALYSIS = Analysis(jobs=(), args=())


def record(version: str):
    return dataclasses.replace(deployment(version, min_ready=2), strategy_type="BlueGreen")


V1, V2 = (rollout_template(template(v)).template_hash for v in ("v1", "v2"))


@dataclasses.dataclass
class Moment:
    t: float
    active: str  # the hash the active Service selects
    selected_available: int  # available pods of the ReplicaSet it selects
    available: int  # available pods of every ReplicaSet
    sizes: dict[str, int]  # version -> ReplicaSet spec.replicas


async def watch(cluster: Cluster, moments: list[Moment]) -> None:
    controller = cluster.controller
    while True:
        active = controller.selectors.get("app", "")
        selected = [rs for rs in controller.replica_sets if rs.template.template_hash == active]
        moments.append(
            Moment(
                cluster.timeline.now(),
                active,
                sum(rs.available(2) for rs in selected),
                sum(rs.available(2) for rs in controller.replica_sets),
                {rs.template.version: rs.replicas for rs in controller.replica_sets},
            )
        )
        await asyncio.sleep(0.01)


async def released(rollout: Rollout, **options):
    cluster = Cluster(FakeRuntime(), rollout=rollout, **options)
    controller = cluster.controller
    controller.apply(record("v1"))
    controller.start()
    await cluster.until(lambda: controller.completed_at is not None)
    moments: list[Moment] = []
    watcher = asyncio.get_running_loop().create_task(watch(cluster, moments))
    controller.apply(record("v2"))
    return cluster, moments, watcher


def test_scaled_before_the_promotion_both_sets_grow_and_the_switch_waits_for_the_new_count():
    """As TestBlueGreenRolloutScaleUpdateActiveRS (rollout/bluegreen_test.go) expects, the active
    and the preview ReplicaSet are both updated to the new spec.replicas."""

    async def scenario():
        cluster, moments, watcher = await released(blue_green(ANALYSIS), verdicts=[True])
        controller = cluster.controller
        await cluster.until(lambda: cluster.analyses)  # the preview is saturated at 3
        await asyncio.sleep(cluster.analysis_seconds - 0.1)  # the analysis is about to pass
        scaled_at = cluster.timeline.now()
        controller.update_scale(5)
        await cluster.until(lambda: controller.selectors["app"] == V2)
        switched_at = cluster.timeline.now()
        await cluster.until(lambda: controller.replica_sets[0].replicas == 0, timeout=60)
        removed_at = cluster.timeline.now()
        final = {rs.template.version: rs.replicas for rs in controller.replica_sets}
        watcher.cancel()
        await cluster.stop()
        return moments, scaled_at, switched_at, removed_at, final

    moments, scaled_at, switched_at, removed_at, final = run(scenario())
    after = [m for m in moments if m.t > scaled_at + 0.05]
    # reconcileBlueGreenStableReplicaSet and reconcileNewReplicaSet: both to 5 at once.
    assert after[0].sizes == {"v1": 5, "v2": 5}
    # The analysis passed at 3 pods; the switch still waited until v2 had 5 available (its new
    # pods: ready, then minReadySeconds 2).
    (first_on_v2,) = [m for m in moments if m.active == V2][:1]
    assert first_on_v2.selected_available == 5
    assert switched_at - scaled_at > 2
    # The active Service never selected fewer available pods than it had before the HPA acted,
    # and none fewer than 5 once the stable's new pods were up.
    assert min(m.selected_available for m in moments) == 3
    stable_up = next(m.t for m in moments if m.active == V1 and m.selected_available == 5)
    assert min(m.selected_available for m in moments if m.t >= stable_up) == 5
    # The previous version (scaled to 5 too) goes scaleDownDelaySeconds after the switch.
    assert final == {"v1": 0, "v2": 5}
    assert 30 <= removed_at - switched_at <= 30.2


def test_scaled_after_the_promotion_the_previous_version_follows_until_its_deadline():
    """scaleDownDelayHelper: a ReplicaSet waiting for its scale-down deadline is sized to
    spec.replicas (desiredReplicaCount = rolloutReplicas), so an HPA's scale-up right after the
    switch grows the previous version too, for the rest of scaleDownDelaySeconds."""

    async def scenario():
        cluster, moments, watcher = await released(blue_green())
        controller = cluster.controller
        await cluster.until(lambda: controller.selectors["app"] == V2, step=0.01)
        switched_at = cluster.timeline.now()
        await asyncio.sleep(5)
        controller.update_scale(5)
        await cluster.until(lambda: controller.new.available(2) == 5)
        grown = {rs.template.version: rs.replicas for rs in controller.replica_sets}
        await cluster.until(lambda: controller.replica_sets[0].replicas == 0, timeout=60)
        removed_at = cluster.timeline.now()
        watcher.cancel()
        await cluster.stop()
        return moments, switched_at, grown, removed_at

    moments, switched_at, grown, removed_at = run(scenario())
    assert grown == {"v1": 5, "v2": 5}
    assert 30 <= removed_at - switched_at <= 30.2
    after_switch = [m for m in moments if m.t >= switched_at + 0.05]
    assert all(m.active == V2 for m in after_switch)
    assert min(m.selected_available for m in after_switch) == 3


def test_scaled_after_an_abort_the_stable_grows_and_the_aborted_pods_keep_their_size():
    """reconcileNewReplicaSet with shouldDelayScaleDownOnAbort: the aborted new ReplicaSet is left
    as it is until its deadline, which is set once the stable ReplicaSet is fully available (here
    at once: the abort finds it so, before the HPA's new count arrives) and is not moved by a later
    scale; the stable goes to spec.replicas (reconcileBlueGreenStableReplicaSet)."""

    async def scenario():
        cluster, moments, watcher = await released(blue_green(ANALYSIS), verdicts=[False])
        controller = cluster.controller
        await cluster.until(lambda: controller.aborted)
        controller.update_scale(5)
        await cluster.until(lambda: controller.stable.available(2) == 5)
        sizes = {rs.template.version: rs.replicas for rs in controller.replica_sets}
        await cluster.until(lambda: controller.new.replicas == 0, timeout=60, step=0.01)
        removed_at = cluster.timeline.now()
        watcher.cancel()
        await cluster.stop()
        deadline_set = next(
            t for t, _, kind in cluster.events("rollout") if kind == "scale-down deadline"
        )
        return moments, sizes, deadline_set, removed_at

    moments, sizes, deadline_set, removed_at = run(scenario())
    assert sizes == {"v1": 5, "v2": 3}
    assert 30 <= removed_at - deadline_set <= 30.2
    assert all(m.active == V1 for m in moments)
    assert min(m.selected_available for m in moments) == 3

"""A basic canary whose spec.replicas changes mid-release (an HPA), as argo-rollouts v1.9.1
reconciles it: reconcileCanaryReplicaSets on every reconcile (syncReplicasOnly on the scaling
event) with CalculateReplicaCountsForBasicCanary against the new count.

The vectors are cases of Argo Rollouts' own tests, named after them; the scenarios run the
emulated controller in virtual time, an update_scale call standing in for the HPA."""

import asyncio
import dataclasses

import pytest

from tests.emulation import Behaviour, Cluster, FakeRuntime, counted, deployment, run
from tools import rollingupdate
from tools.rehearsal.cluster.rollouts.canary import approximate_counts, canary_counts
from tools.rehearsal.manifests.rollout import Analysis, Canary, CanaryStep, Rollout

# TestApproximateWeightedNewStableReplicaCounts (utils/replicaset/canary_test.go), maxWeight 100:
# replicas, weight, maxSurge -> canary, stable.
APPROXIMATE = [
    (0, 0, 0, 0, 0), (0, 50, 0, 0, 0), (0, 100, 0, 0, 0),
    (0, 0, 1, 0, 0), (0, 50, 1, 0, 0), (0, 100, 1, 0, 0),
    (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1), (1, 50, 0, 1, 0), (1, 99, 0, 1, 0),
    (1, 100, 0, 1, 0),
    (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1), (1, 50, 1, 1, 1), (1, 99, 1, 1, 1),
    (1, 100, 1, 1, 0),
    (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
    (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
    (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2), (3, 34, 0, 1, 2), (3, 49, 0, 1, 2),
    (3, 50, 0, 2, 1),
    (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2), (3, 34, 1, 1, 2), (3, 49, 1, 2, 2),
    (3, 50, 1, 2, 2),
    (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8), (10, 16, 0, 2, 8),
    (10, 99, 0, 9, 1), (10, 100, 1, 10, 0),
    (10, 0, 1, 0, 10), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9), (10, 20, 1, 2, 8),
    (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8), (10, 99, 1, 10, 1),
    (10, 100, 1, 10, 0),
]  # fmt: skip


@pytest.mark.parametrize(
    "case", APPROXIMATE, ids=lambda case: "replicas:{}_weight:{}_surge:{}".format(*case)
)
def test_approximate_weighted_new_stable_replica_counts(case):
    replicas, weight, surge, canary, stable = case
    counts = approximate_counts(replicas, weight, surge)
    assert (counts.new, counts.stable) == (canary, stable)


# TestCalculateReplicaCountsForCanary (utils/replicaset/canary_test.go), the basic canary's cases
# in upstream order; several have spec.replicas apart from what the ReplicaSets hold, as after a
# scaling event. replicas, weight, maxSurge, maxUnavailable, stable (spec, available), canary
# (spec, available), older (spec, available) or None, expected (stable, canary).
CALCULATE = {
    "Do not add extra RSs in scaleDownCount when .Spec.Replica < AvailableReplicas": (
        10, 100, 3, 0, (7, 8), (6, 3), None, (7, 6)),
    "Use max surge int to scale up canary": (10, 20, 2, 0, (10, 10), (0, 0), None, (10, 2)),
    "Use max surge percentage to scale up canary": (
        10, 20, "20%", 0, (10, 10), (0, 0), None, (10, 2)),
    "Scale down extra stable replicas": (10, 20, "20%", 0, (10, 10), (2, 2), None, (8, 2)),
    "Do not go past max surge": (10, 30, 2, 0, (10, 10), (0, 0), None, (10, 2)),
    "Use max unavailable int to scale down stableRS": (
        10, 20, 0, 2, (10, 10), (0, 0), None, (8, 0)),
    "Use max surge percentage to scale down stableRS": (
        10, 20, 0, "20%", (10, 10), (0, 0), None, (8, 0)),
    "Do not go past max unavailable": (10, 30, 0, 2, (10, 10), (0, 0), None, (8, 0)),
    "Use Max Surge and Max Unavailable": (10, 50, 2, 1, (10, 10), (0, 0), None, (9, 2)),
    "Scale canaryRS to zero on setWeight of 0%": (10, 0, 1, 1, (10, 10), (1, 1), None, (10, 0)),
    "Scale stable to zero on setWeight of 100%": (
        10, 100, 1, 1, (1, 1), (10, 10), None, (0, 10)),
    "Do not scale canaryRS down to zero on non-zero weight": (
        1, 20, 1, 0, (1, 1), (0, 0), None, (1, 1)),
    "Do not scale canaryRS down to zero on non-100 weight": (
        1, 90, 1, 0, (1, 1), (0, 0), None, (1, 1)),
    "Scale canaryRS to zero on <50 weight without surge": (
        1, 49, 0, 1, (1, 1), (0, 0), None, (1, 0)),
    "Scale stableRS down to zero on >=50 weight without surge": (
        1, 51, 0, 1, (1, 1), (0, 0), None, (0, 0)),
    "Scale canaryRS to one on >=50 weight without surge and stable replicas": (
        1, 51, 0, 1, (0, 0), (0, 0), None, (0, 1)),
    "Scale up Stable before canaryRS": (10, 30, 1, 0, (1, 1), (0, 0), (3, 3), (7, 1)),
    "Scale down canaryRS and stable": (10, 30, 0, 3, (8, 5), (4, 4), None, (7, 3)),
    "Scale down stable and canary available": (10, 100, 1, 0, (10, 2), (10, 8), None, (2, 9)),
    "Do not scale down canaryRS or stable when older RS count >= scaleDownCount": (
        10, 30, 0, 1, (8, 6), (4, 2), (3, 3), (8, 4)),
    "Do not round past maxSurge with uneven setWeight divisor": (
        10, 5, 0, 1, (10, 10), (0, 0), None, (9, 0)),
    "Do not round past maxSurge with uneven setWeight divisor (part 2)": (
        10, 5, 0, 1, (9, 9), (0, 0), None, (9, 1)),
    "Use maxUnavailable of 1 when percentage of maxUnavailable and maxSurge result in 0 replicas": (
        10, 10, "0%", "0%", (10, 10), (0, 0), None, (9, 0)),
    "Ignore setCanaryScale when trafficRouting is missing and use setWeight for replicas": (
        10, 20, "20%", 0, (10, 10), (0, 0), None, (10, 2)),
    "honor maxSurge during scale up when stableRS unavailable": (
        4, 100, 1, 0, (4, 1), (0, 0), None, (4, 1)),
    "scale down to maxunavailable without exceeding maxSurge": (
        3, 99, 0, 2, (3, 3), (0, 0), None, (1, 0)),
    "scale down to maxunavailable without exceeding maxSurge (part 2)": (
        3, 99, 0, 2, (1, 1), (0, 0), None, (1, 2)),
    "honor maxUnavailable during scale down stableRS unavailable": (
        4, 100, 1, 0, (4, 1), (1, 1), None, (3, 1)),
    "honor maxUnavailable when aborting or reducing weight part 1": (
        4, 0, 1, 0, (0, 0), (4, 4), None, (1, 4)),
    "honor maxUnavailable when aborting or reducing weight part 2": (
        4, 0, 1, 0, (1, 0), (4, 4), None, (1, 4)),
    "honor maxUnavailable when aborting or reducing weight part 3": (
        4, 0, 1, 0, (1, 1), (4, 4), None, (1, 3)),
}  # fmt: skip


@pytest.mark.parametrize("case", CALCULATE)
def test_calculate_replica_counts_for_canary(case):
    replicas, weight, surge, unavailable, stable, canary, older, expected = CALCULATE[case]
    counts = canary_counts(
        replicas,
        weight,
        rollingupdate.resolve(surge, unavailable, replicas),
        counted("canary", canary),
        counted("stable", stable),
        [counted("older", older)] if older else [],
        0,
    )
    assert (counts.stable, counts.new) == expected


def test_canary_rollout_scale_while_paused():
    """TestCanaryRolloutScaleWhilePaused (rollout/canary_test.go): at setWeight 20 with 5 stable
    pods, spec.replicas 5 -> 10 scales the stable to 8 first (maxSurge 1)."""
    counts = canary_counts(
        10,
        20,
        rollingupdate.resolve(1, 0, 10),
        counted("canary", (0, 0)),
        counted("stable", (5, 5)),
        [],
        0,
    )
    assert counts.stable == 8


# Scenarios in virtual time.


def canary(*steps: CanaryStep) -> Rollout:
    return Rollout("app", Canary("app-canary", "app-stable", steps))


def record(version: str, replicas: int = 3, surge: int | str = 1, unavailable: int | str = 0):
    return dataclasses.replace(
        deployment(version, replicas, surge, unavailable, min_ready=2), strategy_type="Canary"
    )


@dataclasses.dataclass
class Moment:
    """The canary's and stable's sizes (spec and available) and spec.replicas, at one time."""

    t: float
    replicas: int
    canary: int
    stable: int
    canary_available: int
    stable_available: int


async def watch(cluster: Cluster, moments: list[Moment]) -> None:
    controller = cluster.controller
    while True:
        new, stable = controller.new, controller.stable
        moments.append(
            Moment(
                cluster.timeline.now(),
                controller.spec.replicas,
                new.replicas,
                stable.replicas if stable is not new else 0,
                new.available(2),
                stable.available(2) if stable is not new else 0,
            )
        )
        await asyncio.sleep(0.01)


async def released(rollout: Rollout, v1, v2, runtime=None, **options) -> Cluster:
    cluster = Cluster(runtime or FakeRuntime(), rollout=rollout, **options)
    cluster.controller.apply(v1)
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)
    cluster.controller.apply(v2)
    return cluster


def counts_at(controller) -> tuple[int, int]:
    """(canary, stable) pods, as ExpectCanaryStablePodCount counts them."""
    return len(controller.new.active()), len(controller.stable.active())


def test_an_hpa_scaling_a_canary_mid_step_resizes_both_within_max_surge_never_the_stable_to_0():
    """argoproj/argo-rollouts#1415: an HPA scaling event mid-canary once scaled the stable pods
    to zero. At v1.9.1 (fixed by #1429) the counts follow CalculateReplicaCountsForBasicCanary
    against the new spec.replicas during the step's pause, within maxSurge and maxUnavailable."""
    rollout = canary(
        CanaryStep(weight=25), CanaryStep(pause=30), CanaryStep(weight=50), CanaryStep(pause=10),
        CanaryStep(weight=100),
    )  # fmt: skip

    async def scenario():
        cluster = await released(rollout, record("v1"), record("v2"))
        controller = cluster.controller
        moments: list[Moment] = []
        watcher = asyncio.get_running_loop().create_task(watch(cluster, moments))
        await cluster.until(lambda: controller.pause_started is not None)
        at_25 = counts_at(controller)
        controller.update_scale(5)
        await cluster.until(
            lambda: controller.new.available(2) == 1 and controller.stable.available(2) == 4
        )
        scaled = counts_at(controller), controller.step, cluster.timeline.now()
        await cluster.until(lambda: controller.completed_at is not None)
        await cluster.until(lambda: not controller.others()[0].active(), timeout=60)
        watcher.cancel()
        final = {rs.template.version: rs.replicas for rs in controller.replica_sets}
        await cluster.stop()
        return at_25, scaled, final, moments

    at_25, (scaled, step, scaled_at), final, moments = run(scenario())
    assert at_25 == (1, 3)
    # approximateWeightedCanaryStableReplicaCounts(5, 25, maxSurge 1): 1 canary, 4 stable; the
    # pause goes on (step 2 of 5 is still the current one).
    assert scaled == (1, 4) and step == 1
    assert final == {"v1": 0, "v2": 5}
    # maxSurge 1 over spec.replicas, maxUnavailable 0: never more pods than replicas + 1; never
    # fewer available than 3 before the new pods were up, nor than 5 after; the stable never at
    # zero before every canary pod was.
    assert max(m.canary + m.stable for m in moments) == 6
    assert all(m.canary + m.stable <= m.replicas + 1 for m in moments)
    assert all(m.stable > 0 for m in moments if m.canary_available < 5)
    assert min(m.canary_available + m.stable_available for m in moments) == 3
    after = [m.canary_available + m.stable_available for m in moments if m.t >= scaled_at]
    assert min(after) == 5


def test_rollout_scaling_when_paused():
    """The end-to-end TestRolloutScalingWhenPaused (test/e2e/canary_test.go): rollout-basic.yaml
    (replicas defaulted to 1, maxSurge and maxUnavailable 25%), setWeight 25 and an endless
    pause; scaled to 8, then to 4, while paused."""
    rollout = canary(CanaryStep(weight=25), CanaryStep(pause=float("inf")))

    async def scenario():
        v1, v2 = (record(v, replicas=1, surge="25%", unavailable="25%") for v in ("v1", "v2"))
        cluster = await released(rollout, v1, v2)
        controller = cluster.controller
        await cluster.until(lambda: controller.pause_started is not None)
        seen = [counts_at(controller)]
        for replicas in (8, 4):
            controller.update_scale(replicas)
            await cluster.until(
                lambda r=replicas: (
                    sum(rs.available(2) for rs in controller.replica_sets) == r
                    and sum(len(rs.active()) for rs in controller.replica_sets) == r
                )
            )
            seen.append(counts_at(controller))
        await cluster.stop()
        return seen

    # ExpectCanaryStablePodCount(1, 1), then (2, 6), then (1, 3).
    assert run(scenario()) == [(1, 1), (2, 6), (1, 3)]


@pytest.mark.parametrize(
    "name, surge, unavailable, expected",
    [
        # TestRolloutScalingDuringUpdate: maxSurge 2, maxUnavailable 0.
        ("TestRolloutScalingDuringUpdate", 2, 0, [(2, 4), (6, 4), (2, 4)]),
        # TestRolloutWithMaxSurgeScalingDuringUpdate, as #1429 wrote it (canary pods that never
        # become ready): maxSurge 100%, maxUnavailable 25% (the default).
        ("TestRolloutWithMaxSurgeScalingDuringUpdate", "100%", "25%", [(4, 3), (8, 3), (4, 3)]),
    ],
)
def test_scaling_a_canary_whose_pods_never_become_ready(name, surge, unavailable, expected):
    """The end-to-end tests of test/e2e/canary_test.go that scale a Rollout of 4 to 8 and back
    to 4 while its canary pods never become ready (no steps: the weight is 100). The stable
    keeps spec.replicas - maxUnavailable available pods; the HPA's scale-up adds none."""
    rollout = canary()

    async def scenario():
        v1, v2 = (record(v, 4, surge, unavailable) for v in ("v1", "v2"))
        cluster = await released(
            rollout, v1, v2, runtime=FakeRuntime({"v2": Behaviour(never_ready=True)})
        )
        controller = cluster.controller
        seen = []
        for replicas, (canary_pods, stable_pods) in zip((4, 8, 4), expected, strict=True):
            controller.update_scale(replicas)
            total = canary_pods + stable_pods
            await cluster.until(  # WaitForRolloutReplicas
                lambda t=total: (
                    sum(len(rs.active()) for rs in controller.replica_sets) == t
                    and sum(rs.replicas for rs in controller.replica_sets) == t
                )
            )
            await asyncio.sleep(5)  # nothing more happens
            seen.append(counts_at(controller))
        await cluster.stop()
        return seen

    assert run(scenario()) == expected


def test_an_aborted_canary_scaled_by_an_hpa_brings_the_stable_to_the_new_count():
    """After an abort the weight is 0 (GetCurrentSetWeight): the stable follows spec.replicas,
    the canary stays at zero."""
    rollout = canary(CanaryStep(weight=25), CanaryStep(analysis=Analysis(jobs=(), args=())))

    async def scenario():
        cluster = await released(rollout, record("v1"), record("v2"), verdicts=[False])
        controller = cluster.controller
        await cluster.until(lambda: controller.aborted)
        await cluster.until(lambda: counts_at(controller) == (0, 3))
        controller.update_scale(5)
        await cluster.until(lambda: controller.stable.available(2) == 5)
        await asyncio.sleep(5)
        final = counts_at(controller), controller.new.replicas
        await cluster.stop()
        return final

    assert run(scenario()) == ((0, 5), 0)

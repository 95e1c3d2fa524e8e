"""The emulated Argo Rollouts controller: blue-green and canary step logic, in virtual time.

The replica arithmetic is Argo Rollouts' own (utils/replicaset/canary.go), checked against the
examples its source documents; the step logic with fake containers and fake analyses.
"""

import asyncio
import dataclasses

import pytest

from tests.emulation import Cluster, FakeRuntime, deployment, run
from tools import rollingupdate
from tools.rehearsal.cluster.rollouts.canary import canary_counts
from tools.rehearsal.manifests.spec import Analysis, BlueGreen, Canary, CanaryStep, Rollout


@dataclasses.dataclass
class FakeReplicaSet:
    replicas: int
    ready: int

    def available(self, min_ready: float) -> int:
        return self.ready


# Cases of TestCalculateReplicaCountsForCanary (utils/replicaset/canary_test.go):
# replicas, weight, maxSurge, maxUnavailable, stable (spec, available), canary (spec, available),
# expected (stable, canary).
ARGO_CASES = {
    "max surge int scales up the canary": (10, 20, 2, 0, (10, 10), (0, 0), (10, 2)),
    "scale down extra stable replicas": (10, 20, "20%", 0, (10, 10), (2, 2), (8, 2)),
    "max unavailable scales down the stable": (10, 20, 0, 2, (10, 10), (0, 0), (8, 0)),
    "max surge and max unavailable": (10, 50, 2, 1, (10, 10), (0, 0), (9, 2)),
    "weight 0 scales the canary to zero": (10, 0, 1, 1, (10, 10), (1, 1), (10, 0)),
    "weight 100 scales the stable to zero": (10, 100, 1, 1, (1, 1), (10, 10), (0, 10)),
    "scale down canary and stable": (10, 30, 0, 3, (8, 5), (4, 4), (7, 3)),
    "scale down stable and canary available": (10, 100, 1, 0, (10, 2), (10, 8), (2, 9)),
    "no rounding past max surge": (10, 5, 0, 1, (10, 10), (0, 0), (9, 0)),
    "no rounding past max surge, part 2": (10, 5, 0, 1, (9, 9), (0, 0), (9, 1)),
    "max surge while the stable is unavailable": (4, 100, 1, 0, (4, 1), (0, 0), (4, 1)),
    "down to max unavailable within max surge": (3, 99, 0, 2, (3, 3), (0, 0), (1, 0)),
    "down to max unavailable within max surge, 2": (3, 99, 0, 2, (1, 1), (0, 0), (1, 2)),
    "0% and 0% make max unavailable 1": (10, 10, "0%", "0%", (10, 10), (0, 0), (9, 0)),
}


@pytest.mark.parametrize("case", ARGO_CASES)
def test_canary_replica_counts_are_argo_rollouts_own(case):
    replicas, weight, surge, unavailable, stable, canary, expected = ARGO_CASES[case]
    counts = canary_counts(
        replicas,
        weight,
        rollingupdate.resolve(surge, unavailable, replicas),
        FakeReplicaSet(*canary),
        FakeReplicaSet(*stable),
        [],
        0,
    )
    assert (counts.stable, counts.new) == expected


ANALYSIS = Analysis(jobs=(), args=())
BLUE_GREEN = Rollout(
    "app",
    BlueGreen(
        active_service="app",
        preview_service="app-preview",
        auto_promotion=True,
        pre_promotion_analysis=ANALYSIS,
        scale_down_delay=30,
        abort_scale_down_delay=30,
    ),
)
CANARY = Rollout(
    "app",
    Canary(
        canary_service="app-canary",
        stable_service="app-stable",
        steps=(
            CanaryStep(weight=25),
            CanaryStep(analysis=ANALYSIS),
            CanaryStep(weight=50),
            CanaryStep(pause=10),
            CanaryStep(weight=100),
        ),
    ),
)


def rollout_of(kind: str, version: str):
    return dataclasses.replace(deployment(version, min_ready=2), strategy_type=kind)


async def release(cluster: Cluster, kind: str) -> float:
    """Bring up v1 under the Rollout, then apply v2; return when v2 was applied."""
    cluster.controller.apply(rollout_of(kind, "v1"))
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)
    applied = cluster.timeline.now()
    cluster.controller.apply(rollout_of(kind, "v2"))
    return applied


def versions(rs_list) -> dict[str, int]:
    return {rs.template.version: rs.replicas for rs in rs_list}


def test_blue_green_promotes_after_the_analysis_then_scales_the_old_pods_down_later():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=BLUE_GREEN, verdicts=[True])
        applied = await release(cluster, "BlueGreen")
        controller = cluster.controller
        await cluster.until(lambda: controller.completed_at is not None)
        promoted = controller.completed_at
        during = versions(controller.replica_sets)
        await cluster.until(lambda: controller.stable.replicas == 0, timeout=60)
        scaled_down = cluster.timeline.now()
        await cluster.stop()
        return cluster, applied, promoted, during, scaled_down

    cluster, applied, promoted, during, scaled_down = run(scenario())
    ((analysed_at, service),) = cluster.analyses
    assert service == "app-preview"
    assert during == {"v1": 3, "v2": 3}  # a full new set beside the old one
    # The active Service moved once, to v2, only after the analysis.
    assert [h for _, h in cluster.routes["app"]] == ["hash-v1", "hash-v2"]
    assert cluster.routes["app"][1][0] >= analysed_at + cluster.analysis_seconds - 0.01
    assert cluster.routes["app-preview"][-1][1] == "hash-v2"
    assert applied < analysed_at < promoted
    assert 30 <= scaled_down - promoted <= 30.2


def test_blue_green_aborts_on_a_failed_analysis_and_never_moves_the_active_service():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=BLUE_GREEN, verdicts=[False])
        await release(cluster, "BlueGreen")
        controller = cluster.controller
        await cluster.until(lambda: controller.aborted)
        aborted = cluster.timeline.now()
        await cluster.until(lambda: controller.new.replicas == 0, timeout=60)
        removed = cluster.timeline.now()
        state = versions(controller.replica_sets)
        await cluster.stop()
        return cluster, controller, aborted, removed, state

    cluster, controller, aborted, removed, state = run(scenario())
    assert controller.completed_at is None
    assert controller.failed_reason == "aborted: pre-promotion analysis failed"
    assert [h for _, h in cluster.routes["app"]] == ["hash-v1"]
    assert cluster.routes["app-preview"][-1][1] == "hash-v1"  # back to the stable pods
    assert 30 <= removed - aborted <= 30.2  # abortScaleDownDelaySeconds
    assert state == {"v1": 3, "v2": 0}


def test_canary_steps_scale_by_weight_and_complete():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=CANARY, verdicts=[True])
        await release(cluster, "Canary")
        controller = cluster.controller
        seen = []
        while True:
            state = versions(controller.replica_sets)
            if not seen or seen[-1] != state:
                seen.append(state)
            if controller.completed_at is not None:
                break
            await asyncio.sleep(0.05)
        await cluster.stop()
        return cluster, seen

    cluster, seen = run(scenario())
    ((_, service),) = cluster.analyses
    assert service == "app-canary"
    # weight 25: 1 canary beside 3 stable; 50: 2 and 2; 100: 3 and none.
    assert {"v1": 3, "v2": 1} in seen
    assert {"v1": 2, "v2": 2} in seen
    assert seen[-1] == {"v1": 0, "v2": 3}
    assert max(sum(state.values()) for state in seen) <= 3 + 1 + 1  # maxSurge 1, +1 rounding
    assert [h for _, h in cluster.routes["app-canary"]][-1] == "hash-v2"
    assert [h for _, h in cluster.routes["app-stable"]] == ["hash-v1", "hash-v2"]


def test_canary_aborts_at_the_failed_analysis_back_to_the_stable_pods():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=CANARY, verdicts=[False])
        await release(cluster, "Canary")
        controller = cluster.controller
        most_canary = 0
        while not controller.aborted:
            most_canary = max(most_canary, controller.new.replicas)
            await asyncio.sleep(0.05)
        await cluster.until(
            lambda: controller.new.replicas == 0 and controller.stable.replicas == 3
        )
        final = versions(controller.replica_sets)
        await cluster.stop()
        return controller, most_canary, final

    controller, most_canary, final = run(scenario())
    assert controller.failed_reason == "aborted: analysis at step 2 failed"
    assert controller.step == 1  # it never went past the analysis
    assert most_canary == 1
    assert final == {"v1": 3, "v2": 0}
    assert controller.completed_at is None

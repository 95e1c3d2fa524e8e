"""The emulated Argo Rollouts controller: blue-green and canary step logic, in virtual time.

The replica arithmetic is Argo Rollouts' own (utils/replicaset/canary.go), checked against the
examples its source documents; the step logic, the Services' switches (rollout/service.go), the
delayed scale-downs (rollout/replicaset.go) and the adoption of a running Deployment
(workloadRef) with fake containers and fake analyses.
"""

import asyncio
import dataclasses
from types import SimpleNamespace

import pytest

from tests.emulation import (
    Behaviour,
    Cluster,
    FakeRuntime,
    blue_green,
    counted,
    deployment,
    run,
    template,
)
from tools.rehearsal.cluster.rollouts.controller import rollout_template
from tools.rehearsal.cluster.rollouts.service import ServiceMixin
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.rollout import (
    Analysis,
    BlueGreen,
    Canary,
    CanaryStep,
    Rollout,
    WorkloadRef,
)
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.manifests.workload import adopts
from tools.rehearsal.timeline import PodEvent
from tools.repo import ROOT

ANALYSIS = Analysis(jobs=(), args=())
BLUE_GREEN = blue_green(ANALYSIS)
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


def rollout_hash(version: str) -> str:
    """The rollouts-pod-template-hash of a version's ReplicaSet."""
    return rollout_template(template(version)).template_hash


V1, V2 = rollout_hash("v1"), rollout_hash("v2")


def replica_set(controller, version: str):
    return next(rs for rs in controller.replica_sets if rs.template.version == version)


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
        await cluster.until(lambda: replica_set(controller, "v1").replicas == 0, timeout=60)
        scaled_down = cluster.timeline.now()
        await cluster.stop()
        return cluster, applied, promoted, during, scaled_down

    cluster, applied, promoted, during, scaled_down = run(scenario())
    ((analysed_at, service),) = cluster.analyses
    assert service == "app-preview"
    assert during == {"v1": 3, "v2": 3}  # a full new set beside the old one
    # The active Service moved once, to v2, only after the analysis.
    assert [h for _, h in cluster.routes["app"]] == [V1, V2]
    assert cluster.routes["app"][1][0] >= analysed_at + cluster.analysis_seconds - 0.01
    assert cluster.routes["app-preview"][-1][1] == V2
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
    assert [h for _, h in cluster.routes["app"]] == [V1]
    # rollout/service.go reconcilePreviewService: the preview Service stays on the new pods.
    assert [h for _, h in cluster.routes["app-preview"]] == [V1, V2]
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
        # The stable Service follows the promotion on the next reconcile.
        await cluster.until(lambda: cluster.routes["app-stable"][-1][1] == V2, timeout=1)
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
    assert [h for _, h in cluster.routes["app-canary"]][-1] == V2
    assert [h for _, h in cluster.routes["app-stable"]] == [V1, V2]


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


def times(cluster: Cluster, kind: str, version_hash: str) -> list[float]:
    """When pods of the ReplicaSet with this hash had this event (to the timeline's ms)."""
    prefix = f"app-{version_hash[:10]}-"
    return [t for t, source, k in cluster.events() if k == kind and source.startswith(prefix)]


def test_the_canary_service_moves_to_the_new_pods_only_once_one_is_available():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=CANARY, verdicts=[True])
        await release(cluster, "Canary")
        await cluster.until(lambda: cluster.controller.completed_at is not None)
        await cluster.stop()
        return cluster

    cluster = run(scenario())
    # rollout/service.go ensureSVCTargets: IsReplicaSetPartiallyAvailable before a switch.
    (switched,) = [t for t, h in cluster.routes["app-canary"] if h == V2]
    assert round(switched, 3) >= min(times(cluster, PodEvent.AVAILABLE, V2))


def test_an_aborted_canary_sends_the_canary_service_back_to_the_stable_pods():
    async def scenario():
        cluster = Cluster(FakeRuntime(), rollout=CANARY, verdicts=[False])
        await release(cluster, "Canary")
        await cluster.until(lambda: cluster.controller.aborted)
        aborted = cluster.timeline.now()
        await cluster.until(lambda: cluster.routes["app-canary"][-1][1] == V1, timeout=5)
        await cluster.stop()
        return cluster, aborted

    cluster, aborted = run(scenario())
    # rollout/service.go reconcileStableAndCanaryService: aborted, no traffic router.
    assert [h for _, h in cluster.routes["app-canary"]] == [V1, V2, V1]
    assert cluster.routes["app-canary"][-1][0] - aborted < 0.2


def test_the_abort_scale_down_delay_counts_from_the_stable_pods_being_fully_available():
    async def scenario():
        # The stable version is slow to start: a stable pod lost during the analysis takes
        # about 11 s to be available again.
        runtime = FakeRuntime({"v1": Behaviour(ready_after=8)})
        cluster = Cluster(runtime, rollout=BLUE_GREEN, verdicts=[False])
        await release(cluster, "BlueGreen")
        controller = cluster.controller
        await cluster.until(lambda: cluster.analyses)
        stable = replica_set(controller, "v1")
        stable.active()[0].delete()
        await cluster.until(lambda: controller.aborted)
        aborted = cluster.timeline.now()
        await cluster.until(lambda: stable.available(2) == 3, step=0.01)
        stable_again = cluster.timeline.now()
        await cluster.until(lambda: controller.new.replicas == 0, timeout=60, step=0.01)
        removed = cluster.timeline.now()
        await cluster.stop()
        return aborted, stable_again, removed

    aborted, stable_again, removed = run(scenario())
    assert stable_again - aborted > 5
    # rollout/replicaset.go reconcileNewReplicaSet: the deadline is set once the stable
    # ReplicaSet is fully available, abortScaleDownDelaySeconds (30) before the scale-down.
    assert 30 <= removed - stable_again <= 30.2


def adopting(strategy: BlueGreen | Canary, scale_down: str) -> Rollout:
    return Rollout("app", strategy, WorkloadRef(deployment("v1", min_ready=2), scale_down))


async def adopt(rollout: Rollout, kind: str):
    """A Deployment runs v1; then a Rollout with workloadRef comes up beside it. Returns the
    cluster, the Deployment's replicas after each change (time, replicas) and the Rollout."""
    cluster = Cluster(FakeRuntime(), analysis_seconds=3)
    cluster.controller.apply(deployment("v1", min_ready=2))
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)
    workload = cluster.controller
    controller = cluster.adopt(rollout)
    controller.apply(rollout_of(kind, "v1"))
    controller.start()
    scaled = [(cluster.timeline.now(), workload.spec.replicas)]
    done = False
    while not done:
        if workload.spec.replicas != scaled[-1][1]:
            scaled.append((cluster.timeline.now(), workload.spec.replicas))
        done = controller.completed_at is not None and not [
            pod for pod in controller.old_pods() if not pod.gone
        ]
        await asyncio.sleep(0.01)
    await cluster.until(lambda: cluster.timeline.now() >= controller.completed_at + 5)
    await cluster.stop()
    return cluster, scaled, controller


def test_adoption_with_scale_down_never_leaves_the_deployment_serving():
    cluster, scaled, controller = run(adopt(adopting(CANARY.strategy, "never"), "Canary"))
    assert scaled == [(scaled[0][0], 3)]
    assert len([pod for pod in controller.workload.pods() if pod.ready]) == 3
    assert controller.old_pods() == []
    assert versions(controller.replica_sets) == {"v1": 3}


def test_adoption_with_scale_down_onsuccess_scales_the_deployment_once_the_rollout_is_healthy():
    cluster, scaled, controller = run(adopt(adopting(CANARY.strategy, "onsuccess"), "Canary"))
    (_, (down, replicas)) = scaled
    assert replicas == 0
    # rollout/sync.go promoteStable: revision 1, phase Healthy.
    assert down >= controller.completed_at
    assert round(down, 3) >= max(times(cluster, PodEvent.AVAILABLE, V1))


def test_adoption_with_scale_down_progressively_scales_the_deployment_as_rollout_pods_are_ready():
    cluster, scaled, controller = run(adopt(adopting(CANARY.strategy, "progressively"), "Canary"))
    assert scaled[-1][1] == 0
    down = scaled[1][0]
    # rollout/replicaset.go reconcileNewReplicaSet: replicas minus the Rollout's ready pods,
    # before its pods are available (minReadySeconds 2), so before it is Healthy.
    assert min(times(cluster, PodEvent.READY, V1)) <= round(down, 3) < controller.completed_at


def test_a_blue_green_adoption_takes_the_active_service_only_once_every_rollout_pod_is_available():
    rollout = adopting(BLUE_GREEN.strategy, "progressively")
    cluster, scaled, controller = run(adopt(rollout, "BlueGreen"))
    assert cluster.analyses == []  # the first revision: no analysis
    # reconcilePreviewService: at once; reconcileActiveService: once saturated (fast-tracked,
    # the Service had no hash yet).
    ((preview_at, preview),) = cluster.routes["app-preview"]
    ((active_at, active),) = cluster.routes["app"]
    assert preview == active == V1
    assert preview_at < min(times(cluster, PodEvent.READY, V1))
    assert round(active_at, 3) >= max(times(cluster, PodEvent.AVAILABLE, V1))
    assert scaled[-1][1] == 0


def test_a_service_not_yet_managed_moves_only_to_a_fully_available_replica_set():
    """rollout/service.go ensureSVCTargets: adopting a Service (no managed-by annotation yet)
    waits for IsReplicaSetAvailable; a managed one needs one available pod."""
    routes = []

    class Services(ServiceMixin):  # only what ensureSVCTargets reads of the rollout
        selectors: dict[str, str] = {}
        spec = SimpleNamespace(min_ready_seconds=0)

        def route(self, *route):
            routes.append(route)

    ro = Services()
    rs = counted("new", (3, 1))
    rs.template = SimpleNamespace(template_hash="new")
    ro.ensure_service_targets("app-stable", rs)
    assert routes == []
    rs.available_replicas = 3
    ro.ensure_service_targets("app-stable", rs)
    assert routes == [("app-stable", "new")]
    ro.selectors["app-canary"] = "old"  # managed: one available pod is enough
    rs.available_replicas = 1
    ro.ensure_service_targets("app-canary", rs)
    assert routes[-1] == ("app-canary", "new")
    rs.available_replicas = 0
    ro.selectors["app-canary"] = "old"
    ro.ensure_service_targets("app-canary", rs)
    assert ro.selectors["app-canary"] == "old"  # never to nothing


def test_an_unknown_scale_down_mode_is_named_in_the_error(tmp_path):
    overlay = variants.adoption(ROOT / "overlays/v1", "rollout-canary", "sometimes", tmp_path)
    with pytest.raises(RehearsalError, match=r"workloadRef\.scaleDown: 'sometimes' is not one of"):
        load_overlay(overlay)


def test_an_adoption_of_another_deployment_is_refused(tmp_path):
    source = load_overlay(ROOT / "overlays/v1")
    target = load_overlay(
        variants.adoption(ROOT / "overlays/v1", "rollout-canary", "never", tmp_path)
    )
    assert adopts(source, target)
    other = dataclasses.replace(source.deployment, name="another")
    with pytest.raises(RehearsalError, match="workloadRef names Deployment 'zero-downtime-app'"):
        adopts(dataclasses.replace(source, deployment=other), target)

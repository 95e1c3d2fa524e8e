"""A Rollout adopting a running Deployment through workloadRef while an HPA has that Deployment
above the Rollout's own spec.replicas, as argo-rollouts v1.9.1 scales the Deployment
(rollout/replicaset.go reconcileNewReplicaSet for progressively, rollout/sync.go promoteStable
for onsuccess, rollout/scale_utils.go scaleDeployment): from the Rollout's spec.replicas and its
readyReplicas, never from the Deployment's own count.

Here the HPA had scaled the Deployment to 5; the Rollout is created with replicas 3 (the
components' value, the HPA's minReplicas) and the HPA now targets the Rollout. The scenarios
count, at every moment, the pods a Service sends requests to (ready, not being deleted)."""

import asyncio
import dataclasses

import pytest

from tests.emulation import Behaviour, Cluster, FakeRuntime, blue_green, deployment, run, template
from tools.rehearsal.cluster.autoscaling.target import Scale
from tools.rehearsal.cluster.rollouts.controller import RolloutController, rollout_template
from tools.rehearsal.cluster.rollouts.replicaset import workload_ref_replicas
from tools.rehearsal.cluster.rollouts.scale import RolloutStatus
from tools.rehearsal.manifests.rollout import BlueGreen, Canary, CanaryStep, Rollout, WorkloadRef

CANARY = Canary("app-canary", "app-stable", (CanaryStep(weight=25), CanaryStep(pause=10)))
BLUE_GREEN = blue_green().strategy
V1 = rollout_template(template("v1")).template_hash


# TestScaleDownProgressively (rollout/replicaset_test.go) and TestScaleDownDeploymentOnSuccess
# (rollout/sync_test.go), over workload_ref_replicas: scaleDown, revision, the Rollout's
# replicas, its persisted status (readyReplicas, phase Healthy), the new ReplicaSet's size
# before and after this reconcile -> the Deployment's new replicas (None: left alone).
SCALE_DOWN = {
    "Scale down deployment": ("progressively", 1, 5, 3, False, 5, 5, 2),
    "Scale up deployment": ("progressively", 1, 5, 1, False, 5, 5, 4),
    "Do not scale deployment": ("progressively", 2, 5, 3, True, 5, 5, None),
    "Rollout healthy - Deployment scaled to 0": ("progressively", 1, 5, 5, True, 5, 5, 0),
    "TestScaleDownDeploymentOnSuccess": ("onsuccess", 1, 5, 5, True, 5, 5, 0),
    "onsuccess waits for Healthy": ("onsuccess", 1, 5, 4, False, 5, 5, None),
    "never": ("never", 1, 5, 5, True, 5, 5, None),
    "progressively before any Rollout pod is ready": ("progressively", 1, 3, 0, False, 0, 3, None),
}


@pytest.mark.parametrize("case", SCALE_DOWN)
def test_scale_down_progressively(case):
    mode, revision, replicas, ready, healthy, old, new, expected = SCALE_DOWN[case]
    status = RolloutStatus(hpa_replicas=new, ready_replicas=ready, healthy=healthy)
    assert workload_ref_replicas(mode, revision, replicas, status, old, new) == expected


class StaggeredRuntime(FakeRuntime):
    """Once `stagger` is set, each new pod is ready 1.5 s after the one started before it (the
    Rollout's pods, here), so that they become ready one by one."""

    stagger = False
    started = 0

    async def start(self, launch):
        container = await super().start(launch)
        if self.stagger:
            container.behaviour = Behaviour(ready_after=0.5 + 1.5 * self.started)
            self.started += 1
        return container


@dataclasses.dataclass
class Moment:
    t: float
    serving: int  # ready pods not being deleted, the Rollout's and the Deployment's
    deployment: int  # the Deployment's spec.replicas


def serving(controller: RolloutController) -> int:
    return sum(pod.ready and not pod.terminating and not pod.gone for pod in controller.pods())


@dataclasses.dataclass
class Adoption:
    cluster: Cluster
    controller: RolloutController
    moments: list[Moment]


async def adopting(strategy, scale_down: str, rollout_replicas: int) -> Adoption:
    """The Deployment runs 5 pods of v1 (the HPA's count); a Rollout of `rollout_replicas` is
    created beside it. Returns while its moments are being recorded."""
    runtime = StaggeredRuntime()
    cluster = Cluster(runtime)
    cluster.controller.apply(deployment("v1", replicas=5, min_ready=2))
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)
    runtime.stagger = True
    rollout = Rollout("app", strategy, WorkloadRef(deployment("v1", min_ready=2), scale_down))
    controller = cluster.adopt(rollout)
    kind = "BlueGreen" if isinstance(strategy, BlueGreen) else "Canary"
    spec = deployment("v1", replicas=rollout_replicas, min_ready=2)
    controller.apply(dataclasses.replace(spec, strategy_type=kind))
    controller.start()
    adoption = Adoption(cluster, controller, [])
    asyncio.get_running_loop().create_task(record(adoption))
    return adoption


async def record(adoption: Adoption) -> None:
    controller = adoption.controller
    while True:
        moment = Moment(
            adoption.cluster.timeline.now(), serving(controller), controller.workload.spec.replicas
        )
        adoption.moments.append(moment)
        await asyncio.sleep(0.01)


async def settled(adoption: Adoption) -> None:
    """Until the Rollout is complete, every pod it takes out of service gone, and 5 s more."""
    controller = adoption.controller
    await adoption.cluster.until(
        lambda: (
            controller.completed_at is not None and all(pod.gone for pod in controller.old_pods())
        )
    )
    await asyncio.sleep(5)


def adopt(strategy, scale_down: str, rollout_replicas: int) -> list[Moment]:
    async def scenario():
        adoption = await adopting(strategy, scale_down, rollout_replicas)
        await settled(adoption)
        await adoption.cluster.stop()
        return adoption.moments

    return run(scenario())


def deployment_counts(moments: list[Moment]) -> list[int]:
    """The Deployment's spec.replicas, each value once per change."""
    counts = [moments[0].deployment]
    for moment in moments:
        if moment.deployment != counts[-1]:
            counts.append(moment.deployment)
    return counts


@pytest.mark.parametrize("strategy", [CANARY, BLUE_GREEN], ids=["canary", "blue-green"])
def test_progressively_drops_to_the_rollouts_replicas_as_its_first_pod_is_ready(strategy):
    moments = adopt(strategy, "progressively", rollout_replicas=3)
    assert moments[0].serving == 5
    # spec.replicas - readyReplicas as the Rollout's pods become ready one by one: 3 - 1 = 2 at
    # the first, whatever the Deployment held; from then on 3 pods serve where 5 did, until the
    # HPA acts.
    assert deployment_counts(moments) == [5, 2, 1, 0]
    assert min(m.serving for m in moments) == 3
    assert moments[-1].serving == 3


@pytest.mark.parametrize("strategy", [CANARY, BLUE_GREEN], ids=["canary", "blue-green"])
def test_onsuccess_keeps_the_deployment_until_healthy_then_drops_to_the_rollouts_replicas(strategy):
    moments = adopt(strategy, "onsuccess", rollout_replicas=3)
    assert deployment_counts(moments) == [5, 0]
    assert max(m.serving for m in moments) == 8
    dropped = next(m.t for m in moments if m.deployment == 0)
    assert min(m.serving for m in moments if m.t < dropped) == 5
    assert moments[-1].serving == 3


def test_never_leaves_the_deployment_serving_beside_the_rollout():
    moments = adopt(CANARY, "never", rollout_replicas=3)
    assert deployment_counts(moments) == [5]
    assert min(m.serving for m in moments) == 5
    assert moments[-1].serving == 8


@pytest.mark.parametrize("scale_down", ["progressively", "onsuccess"])
def test_a_rollout_created_with_the_deployments_count_never_serves_fewer_pods(scale_down):
    """What a user can do at v1.9.1: give the Rollout, on creation, at least the Deployment's
    live count (the HPA's maxReplicas is always enough); the HPA takes over from there."""
    moments = adopt(CANARY, scale_down, rollout_replicas=5)
    assert min(m.serving for m in moments) == 5
    assert moments[-1] == Moment(moments[-1].t, 5, 0)


def test_a_rollout_without_replicas_is_given_1_and_progressively_drops_to_1_pod():
    """argoproj/argo-rollouts#4110: a Rollout created without spec.replicas (to leave them to the
    HPA) gets 1 from the controller (rollout/controller.go syncHandler, defaults.DefaultReplicas),
    and the rehearsal's reader defaults it to 1 too; then spec.replicas - readyReplicas is 0."""
    moments = adopt(CANARY, "progressively", rollout_replicas=1)
    assert deployment_counts(moments) == [5, 0]
    assert min(m.serving for m in moments) == 1


def test_an_hpa_scale_up_after_a_progressive_adoption_brings_deployment_pods_back_until_healthy():
    """argoproj/argo-rollouts#4321, as far as #4322 fixed it by v1.9.1: once the Rollout is
    Healthy the Deployment is held at 0, but an HPA's scale-up makes the phase Progressing
    (updatedReplicas < spec.replicas) while the revision is still 1, and the Deployment is scaled
    to spec.replicas - readyReplicas again until the new Rollout pods are ready."""

    async def scenario():
        adoption = await adopting(CANARY, "progressively", rollout_replicas=3)
        await settled(adoption)
        controller = adoption.controller
        migrated = len(adoption.moments) - 1  # the last moment before the scale
        controller.update_scale(5)
        await adoption.cluster.until(lambda: controller.healthy())
        await asyncio.sleep(5)
        await adoption.cluster.stop()
        return adoption.moments[migrated:], controller.workload.spec.replicas

    moments, final = run(scenario())
    assert deployment_counts(moments) == [0, 2, 1, 0]
    assert final == 0
    assert min(m.serving for m in moments) == 3


def test_the_hpa_sees_only_the_rollouts_pods_while_it_adopts_a_deployment():
    """The blue-green Rollout's active Service has no hash yet while it adopts the Deployment's:
    status.selector is the Rollout's spec.selector (which matches the Deployment's pods too) and
    HPAReplicas counts the Rollout's own pods; once the Service is switched, the active
    ReplicaSet only."""

    async def scenario():
        adoption = await adopting(BLUE_GREEN, "never", rollout_replicas=3)
        controller = adoption.controller
        await adoption.cluster.until(lambda: len(controller.new.active()) == 3)
        adopting_scale = controller.get_scale()
        await adoption.cluster.until(lambda: controller.selectors.get("app") == V1)
        await adoption.cluster.until(lambda: controller.get_scale().selector == V1, timeout=1)
        switched_scale = controller.get_scale()
        await adoption.cluster.stop()
        return adopting_scale, switched_scale

    adopting_scale, switched_scale = run(scenario())
    assert adopting_scale == Scale(spec_replicas=3, status_replicas=3, selector=None)
    assert switched_scale == Scale(spec_replicas=3, status_replicas=3, selector=V1)

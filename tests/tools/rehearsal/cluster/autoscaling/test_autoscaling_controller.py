"""The HPA controller running in virtual time (tests/emulation.py): its sync schedule, its writes
to the scale, its events on the timeline, and the shipped HPA's behavior
(base/horizontalpodautoscaler.yaml) under sustained load, with a fake scale target, fake pods and a
fake metrics API whose pods share one CPU demand evenly."""

import asyncio
from dataclasses import dataclass, field, replace

import yaml

from tests.emulation import run
from tools.rehearsal.cluster.autoscaling.controller import HorizontalController
from tools.rehearsal.cluster.autoscaling.replica_calculator import ContainerInfo, PodInfo
from tools.rehearsal.cluster.autoscaling.target import Scale
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric
from tools.rehearsal.manifests.autoscaler import ScaleTargetRef, read_autoscaler
from tools.rehearsal.timeline import Timeline
from tools.repo import ROOT

REQUEST = 250  # millicores, the base Deployment's request


def shipped_autoscaler():
    resources = [
        yaml.safe_load((ROOT / "base" / name).read_text())
        for name in ("deployment.yaml", "horizontalpodautoscaler.yaml")
    ]
    hpa = read_autoscaler(resources, "base", "Deployment", "zero-downtime-app")
    assert hpa is not None
    return hpa


@dataclass
class FakeTarget:
    """A scale subresource: spec.replicas as written, status.replicas following at once."""

    replicas: int
    kind: str = "Deployment"
    selector: str | None = None
    writes: list[tuple[float, int]] = field(default_factory=list)

    def get_scale(self) -> Scale:
        return Scale(self.replicas, self.replicas, self.selector)

    def update_scale(self, replicas: int) -> None:
        self.writes.append((asyncio.get_running_loop().time(), replicas))
        self.replicas = replicas


@dataclass
class FakeCluster:
    """Pods of the target, long ready, sharing `demand` millicores of CPU evenly."""

    target: FakeTarget
    demand: int = 0
    unavailable: bool = False
    selectors: list[str | None] = field(default_factory=list)

    def pods(self, selector: str | None) -> list[PodInfo]:
        self.selectors.append(selector)
        return [
            PodInfo(
                f"app-{i}",
                (ContainerInfo("app", {"cpu": REQUEST}),),
                ready_transition=-3600,
                start_time=-3600,
            )
            for i in range(self.target.replicas)
        ]

    def pod_metrics(self, resource, pods, container=None):
        if self.unavailable or not pods:
            raise MetricsUnavailable("no metrics returned from resource metrics API")
        now = asyncio.get_running_loop().time()
        return {name: PodMetric(self.demand // len(pods), now, 15) for name in pods}


def controller_for(cluster: FakeCluster, hpa=None) -> HorizontalController:
    timeline = Timeline(clock=asyncio.get_running_loop().time)
    return HorizontalController(
        hpa or shipped_autoscaler(), cluster.target, cluster.pods, cluster, timeline
    )


def test_it_syncs_when_created_then_every_sync_period():
    async def scenario():
        cluster = FakeCluster(FakeTarget(3), demand=3 * 150)  # 60% of 70%: nothing to do
        controller = controller_for(cluster)
        controller.start()
        await asyncio.sleep(61)
        await controller.stop()
        return controller, cluster

    controller, cluster = run(scenario())
    assert [round(sync.t, 3) for sync in controller.history] == [0, 15, 30, 45, 60]
    assert not cluster.target.writes and cluster.selectors == [None] * 5
    assert all(not sync.rescaled and sync.desired_replicas == 3 for sync in controller.history)
    assert controller.history[0].metric_statuses[0].average_utilization == 60


def test_the_shipped_behavior_adds_two_pods_per_30_s_and_waits_300_s_to_remove_one():
    """base/horizontalpodautoscaler.yaml: scaleUp Pods 2 per 30 s without a window, scaleDown
    Pods 1 per 60 s after a 300 s window. Under 183% of 70% the HPA goes 3 -> 5 at once and
    5 -> 6 one period later; once the load is gone it keeps 6 until the last high
    recommendation leaves the window, then removes a pod a minute."""

    async def scenario():
        cluster = FakeCluster(FakeTarget(3), demand=3 * 458)
        controller = controller_for(cluster)
        controller.start()
        await asyncio.sleep(100)
        cluster.demand = 0  # the load stops at t = 100
        await asyncio.sleep(600)
        await controller.stop()
        return controller, cluster

    controller, cluster = run(scenario())
    writes = [(round(t), replicas) for t, replicas in cluster.target.writes]
    assert writes[:2] == [(0, 5), (30, 6)]
    last_high = max(s.t for s in controller.history if s.recommended and s.recommended >= 6)
    scale_downs = writes[2:]
    assert scale_downs[0][0] > last_high + 300 - 15
    assert all(t > last_high + 299 for t, _ in scale_downs)
    assert [replicas for _, replicas in scale_downs] == [5, 4, 3]
    assert all(b[0] - a[0] >= 60 for a, b in zip(scale_downs, scale_downs[1:], strict=False))
    first = controller.history[0]
    assert first.reason == "cpu resource utilization (percentage of request) above target"
    assert first.metric_statuses[0].average_utilization == 183
    assert first.recommended == 8  # ceil(3 x 183 / 70), limited to +2
    limited = next(c for c in controller.history[1].conditions if c.type == "ScalingLimited")
    assert (limited.status, limited.reason) == ("True", "ScaleUpLimit")
    events = [(e.source, e.kind, e.detail) for e in controller.timeline.events]
    assert events[:2] == [
        (
            "horizontal-pod-autoscaler",
            "SuccessfulRescale",
            "New size: 5; reason: cpu resource utilization (percentage of request) above target",
        ),
        (
            "horizontal-pod-autoscaler",
            "SuccessfulRescale",
            "New size: 6; reason: cpu resource utilization (percentage of request) above target",
        ),
    ]
    assert events[2][2] == "New size: 5; reason: All metrics below target"


def test_no_metrics_is_recorded_and_changes_nothing():
    async def scenario():
        cluster = FakeCluster(FakeTarget(3), unavailable=True)
        controller = controller_for(cluster)
        controller.start()
        await asyncio.sleep(1)
        await controller.stop()
        return controller, cluster

    controller, cluster = run(scenario())
    assert not cluster.target.writes
    kinds = [e.kind for e in controller.timeline.events]
    assert kinds == ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
    assert controller.history[0].error.startswith("failed to compute desired number of replicas")


def test_a_moved_target_keeps_the_hpa_state_and_another_hpa_starts_afresh():
    """The same HPA object moved to a Rollout keeps its scale events (the 30 s period still
    holds) and its schedule; an HPA of another name is synced at once, with nothing kept."""

    async def scenario():
        cluster = FakeCluster(FakeTarget(3), demand=3 * 458)
        controller = controller_for(cluster)
        controller.start()
        await asyncio.sleep(5)
        rollout = FakeTarget(5, kind="Rollout", selector="rollouts-pod-template-hash=abc")
        cluster.target = rollout
        moved = replace(
            controller.spec, target=ScaleTargetRef("argoproj.io/v1alpha1", "Rollout", "app")
        )
        controller.apply(moved, rollout)
        await asyncio.sleep(20)  # syncs at 15 (limited: +2 within 30 s) and ...
        kept = list(controller.state.scale_up_events)
        controller.apply(replace(moved, name="other"), rollout)
        await asyncio.sleep(1)  # ... at once for the new HPA
        await controller.stop()
        return controller, rollout, cluster, kept

    controller, rollout, cluster, kept = run(scenario())
    assert [round(s.t) for s in controller.history] == [0, 15, 25]
    assert controller.history[1].desired_replicas == 5 and len(kept) == 1
    assert rollout.writes and round(rollout.writes[0][0]) == 25
    assert cluster.selectors[-1] == "rollouts-pod-template-hash=abc"
    assert controller.state.scale_up_events[0].timestamp > 20


def test_describe_reads_like_kubectl_describe_hpa():
    async def scenario():
        cluster = FakeCluster(FakeTarget(3), demand=3 * 458)
        controller = controller_for(cluster)
        controller.start()
        await asyncio.sleep(20)
        await controller.stop()
        return controller.describe()

    text = run(scenario())
    assert "  cpu resource utilization (percentage of request): 109% (274m) / 70%" in text
    assert "Min replicas:  3" in text and "Max replicas:  6" in text
    assert "      - Type: Pods  Value: 2  Period: 30 seconds" in text
    assert "Deployment pods:  5 current / 5 desired" in text
    assert "  ScalingLimited  True    ScaleUpLimit" in text
    assert "New size: 5; reason: cpu resource utilization (percentage of request) above" in text

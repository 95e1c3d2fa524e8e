"""The emulated kubelet's relist, status updates and readiness gates, in virtual time with fake
containers (tests/emulation.py); the pod spec's readinessGates as read from a rendered overlay."""

import pytest

from tests.emulation import Behaviour, Cluster, FakeRuntime, deployment, probe, run
from tests.test_emulation import start
from tools.rehearsal.cluster.node.kubelet import RELIST_PERIOD, STATUS_UPDATE_SECONDS
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.timeline import PodEvent
from tools.repo import ROOT

GATE = "target-health.elbv2.k8s.aws/users"


def in_view(cluster: Cluster, pod) -> bool:
    """The Service sends new connections to the pod."""
    return any(endpoint.pod == pod.name for endpoint in cluster.view.ready)


def times(cluster: Cluster, pod: str, kind: PodEvent) -> list[float]:
    return [t for t, _, k in cluster.events(pod) if k == kind]


def test_a_crash_is_seen_at_the_next_relist_then_readiness_drops_and_the_container_restarts():
    # A readiness probe slower than the relist: the relist, not the probe, notices the exit.
    slow = probe("readiness", period=10, failures=3)

    async def scenario():
        runtime = FakeRuntime()
        cluster = Cluster(runtime, propagation=0.5)
        await start(cluster, deployment("v1", replicas=1, readiness=slow))
        (pod,) = cluster.controller.pods()
        await cluster.until(lambda: cluster.timeline.now() % RELIST_PERIOD > 0.3)
        crashed = cluster.timeline.now()
        runtime.containers[pod.name][-1].crash(status=1)
        await cluster.until(lambda: len(runtime.containers[pod.name]) == 2, step=0.01)
        await cluster.until(lambda: not cluster.view.ready, step=0.01)
        left_view = cluster.timeline.now()
        not_ready = times(cluster, pod.name, PodEvent.NOT_READY)[0]
        restarted = times(cluster, pod.name, PodEvent.CONTAINER_STARTED)[1]
        await cluster.stop()
        return crashed, not_ready, restarted, left_view

    crashed, not_ready, restarted, left_view = run(scenario())
    relist = (crashed // RELIST_PERIOD + 1) * RELIST_PERIOD  # the loop's clock is the run's
    assert crashed < relist <= crashed + RELIST_PERIOD
    # Nothing happens before the relist; then one status update; then the Service's lag.
    assert restarted == pytest.approx(relist)
    assert not_ready == pytest.approx(relist + STATUS_UPDATE_SECONDS)
    assert left_view >= not_ready + 0.5 - 1e-9


def test_a_pod_is_ready_only_once_every_readiness_gate_is_true():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        cluster.controller.apply(deployment("v1", replicas=1, readiness_gates=(GATE,)))
        cluster.controller.start()
        await cluster.until(lambda: cluster.controller.pods() != [])
        (pod,) = cluster.controller.pods()
        await cluster.until(lambda: pod.containers_ready)
        await cluster.until(lambda: cluster.timeline.now() > 10)  # ready containers, gate unset
        held = (pod.ready, in_view(cluster, pod), cluster.controller.completed_at)
        pod.set_condition(GATE, False)
        await cluster.until(lambda: cluster.timeline.now() > 15)
        held_false = pod.ready
        opened = cluster.timeline.now()
        pod.set_condition(GATE, True)
        ready_at = await cluster.until(lambda: pod.ready, step=0.01)
        await cluster.until(lambda: in_view(cluster, pod))
        await cluster.until(lambda: cluster.controller.completed_at is not None)
        closed = cluster.timeline.now()
        pod.set_condition(GATE, False)  # e.g. the load balancer's health check fails
        not_ready_at = await cluster.until(lambda: not pod.ready, step=0.01)
        await cluster.until(lambda: not in_view(cluster, pod))
        endpoint = pod.endpoint()
        await cluster.stop()
        return held, held_false, ready_at - opened, not_ready_at - closed, endpoint

    held, held_false, to_ready, to_not_ready, endpoint = run(scenario())
    assert held == (False, False, None)
    assert held_false is False
    assert to_ready == pytest.approx(STATUS_UPDATE_SECONDS)
    assert to_not_ready == pytest.approx(STATUS_UPDATE_SECONDS)
    assert endpoint.ready is False and endpoint.serving is False


def test_a_gate_true_does_not_make_unready_containers_ready():
    async def scenario():
        runtime = FakeRuntime({"v1": Behaviour(never_ready=True)})
        cluster = Cluster(runtime)
        cluster.controller.apply(deployment("v1", replicas=1, readiness_gates=(GATE,)))
        cluster.controller.start()
        await cluster.until(lambda: cluster.controller.pods() != [])
        (pod,) = cluster.controller.pods()
        pod.set_condition(GATE, True)
        await cluster.until(lambda: cluster.timeline.now() > 10)
        ready = pod.ready
        await cluster.stop()
        return ready

    assert run(scenario()) is False


# -- the manifest ------------------------------------------------------------------------------


def with_gates(tmp_path, gates) -> list[str]:
    ops = [variants.put("/spec/template/spec/readinessGates", gates)]
    workload = load_overlay(variants.write(ROOT / "overlays/v1", ops, tmp_path / "gated"), "gated")
    return list(workload.deployment.template.readiness_gates)


def test_readiness_gates_are_read_from_the_pod_spec(tmp_path):
    gates = [{"conditionType": GATE}, {"conditionType": "example.com/warm"}]
    assert with_gates(tmp_path, gates) == [GATE, "example.com/warm"]


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ([{"conditionType": "-bad"}], r"readinessGates\[0\]\.conditionType: not a qualified name"),
        ([{"type": GATE}], r"readinessGates\[0\]\.conditionType: expected a non-empty string"),
        ({"conditionType": GATE}, r"readinessGates: expected a list"),
    ],
)
def test_a_bad_readiness_gate_is_named(tmp_path, gates, message):
    with pytest.raises(RehearsalError, match=message):
        with_gates(tmp_path, gates)

"""The emulated Deployment controller, kubelet and Service, in virtual time with fake containers.

These decide every rehearsal's result, so their rules are pinned here one by one, fast: no
process, no socket, no real sleep (tests/emulation.py).
"""

import asyncio
import random
import signal

import pytest

from tests.emulation import Behaviour, Cluster, FakeRuntime, deployment, probe, run
from tools import rollingupdate
from tools.rehearsal.cluster.network.addresses import AddressPool
from tools.rehearsal.cluster.network.lag import UniformLag
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView
from tools.rehearsal.cluster.node.kubelet import BACKOFF_START, PRESTOP_OVERRUN_GRACE
from tools.rehearsal.timeline import PodEvent, Timeline


async def start(cluster: Cluster, spec) -> None:
    """Bring up the starting state and let its pods become available."""
    cluster.controller.apply(spec)
    cluster.controller.start()
    await cluster.until(lambda: cluster.controller.completed_at is not None)


# -- the Deployment controller --------------------------------------------------------------


@pytest.mark.parametrize(
    ("replicas", "max_surge", "max_unavailable"),
    [(3, 1, 0), (1, "25%", "25%"), (4, "25%", "25%"), (10, "25%", "25%"), (3, 0, 1), (5, 2, 1)],
)
def test_a_rollout_stays_within_max_surge_and_max_unavailable(replicas, max_surge, max_unavailable):
    fenceposts = rollingupdate.resolve(max_surge, max_unavailable, replicas)

    async def scenario():
        cluster = Cluster(FakeRuntime())
        old = deployment("v1", replicas, max_surge, max_unavailable, min_ready=2)
        await start(cluster, old)
        cluster.controller.apply(deployment("v2", replicas, max_surge, max_unavailable, 2))
        most_pods, fewest_available = 0, replicas
        while cluster.controller.completed_at is None:
            sets = cluster.controller.replica_sets
            most_pods = max(most_pods, sum(rs.replicas for rs in sets))
            fewest_available = min(fewest_available, sum(rs.available(2) for rs in sets))
            await asyncio.sleep(0.01)
        final = [pod.version for pod in cluster.controller.new.active()]
        await cluster.stop()
        return most_pods, fewest_available, final

    most_pods, fewest_available, final = run(scenario())
    # The bounds hold, and the controller uses all the room they give.
    assert most_pods == replicas + fenceposts.max_surge
    assert fewest_available == replicas - min(fenceposts.max_unavailable, replicas)
    assert final == ["v2"] * replicas


def test_a_pod_is_available_only_once_ready_for_min_ready_seconds():
    async def scenario():
        cluster = Cluster(FakeRuntime())
        await start(cluster, deployment("v1", replicas=1, min_ready=3))
        (pod,) = cluster.controller.pods()
        ready = next(t for t, _, kind in cluster.events(pod.name) if kind == PodEvent.READY)
        available = next(t for t, _, kind in cluster.events(pod.name) if kind == PodEvent.AVAILABLE)
        await cluster.stop()
        return available - ready

    assert 3 <= run(scenario()) <= 3.1


def test_no_progress_for_the_deadline_fails_the_rollout_while_old_pods_serve():
    async def scenario():
        cluster = Cluster(FakeRuntime({"v2": Behaviour(never_ready=True)}))
        await start(cluster, deployment("v1", deadline=10))
        applied = cluster.timeline.now()
        cluster.controller.apply(deployment("v2", deadline=10))
        failed_at = await cluster.until(lambda: cluster.controller.failed_reason)
        serving = [p.version for p in cluster.controller.pods() if p.ready and not p.terminating]
        reason = cluster.controller.failed_reason
        await cluster.stop()
        return failed_at - applied, reason, serving

    elapsed, reason, serving = run(scenario())
    assert reason == "ProgressDeadlineExceeded"
    assert 10 <= elapsed <= 10.5
    assert serving == ["v1", "v1", "v1"]


# -- the kubelet ------------------------------------------------------------------------------


def kinds(cluster: Cluster, pod: str) -> list[tuple[float, str]]:
    return [(t, kind) for t, _, kind in cluster.events(pod)]


@pytest.mark.parametrize(("period", "failures"), [(1, 1), (1, 3), (2, 2)])
def test_readiness_turns_false_after_failure_threshold_periods(period, failures):
    readiness = probe("readiness", period=period, failures=failures)

    async def scenario():
        runtime = FakeRuntime()
        cluster = Cluster(runtime)
        await start(cluster, deployment("v1", replicas=1, readiness=readiness))
        (pod,) = cluster.controller.pods()
        broke = cluster.timeline.now()
        runtime.containers[pod.name][-1].behaviour = Behaviour(never_ready=True)
        not_ready = await cluster.until(lambda: not pod.ready)
        await cluster.stop()
        return not_ready - broke

    elapsed = run(scenario())
    assert (failures - 1) * period < elapsed <= failures * period + 0.01


def test_readiness_needs_success_threshold_successes_in_a_row():
    readiness = probe("readiness", period=1, successes=3)

    async def scenario():
        cluster = Cluster(FakeRuntime({"v1": Behaviour(ready_after=0)}))
        cluster.controller.apply(deployment("v1", replicas=1, readiness=readiness))
        cluster.controller.start()
        await cluster.until(lambda: cluster.controller.pods())
        (pod,) = cluster.controller.pods()
        await cluster.until(lambda: pod.ready)
        events = kinds(cluster, pod.name)
        await cluster.stop()
        started = next(t for t, kind in events if kind == PodEvent.CONTAINER_STARTED)
        ready = next(t for t, kind in events if kind == PodEvent.READY)
        return ready - started

    assert 2 <= run(scenario()) < 2.1  # probes at 0, 1 and 2 s


def test_a_failing_liveness_probe_restarts_the_container_with_back_off():
    liveness = probe("liveness", period=1, failures=3)

    async def scenario():
        cluster = Cluster(FakeRuntime({"v1": Behaviour(live=False, drain=0)}))
        cluster.controller.apply(deployment("v1", replicas=1, liveness=liveness, pre_stop=None))
        cluster.controller.start()
        await cluster.until(lambda: cluster.controller.pods())
        (pod,) = cluster.controller.pods()
        await cluster.until(lambda: len(cluster.runtime.containers[pod.name]) == 4, timeout=120)
        events = kinds(cluster, pod.name)
        await cluster.stop()
        return events

    events = run(scenario())
    starts = [t for t, kind in events if kind == PodEvent.CONTAINER_STARTED]
    failed = [t for t, kind in events if kind == PodEvent.LIVENESS_FAILED]
    # Each container fails its third probe (at 2 s), then waits 0, 10, 20 s before the next.
    gaps = [start - fail for fail, start in zip(failed, starts[1:], strict=False)]
    assert gaps == pytest.approx([0, BACKOFF_START, 2 * BACKOFF_START], abs=0.05)


@pytest.mark.parametrize(
    ("pre_stop", "grace", "sigterm_after", "sigkill_after"),
    [
        (5, 8, 5, 8),  # the grace period counts from the deletion, preStop included
        (10, 8, 8, 8 + PRESTOP_OVERRUN_GRACE),  # a preStop that uses it all gets 2 s more
    ],
)
def test_termination_signals_come_when_the_grace_period_says(
    pre_stop, grace, sigterm_after, sigkill_after
):
    async def scenario():
        runtime = FakeRuntime({"v1": Behaviour(ignore_sigterm=True)})
        cluster = Cluster(runtime)
        await start(cluster, deployment("v1", replicas=1, pre_stop=pre_stop, grace=grace))
        (pod,) = cluster.controller.pods()
        deleted = cluster.timeline.now()
        deleted_loop = asyncio.get_running_loop().time()
        pod.delete()
        await cluster.until(lambda: pod.gone)
        signals = runtime.containers[pod.name][-1].signals
        await cluster.stop()
        return [(signum, at - deleted_loop) for at, signum in signals], deleted

    signals, _ = run(scenario())
    assert signals == [
        (signal.SIGTERM, pytest.approx(sigterm_after, abs=0.01)),
        (signal.SIGKILL, pytest.approx(sigkill_after, abs=0.01)),
    ]


def test_a_container_that_exits_is_restarted_and_the_pod_stays():
    async def scenario():
        runtime = FakeRuntime()
        cluster = Cluster(runtime)
        await start(cluster, deployment("v1", replicas=1))
        (pod,) = cluster.controller.pods()
        runtime.containers[pod.name][-1].crash(status=3)
        await cluster.until(lambda: pod.restarts == 1 and pod.ready)
        await cluster.stop()
        return pod.exit_codes[0], len(runtime.containers[pod.name])

    assert run(scenario()) == (3, 2)


# -- the Service's view -----------------------------------------------------------------------


def endpoint(pod: str, state: str) -> Endpoint:
    return Endpoint(
        pod=pod,
        address="127.0.0.9",
        port=8080,
        ready=state == "ready",
        serving=state in ("ready", "serving"),
        terminating=state in ("serving", "terminating"),
    )


def test_updates_of_one_endpoint_arrive_in_order_whatever_the_jitter():
    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        view = EndpointView(timeline, UniformLag(1.0, 0.9), rng=random.Random(3))
        states = ["ready", "serving", "ready", "terminating", "serving", "terminating"] * 5
        for state in states:
            view.publish("pod", endpoint("pod", state))
            await asyncio.sleep(0.05)
        view.publish("pod", None)
        await asyncio.sleep(2.5)
        seen = [e.detail.split(": ", 1)[1] for e in timeline.events if e.kind == "view"]
        return seen, view.current

    seen, current = run(scenario())
    assert current == {}
    # Every change is applied in the order it was published (repeats collapse).
    assert seen[0] == "absent -> ready"
    assert seen[-1] == "terminating -> removed"
    assert len(seen) == 31


def test_propagation_takes_the_delay():
    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        view = EndpointView(timeline, UniformLag(1.0, 0.0), rng=random.Random(1))
        view.publish("a", endpoint("a", "ready"))
        await asyncio.sleep(0.99)
        before = view.pick()
        await asyncio.sleep(0.02)
        return before, view.pick()

    before, after = run(scenario())
    assert before is None and after.pod == "a"


def test_terminating_endpoints_serve_only_when_none_is_ready():
    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        view = EndpointView(timeline, UniformLag(0.0, 0.0), rng=random.Random(1))
        picks = {}
        for name, states in {
            "one ready": {"a": "ready", "b": "serving", "c": "terminating"},
            "none ready": {"a": "serving", "b": "terminating", "c": "starting"},
            "none serving": {"a": "terminating", "b": "starting", "c": "terminating"},
        }.items():
            for pod, state in states.items():
                view.publish(pod, endpoint(pod, state))
            await asyncio.sleep(0.01)
            picks[name] = {view.pick().pod if view.pick() else None for _ in range(50)}
            picks[name + " routable"] = {pod for pod in states if view.routable(pod)}
        return picks

    picks = run(scenario())
    assert picks["one ready"] == {"a"} == picks["one ready routable"]
    assert picks["none ready"] == {"a"} == picks["none ready routable"]
    assert picks["none serving"] == {None}
    assert picks["none serving routable"] == set()


# -- pod addresses ------------------------------------------------------------------------------


def test_rehearsals_running_at_once_never_share_a_pod_address():
    first, second = AddressPool("127.0.0.0/24"), AddressPool("127.0.0.0/24")
    try:
        mine = {first.allocate(8080) for _ in range(3)}
        theirs = {second.allocate(8080) for _ in range(3)}
        assert not mine & theirs
        first.close()  # a finished run gives its addresses back
        third = AddressPool("127.0.0.0/24")
        assert third.allocate(8080) in mine
        third.close()
    finally:
        first.close()
        second.close()


def test_a_selector_switch_reaches_the_service_in_one_update():
    """A Service's selector moving from the old pods to the new ones (a blue-green promotion)
    changes every endpoint in one EndpointSlice update: never a moment with none."""

    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        view = EndpointView(timeline, UniformLag(1.0, 0.9), rng=random.Random(5))
        view.publish_all({"old-1": endpoint("old-1", "ready"), "old-2": endpoint("old-2", "ready")})
        await asyncio.sleep(2)
        view.publish_all(
            {
                "old-1": None,
                "old-2": None,
                "new-1": endpoint("new-1", "ready"),
                "new-2": endpoint("new-2", "ready"),
            }
        )
        await asyncio.sleep(2)
        return view.history

    history = run(scenario())
    assert [pods for _, pods in history] == [("old-1", "old-2"), ("new-1", "new-2")]

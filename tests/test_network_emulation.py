"""The Service on many nodes, in virtual time: each node's view with its own heavy-tailed lag,
the EndpointSlice controller's batching, a frozen view, and the exact-delay mode."""

import asyncio
import random
import statistics
from pathlib import Path

import pytest

from tests.emulation import run
from tests.test_emulation import endpoint
from tools.rehearsal.cli import node_conditions
from tools.rehearsal.cluster.network.lag import HeavyTailedLag, UniformLag
from tools.rehearsal.cluster.network.proxy import ConnectionTrace
from tools.rehearsal.cluster.network.service import EmulatedService
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.options import FrozenView, Options, SlowView
from tools.rehearsal.report.traces import failure_traces
from tools.rehearsal.timeline import Timeline
from tools.rehearsal.traffic.outcomes import RequestRecord


def service(lags, batch: float = 0.0, seed: int = 11) -> EmulatedService:
    timeline = Timeline(clock=asyncio.get_running_loop().time)
    return EmulatedService("web", timeline, lags, random.Random(seed), batch)


def applied(view) -> list[tuple[float, str]]:
    """(time, "pod: before -> after") of every change a view applied."""
    return [
        (e.t, e.detail)
        for e in view.timeline.events
        if e.source == view.name and e.kind == "view" and " -> " in e.detail
    ]


def test_the_heavy_tailed_lag_has_its_p50_p99_and_max():
    lag = HeavyTailedLag(p50=0.5, p99=3.0, max=5.0)
    rng = random.Random(1)
    samples = sorted(lag.sample(rng) for _ in range(40_000))
    assert statistics.median(samples) == pytest.approx(0.5, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(3.0, rel=0.1)
    # The tail goes past p99 up to the max, never beyond: a few draws are clipped there.
    assert samples[-1] == 5.0
    assert 0 < samples.count(5.0) < 0.005 * len(samples)


def test_each_view_draws_its_own_lag_from_the_distribution():
    async def scenario():
        web = service([HeavyTailedLag(0.5, 3.0, 5.0)] * 3)
        for i in range(300):  # far enough apart that no update waits for the one before
            web.slices.pod_changed(f"pod-{i}", endpoint(f"pod-{i}", "ready"))
            await asyncio.sleep(6)
        return [view.lags for view in web.views]

    lags = run(scenario())
    assert all(len(view) == 300 for view in lags)
    assert lags[0] != lags[1] != lags[2]  # each node its own draws
    for view in lags:
        assert max(view) <= 5.0
        assert 0.35 < statistics.median(view) < 0.7
        assert sum(lag > 1.5 for lag in view) >= 3  # the tail is there in every view


def test_updates_reach_each_view_in_the_order_they_were_published():
    states = ["ready", "serving", "terminating", "ready", "terminating", "serving"] * 20

    async def scenario():
        web = service([HeavyTailedLag(0.5, 3.0, 5.0)] * 3)
        for i, state in enumerate(states):
            web.slices.pod_changed("a", endpoint("a", state))
            web.slices.pod_changed(f"b-{i}", endpoint(f"b-{i}", "ready"))
            await asyncio.sleep(0.05)
        await asyncio.sleep(6)
        return web

    web = run(scenario())
    expected = ["absent -> ready"] + [
        f"{endpoint('a', before).describe()} -> {endpoint('a', after).describe()}"
        for before, after in zip(states, states[1:], strict=False)
    ]
    for view in web.views:
        seen = [detail.removeprefix("a: ") for _, detail in applied(view) if detail[:3] == "a: "]
        assert seen == expected
        order = [int(d.split(":")[0][2:]) for _, d in applied(view) if d.startswith("b-")]
        assert order == sorted(order)  # other endpoints' updates never overtake either
        assert max(view.lags) > 1.0  # with a lag that varied


def test_the_endpointslice_controller_batches_pod_changes():
    """Changes within the batch period are published as one update, with each pod's state at
    the end of the period; a selector change is published at once."""

    async def scenario():
        web = service([UniformLag(1.0)], batch=0.5)
        web.slices.pod_changed("a", endpoint("a", "ready"))
        await asyncio.sleep(0.1)
        web.slices.pod_changed("b", endpoint("b", "ready"))
        await asyncio.sleep(0.2)
        web.slices.pod_changed("b", endpoint("b", "starting"))  # b's ready state never goes out
        web.slices.pod_changed("c", endpoint("c", "ready"))
        await asyncio.sleep(0.5)
        web.slices.pod_changed("a", endpoint("a", "terminating"))  # the next batch
        await asyncio.sleep(0.1)
        web.slices.service_changed({"d": endpoint("d", "ready")})  # with a's change, now
        await asyncio.sleep(3)
        return applied(web.views[0])

    changes = run(scenario())
    assert changes == [
        (pytest.approx(1.5), "a: absent -> ready"),
        (pytest.approx(1.5), "b: absent -> not ready"),
        (pytest.approx(1.5), "c: absent -> ready"),
        (pytest.approx(1.9), "a: ready -> terminating"),
        (pytest.approx(1.9), "d: absent -> ready"),
    ]


def test_a_frozen_view_applies_nothing_then_catches_up_in_order():
    async def scenario():
        web = service([UniformLag(0.2)] * 2)
        web.slices.pod_changed("a", endpoint("a", "ready"))
        await asyncio.sleep(1)
        web.views[1].freeze(5)  # node 1's kube-proxy restarts at t=1
        for at, state in [(1.5, "serving"), (2.0, "terminating"), (3.0, None)]:
            await asyncio.sleep(at - web.views[0].timeline.now())
            web.slices.pod_changed("a", endpoint("a", state) if state else None)
        routable_while_frozen = web.views[1].routable("a")
        await asyncio.sleep(5)
        return [applied(view) for view in web.views], web.views, routable_while_frozen

    (running, frozen), views, routable_while_frozen = run(scenario())
    changes = ["a: absent -> ready", "a: ready -> terminating, serving"]
    changes += ["a: terminating, serving -> terminating", "a: terminating -> removed"]
    assert running == [
        (pytest.approx(t), c) for t, c in zip([0.2, 1.7, 2.2, 3.2], changes, strict=True)
    ]
    assert frozen == [(pytest.approx(t), c) for t, c in zip([0.2, 6, 6, 6], changes, strict=True)]
    assert routable_while_frozen  # it still sent new connections to a pod long gone
    assert views[1].summary("web").max_lag == pytest.approx(4.5)
    assert views[0].summary("web").max_lag == pytest.approx(0.2)


def test_a_propagation_delay_without_jitter_is_exactly_that_lag_on_every_view():
    options = Options(propagation_delay=2.0, propagation_jitter=0.0)

    async def scenario():
        web = service(options.node_lags(), options.batch_period)
        for i in range(20):
            web.slices.pod_changed("a", endpoint("a", "ready" if i % 2 else "terminating"))
            await asyncio.sleep(0.3)
        await asyncio.sleep(3)
        return web

    web = run(scenario())
    assert len(web.views) == 3
    assert all(view.lags == [pytest.approx(2.0)] * 20 for view in web.views)


def test_the_starting_state_reaches_every_view_at_once_and_later_changes_after_their_lag():
    """A run's starting pods stand for pods that have served for an hour: every view caught up
    with them long ago (run.py brings them up with the views not lagging)."""

    async def scenario():
        web = service(Options(propagation_delay=2.0, propagation_jitter=0.0).node_lags())
        web.lagging(False)
        web.slices.pod_changed("a", endpoint("a", "ready"))
        await asyncio.sleep(0.1)
        at_once = [view.routable("a") for view in web.views]
        web.lagging(True)
        web.slices.pod_changed("a", endpoint("a", "terminating"))
        await asyncio.sleep(3)
        return at_once, web

    at_once, web = run(scenario())
    assert at_once == [True, True, True]
    assert all(view.lags == [pytest.approx(0.0), pytest.approx(2.0)] for view in web.views)


def test_a_slow_view_lags_exactly_its_seconds_and_the_others_keep_theirs():
    options = Options(propagation_delay=0.5, propagation_jitter=0.0, slow_views=(SlowView(1, 12),))
    assert options.node_lags() == [UniformLag(0.5), UniformLag(12.0), UniformLag(0.5)]


def test_the_service_sums_its_proxies_and_finds_a_connection_on_any_node():
    async def scenario():
        return service([UniformLag(0.0)] * 3)

    web = run(scenario())
    web.proxies[0].no_endpoint, web.proxies[2].no_endpoint = 1, 2
    web.proxies[1].backend_failed["a"] = 3
    web.proxies[2].open["a"] = 1
    web.proxies[0].traces.append(ConnectionTrace(4000, accepted=1.0, pod="a"))
    web.proxies[2].traces.append(ConnectionTrace(4001, accepted=2.0, pod="b"))
    web.proxies[1].traces.append(ConnectionTrace(4000, accepted=3.0, pod="c"))  # port reused
    assert web.no_endpoint == 3
    assert web.backend_failed == {"a": 3}
    assert web.open_connections("a") == 1 and web.reachable("a")  # open on node 2 only
    failed = [RequestRecord(2.1, 0.1, "refused", "", "wget", 4001)]
    failed.append(RequestRecord(3.1, 0.1, "refused", "", "wget", 4000))
    traces = failure_traces(failed, web.traces(), Path("/nonexistent"), 0.0)
    assert [trace.connection.pod for trace in traces] == ["b", "c"]


def test_bad_node_conditions_are_named():
    assert node_conditions(["1:2:10"], "--freeze-view", FrozenView) == (FrozenView(1, 2, 10),)
    with pytest.raises(RehearsalError, match=r"--freeze-view: '1:2' is not NODE:START:SECONDS"):
        node_conditions(["1:2"], "--freeze-view", FrozenView)
    with pytest.raises(RehearsalError, match=r"--slow-view: 'x:3' is not NODE:SECONDS"):
        node_conditions(["x:3"], "--slow-view", SlowView)
    for bad in (
        Options(frozen_views=(FrozenView(3, 0, 5),)),  # only nodes 0-2
        Options(slow_views=(SlowView(-1, 5),)),
        Options(lag_p50=2.0, lag_p99=1.0),
        Options(nodes=0),
    ):
        with pytest.raises(RehearsalError, match=r"^--(freeze-view|slow-view|lag-p50|nodes)"):
            bad.validate()


def test_an_update_not_yet_applied_counts_at_its_age_in_the_summary():
    async def scenario():
        web = service([UniformLag(0.2), UniformLag(30.0)])
        web.slices.pod_changed("a", endpoint("a", "terminating"))
        await asyncio.sleep(5)
        return [view.summary("web") for view in web.views]

    quick, late = run(scenario())
    assert (quick.lags, quick.unapplied, quick.max_lag) == ((0.2,), (), pytest.approx(0.2))
    # Not applied when the run ends: its lag is at least its age, and the view is the latest.
    assert (late.lags, late.unapplied, late.max_lag) == ((), (5.0,), 5.0)

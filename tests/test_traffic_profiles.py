"""Each client model does what the real client it is named after does, shown against tiny
servers on loopback (tools/rehearsal/traffic/profiles.py, load.py)."""

import asyncio
import contextlib
import dataclasses
import select

import pytest

from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.traffic import profiles
from tools.rehearsal.traffic.load import Generator, LoadConfig, Target
from tools.rehearsal.traffic.outcomes import OK, RESET_BEFORE_ANSWER
from tools.rehearsal.traffic.profiles import (
    GO_NET_HTTP,
    KEEP_ALIVE,
    OPEN_LOOP,
    PYTHON_REQUESTS,
    WGET,
)
from tools.repo import ROOT

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-App-Version: v9\r\n\r\nOK v9\n"


class Server:
    """A server on 127.0.0.1 that runs `handler(connection_number, reader, writer)`."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "Server":
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1)

    async def accept(self, reader, writer) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await self.handler(self.connections, reader, writer)

    @property
    def target(self) -> Target:
        return Target("127.0.0.1", self.server.sockets[0].getsockname()[1])

    def generator(self, **config) -> Generator:
        return Generator(LoadConfig((f"127.0.0.1:{self.target.port}",), **config))


async def answer(reader, writer) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()


async def twice_on_one_connection(model, handler):
    """Two requests by `model`, the second on the connection the first left, if any."""
    async with Server(handler) as server:
        generator = server.generator(request_timeout=1.0)
        kept = await generator.request(model, server.target, None)
        assert kept is not None
        await generator.request(model, server.target, kept)
    return generator.records, server.connections


async def closed_as_the_request_arrives(number, reader, writer):
    """Every connection: the first request answered (kept alive); the server closes it when
    the next one arrives, as gunicorn's idle close does when it crosses a request."""
    await answer(reader, writer)
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


def test_python_requests_fails_when_the_server_closes_an_idle_connection_as_it_sends():
    records, connections = asyncio.run(
        twice_on_one_connection(PYTHON_REQUESTS, closed_as_the_request_arrives)
    )
    second = records[1]
    assert (second.outcome, second.reused, second.attempts) == (RESET_BEFORE_ANSWER, True, 1)
    assert connections == 1  # no retry


def test_go_net_http_retries_on_a_new_connection_once_and_succeeds():
    records, connections = asyncio.run(
        twice_on_one_connection(GO_NET_HTTP, closed_as_the_request_arrives)
    )
    second = records[1]
    assert (second.outcome, second.reused, second.attempts) == (OK, True, 2)
    assert connections == 2
    assert second.port != records[0].port  # the answer came on the new connection


def test_go_net_http_retries_only_once():
    async def only_the_first_connection_answers(number, reader, writer):
        if number == 1:
            await answer(reader, writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    records, connections = asyncio.run(
        twice_on_one_connection(GO_NET_HTTP, only_the_first_connection_answers)
    )
    assert (records[1].outcome, records[1].attempts) == (RESET_BEFORE_ANSWER, 2)
    assert connections == 2


def test_go_net_http_never_retries_a_new_connection():
    async def close_at_once(number, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def scenario():
        async with Server(close_at_once) as server:
            generator = server.generator(request_timeout=1.0)
            await generator.request(GO_NET_HTTP, server.target, None)
        return generator.records, server.connections

    records, connections = asyncio.run(scenario())
    assert [(r.outcome, r.attempts) for r in records] == [(RESET_BEFORE_ANSWER, 1)]
    assert connections == 1


@pytest.mark.parametrize(
    ("model", "outcome"),
    [
        (PYTHON_REQUESTS, OK),
        # Without the check before reuse the request goes out on the closed connection.
        (dataclasses.replace(PYTHON_REQUESTS, checks_dropped=False), RESET_BEFORE_ANSWER),
        (KEEP_ALIVE, RESET_BEFORE_ANSWER),
    ],
)
def test_the_check_before_reuse_sees_a_close_that_already_arrived(model, outcome):
    async def scenario():
        idle = asyncio.Event()
        closed = asyncio.Event()

        async def closes_when_idle(number, reader, writer):
            await answer(reader, writer)
            if number == 1:  # the server's idle close, once the client is idle
                await idle.wait()
                writer.close()
                await writer.wait_closed()
                closed.set()
            else:
                await reader.read()

        async with Server(closes_when_idle) as server:
            generator = server.generator(request_timeout=1.0)
            kept = await generator.request(model, server.target, None)
            idle.set()
            await closed.wait()
            sock = kept.writer.get_extra_info("socket")
            # The FIN is in the client's kernel; the event loop has not read it.
            assert select.select([sock], [], [], 1.0)[0]
            assert not kept.reader.at_eof()
            await generator.request(model, server.target, kept)
        return generator.records

    records = asyncio.run(scenario())
    second = records[1]
    assert second.outcome == outcome
    assert second.dropped == (outcome == OK)
    assert second.reused == (outcome != OK)


async def arrivals_while_stalled(
    mix: dict[str, int], rate: float, stall: float, enough: int | None = None
) -> int:
    """Requests that reach a server which answers nothing for `stall` seconds, or until
    `enough` have arrived."""
    arrived = 0
    release = asyncio.Event()
    reached = asyncio.Event()

    async def stalls(number, reader, writer):
        nonlocal arrived
        while True:
            await reader.readuntil(b"\r\n\r\n")
            arrived += 1
            if enough is not None and arrived >= enough:
                reached.set()
            await release.wait()
            writer.write(ANSWER)
            await writer.drain()

    async with Server(stalls) as server:
        generator = server.generator(clients=mix, request_timeout=stall + 1, seed=1)
        clients = [asyncio.create_task(client) for client in generator.clients()]
        generator.pace.set("rate", rate)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reached.wait(), stall)
        seen = arrived
        release.set()
        generator.stopping = True
        generator.pace.set("idle")
        await asyncio.wait(clients + list(generator.arrivals), timeout=2)
        for task in clients + list(generator.arrivals):
            task.cancel()
    return seen


def test_open_loop_arrivals_keep_coming_while_the_server_stalls():
    # 200/s: 30 arrivals in about 0.15 s, however long a busy machine takes to send them; a
    # client that waited for its answer would send 1.
    assert asyncio.run(arrivals_while_stalled({OPEN_LOOP.name: 1}, 200, 10.0, enough=30)) >= 30


@pytest.mark.parametrize("model", [WGET, KEEP_ALIVE])
def test_paced_clients_wait_for_their_answer_while_the_server_stalls(model):
    assert asyncio.run(arrivals_while_stalled({model.name: 2}, 200, 0.5)) == 2


def test_clients_of_each_model_spread_over_the_targets():
    async def scenario():
        async def answers(number, reader, writer):
            while True:
                await answer(reader, writer)

        async with Server(answers) as a, Server(answers) as b, Server(answers) as c:
            servers = (a, b, c)
            targets = tuple(f"127.0.0.1:{s.target.port}" for s in servers)
            generator = Generator(LoadConfig(targets, clients={WGET.name: 3, KEEP_ALIVE.name: 3}))
            clients = [asyncio.create_task(client) for client in generator.clients()]
            generator.pace.set("closed")
            while len(generator.records) < 60:
                await asyncio.sleep(0.01)
            generator.stopping = True
            generator.pace.set("idle")
            await asyncio.wait(clients, timeout=2)
        return [server.connections for server in servers]

    connections = asyncio.run(scenario())
    # Each server has one keep-alive client (one connection) and one wget client.
    assert all(count >= 2 for count in connections), connections


def test_load_targets_only_loopback_or_the_runs_own_namespaces():
    with pytest.raises(ValueError, match="loopback or the run's own namespaces only"):
        LoadConfig(("127.0.0.1:8080", "10.0.0.1:80"))
    # An address inside a network namespace a rehearsal made, reached from there.
    config = LoadConfig(("127.0.0.1:8080", "10.96.0.10:80@/proc/4242/ns/net"))
    assert Target.parse(config.targets[1]) == Target("10.96.0.10", 80, "/proc/4242/ns/net")


def test_think_times_straddle_the_drains_end_and_stay_within_the_apps_idle_timeout():
    env = {
        var["name"]: var.get("value")
        for var in variants.deployment(ROOT / "overlays/v2")["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    for model in (PYTHON_REQUESTS, GO_NET_HTTP):
        low, high = model.think_seconds
        assert low < float(env["DRAIN_SECONDS"]) < high, model.name
        # client < app: the app never closes an idle connection these clients are about to reuse
        assert high < float(env["KEEPALIVE_SECONDS"]), model.name
    assert profiles.HOSTILE[PYTHON_REQUESTS.name] > 0 and profiles.HOSTILE[GO_NET_HTTP.name] > 0


def test_the_hostile_mix_has_every_model_but_the_hpa_walkthroughs_load():
    """wget-loop is a load of its own (a closed loop at 100 requests/s per client whatever the
    rate), chosen with --traffic to drive the HPA, not a client of the hostile world."""
    assert set(profiles.HOSTILE) == set(profiles.MODELS) - {profiles.WGET_LOOP.name}
    assert all(model.source for model in profiles.MODELS.values())


def test_bursts_keep_the_mean_rate():
    bursts = OPEN_LOOP.bursts
    calm = bursts.calm_rate(100)
    fraction = bursts.burst_fraction
    assert calm * (1 - fraction) + calm * bursts.factor * fraction == pytest.approx(100)
    assert calm < 100


def test_the_rate_left_by_think_time_clients_is_shared_by_the_others():
    mix = {WGET.name: 2, PYTHON_REQUESTS.name: 50, OPEN_LOOP.name: 2}
    generator = Generator(LoadConfig(("127.0.0.1:1",), clients=mix))
    generator.pace.rate = 110  # 50 clients / 5 s mean think = 10/s of it
    assert generator.share() == pytest.approx(25)
    generator.pace.rate = 5
    assert generator.share() == 0


@pytest.mark.parametrize(
    ("spec", "mix"),
    [
        ("friendly", {"wget": 8, "keep-alive": 8}),
        ("hostile,open-loop=0", {**profiles.HOSTILE, "open-loop": 0}),
        ("wget=3, go-net-http=2", {"wget": 3, "go-net-http": 2}),
    ],
)
def test_traffic_option(spec, mix):
    assert profiles.parse_mix(spec) == mix


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("calm", "no mix 'calm'"),
        ("curl=3", "no client model 'curl'"),
        ("wget=three", "not an integer"),
        ("wget=0", "no clients"),
        ("wget=5000", "from 0 to 1000"),
    ],
)
def test_traffic_option_errors_name_the_option(spec, message):
    with pytest.raises(RehearsalError, match=f"--traffic: .*{message}"):
        profiles.parse_mix(spec)

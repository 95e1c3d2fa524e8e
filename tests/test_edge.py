"""The path from outside: the emulated ALB target group (in virtual time), the resolver that
hands its routing to the proxy, and the real proxy (Caddy) sending to real servers."""

import asyncio
import http.server
import random
import struct
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

from tests.emulation import run
from tools.exposure import Exposure, HealthCheck, read_exposure
from tools.kustomize import render_with_components
from tools.rehearsal.cluster.edge.caddy import CaddyProxy, ProxySettings
from tools.rehearsal.cluster.edge.dns import UpstreamResolver, answer
from tools.rehearsal.cluster.edge.proxy import CLOSED, LATE, EdgeProxy, cause
from tools.rehearsal.cluster.edge.targetgroup import TargetGroup, TargetState
from tools.rehearsal.cluster.network.lag import UniformLag
from tools.rehearsal.cluster.network.service import EmulatedService
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView
from tools.rehearsal.timeline import Timeline
from tools.repo import ROOT

GATE = "target-health.elbv2.k8s.aws/k8s-web"
CHECK = HealthCheck("/ready", "traffic-port", 5.0, 2.0, 2, 2)


@dataclass
class Template:
    readiness_gates: tuple[str, ...] = (GATE,)


@dataclass
class PodState:
    """What the controller reads of a pod, and the conditions it writes."""

    containers_ready: bool = True
    terminating: bool = False
    template: Template = field(default_factory=Template)
    conditions: list[tuple[float, bool]] = field(default_factory=list)

    def set_condition(self, condition: str, status: bool) -> None:
        assert condition == GATE
        if not self.conditions or self.conditions[-1][1] != status:
            self.conditions.append((asyncio.get_running_loop().time(), status))


def endpoint(pod: str, address: str, state: str = "not ready") -> Endpoint:
    return Endpoint(
        pod=pod,
        address=address,
        port=8080,
        ready=state == "ready",
        serving=state in ("ready", "serving"),
        terminating=state in ("serving", "terminating"),
    )


class Harness:
    """A target group over one view of the Service, with pods whose health checks answer as
    `healthy` says; `checks` counts the health checks each address got."""

    def __init__(self, alb_lag: float = 7.0, requeue: float = 15.0) -> None:
        self.timeline = Timeline(clock=asyncio.get_running_loop().time)
        self.view = EndpointView(self.timeline, UniformLag(0.0), random.Random(1))
        self.pods: dict[str, PodState] = {}
        self.healthy: dict[str, bool] = {}
        self.checks: dict[str, int] = {}
        self.group = TargetGroup(
            self.view,
            self.pods.get,
            CHECK,
            8080,
            deregistration_delay=55.0,
            alb_lag=UniformLag(alb_lag),
            rng=random.Random(2),
            timeline=self.timeline,
            gate=GATE,
            requeue=requeue,
            probe=self.probe,
        )
        self.view.on_apply = self.group.reconcile

    async def probe(self, address: str, port: int, path: str, timeout: float) -> bool:
        assert (port, path) == (8080, "/ready")
        self.checks[address] = self.checks.get(address, 0) + 1
        return self.healthy.get(address, False)

    def add(self, pod: str, address: str, state: str = "not ready") -> None:
        self.pods.setdefault(pod, PodState())
        self.healthy.setdefault(address, True)
        self.view.publish(pod, endpoint(pod, address, state))

    def routed(self) -> list[str]:
        return sorted(t.pod for t in self.group.routed())


async def until(condition, step: float = 0.1, limit: float = 120.0) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(step)
    return loop.time()


def test_a_new_target_is_routed_once_healthy_and_its_gate_opens_at_the_next_requeue():
    async def scenario():
        alb = Harness(requeue=15.0)
        alb.add("new", "127.0.0.2")  # containers ready, its gate still closed
        registered = asyncio.get_running_loop().time()
        await asyncio.sleep(0.001)  # the view applies it (lag 0)
        assert alb.group.targets["new"].state is TargetState.INITIAL
        assert alb.routed() == []  # initial: no request until its first verdict
        healthy = await until(lambda: alb.group.targets["new"].state is TargetState.HEALTHY)
        assert alb.routed() == ["new"]
        await asyncio.sleep(20)
        return registered, healthy, alb.pods["new"].conditions, alb.checks["127.0.0.2"]

    registered, healthy, conditions, checks = run(scenario())
    # Two passes, 5 s apart, the first within one interval of registering.
    assert CHECK.interval <= healthy - registered <= 2 * CHECK.interval + 0.2
    # Written False at registration; True only when the binding is reconciled again.
    assert conditions == [(registered, False), (pytest.approx(registered + 15.0), True)]
    assert checks >= 5  # it goes on being checked


def test_a_pod_whose_containers_are_not_ready_or_that_terminates_is_not_registered():
    async def scenario():
        alb = Harness()
        alb.pods["starting"] = PodState(containers_ready=False)
        alb.add("starting", "127.0.0.2")
        alb.add("leaving", "127.0.0.3", state="serving")  # terminating, still serving
        await asyncio.sleep(30)
        return alb.group.targets, alb.checks

    targets, checks = run(scenario())
    assert targets == {} and checks == {}


def test_a_deregistered_target_is_routed_for_the_alb_lag_then_never_checked_again():
    async def scenario():
        alb = Harness(alb_lag=7.0)
        alb.add("old", "127.0.0.2", state="ready")
        alb.add("other", "127.0.0.3", state="ready")
        await until(lambda: alb.routed() == ["old", "other"])
        alb.pods["old"].terminating = True
        alb.view.publish("old", endpoint("old", "127.0.0.2", "serving"))
        await asyncio.sleep(0.001)
        deregistered = asyncio.get_running_loop().time()
        assert alb.group.targets["old"].state is TargetState.DRAINING
        checks = alb.checks["127.0.0.2"]
        await asyncio.sleep(6.9)
        still = alb.routed()
        gone = await until(lambda: alb.routed() == ["other"], step=0.01)
        await asyncio.sleep(60)  # past the deregistration delay
        return deregistered, still, gone, checks, alb.checks["127.0.0.2"], alb.group.targets

    deregistered, still, gone, checks, checks_later, targets = run(scenario())
    assert still == ["old", "other"]  # the ALB's nodes have not learnt it yet
    assert gone - deregistered == pytest.approx(7.0, abs=0.02)
    assert checks_later == checks  # a draining target is not health-checked
    assert set(targets) == {"other"}  # forgotten after the deregistration delay


def test_an_unhealthy_target_is_not_routed_and_with_none_healthy_the_alb_fails_open():
    async def scenario():
        alb = Harness()
        alb.add("a", "127.0.0.2", state="ready")
        alb.add("b", "127.0.0.3", state="ready")
        await until(lambda: alb.routed() == ["a", "b"])
        alb.healthy["127.0.0.2"] = False
        await until(lambda: alb.group.targets["a"].state is TargetState.UNHEALTHY)
        one = alb.routed()
        alb.healthy["127.0.0.3"] = False
        await until(lambda: alb.group.targets["b"].state is TargetState.UNHEALTHY)
        return one, alb.routed()

    one, none_healthy = run(scenario())
    assert one == ["b"]
    assert none_healthy == ["a", "b"]


# -- the resolver ----------------------------------------------------------------------------


def query(name: str, qtype: int = 1, query_id: int = 7) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return (
        struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


def records(response: bytes) -> tuple[int, int, list[str]]:
    """(id, rcode, addresses) of a response to one question."""
    query_id, flags, _, count, _, _ = struct.unpack("!HHHHHH", response[:12])
    offset = 12
    while response[offset]:
        offset += 1 + response[offset]
    offset += 5
    addresses = []
    for _ in range(count):
        _, _, _, _, length = struct.unpack("!HHHIH", response[offset : offset + 12])
        addresses.append(".".join(str(b) for b in response[offset + 12 : offset + 12 + length]))
        offset += 12 + length
    return query_id, flags & 0xF, addresses


def test_the_resolver_answers_its_name_with_the_addresses_of_the_moment():
    name = "targets.edge.rehearsal."
    assert records(answer(query(name), name, ["127.0.0.2", "127.0.0.3"])) == (
        7,
        0,
        ["127.0.0.2", "127.0.0.3"],
    )
    assert records(answer(query(name, qtype=28), name, ["127.0.0.2"])) == (7, 0, [])  # AAAA
    assert records(answer(query("other.name."), name, ["127.0.0.2"]))[1] == 3  # NXDOMAIN


# -- the real proxy ----------------------------------------------------------------------------


class Named(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = self.server.server_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def servers():
    """Two real HTTP servers on their own loopback addresses, port 18181."""
    started = []
    for address in ("127.0.0.241", "127.0.0.242"):
        server = http.server.ThreadingHTTPServer((address, 18181), Named)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield [s.server_address[0] for s in started]
    for server in started:
        server.shutdown()
        server.server_close()


def test_caddy_sends_only_to_the_resolved_pods_and_never_retries_another(servers, tmp_path):
    """What the rehearsal relies on: the proxy learns its upstreams from the resolver within
    one refresh, without a reload; and a refused connection is a 502 with the cause in its log,
    not a retry on another pod (an ALB does not retry)."""
    routed = list(servers)

    async def scenario():
        resolver = UpstreamResolver("targets.edge.test", lambda: list(routed))
        port = await resolver.start()
        settings = ProxySettings("targets.edge.test.", 18181, f"127.0.0.1:{port}", 0.2, 60, 60, 5)
        proxy = CaddyProxy(settings, tmp_path)
        await proxy.start()

        def get() -> str:
            url = f"http://{proxy.entry_point}/status"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read().decode()
            except urllib.error.HTTPError as error:
                return str(error.code)

        try:
            both = {await asyncio.to_thread(get) for _ in range(8)}
            routed[:] = [servers[1]]
            await asyncio.sleep(0.5)
            one = {await asyncio.to_thread(get) for _ in range(8)}
            routed[:] = [servers[1], "127.0.0.243"]  # nothing listens there
            await asyncio.sleep(0.5)
            mixed = [await asyncio.to_thread(get) for _ in range(8)]
        finally:
            await proxy.stop()
            resolver.stop()
        return both, one, mixed, proxy.errors()

    both, one, mixed, errors = asyncio.run(scenario())
    assert both == set(servers)
    assert one == {servers[1]}
    assert mixed.count("502") == 4 and mixed.count(servers[1]) == 4  # round robin, no retry
    assert [e.upstream for e in errors] == ["127.0.0.243:18181"] * 4
    assert {cause(e) for e in errors} == {LATE}


def test_the_proxys_errors_are_told_by_cause():
    from tools.rehearsal.cluster.edge.caddy import ProxyError

    refused = ProxyError(0.0, 502, "dial tcp 127.0.0.5:8080: connect: connection refused", None)
    reset = ProxyError(0.0, 502, "read tcp 127.0.0.1:4->127.0.0.5:8080: connection reset", None)
    assert cause(refused) == LATE
    assert cause(reset) == cause(ProxyError(0.0, 502, "EOF", None)) == CLOSED


# -- the gateway's view ------------------------------------------------------------------------


def gateway_exposure() -> Exposure:
    """The repository's own: overlays/v2 with components/gateway-api."""
    return read_exposure(
        render_with_components(ROOT / "overlays/v2", [ROOT / "components/gateway-api"])
    )


def test_a_gateway_routes_to_what_its_own_late_view_has_ready_else_to_serving_terminating_pods(
    tmp_path,
):
    exposure = gateway_exposure()
    assert exposure.kind == "gateway"

    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        service = EmulatedService("web", timeline, [UniformLag(0.1)], random.Random(3))
        edge = EdgeProxy(
            exposure,
            service,
            {}.get,
            8080,
            timeline,
            random.Random(4),
            tmp_path,
            lag=UniformLag(2.0),
            alb_lag=UniformLag(0.0),
            requeue=15.0,
            refresh=0.5,
        )
        service.slices.pod_changed("a", endpoint("a", "127.0.0.2", "ready"))
        service.slices.pod_changed("b", endpoint("b", "127.0.0.3", "ready"))
        await asyncio.sleep(1.0)
        before = sorted(edge.routed())  # the kube-proxies know, the gateway not yet
        await asyncio.sleep(1.5)
        both = edge.addresses()
        service.slices.pod_changed("a", endpoint("a", "127.0.0.2", "serving"))
        service.slices.pod_changed("b", endpoint("b", "127.0.0.3", "serving"))
        await asyncio.sleep(2.5)
        fallback = sorted(edge.routed())
        service.slices.pod_changed("a", None)
        service.slices.pod_changed("b", None)
        await asyncio.sleep(2.2)
        just_removed = edge.reachable("a")  # within one refresh of the proxy's last lookup
        await asyncio.sleep(0.5)
        return before, both, fallback, just_removed, edge.reachable("a")

    before, both, fallback, just_removed, later = run(scenario())
    assert before == []
    assert both == ["127.0.0.2", "127.0.0.3"]
    assert fallback == ["a", "b"]  # no ready endpoint: the serving terminating ones
    assert just_removed and not later

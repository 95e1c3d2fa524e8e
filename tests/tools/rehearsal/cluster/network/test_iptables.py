"""A node's kube-proxy rules: what iptables.py writes from a view, and, as root on Linux, what
the kernel does with them in namespaces of the test's own (podnet.NamespaceNetwork)."""

import asyncio
import random
import socket
import sys

import pytest

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.conntrack import NewConnections
from tools.rehearsal.cluster.network.iptables import Proxier, ServicePort, restore_input
from tools.rehearsal.cluster.network.lag import UniformLag
from tools.rehearsal.cluster.network.podnet import NamespaceNetwork, cluster_ip
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView
from tools.rehearsal.timeline import Timeline

needs_namespaces = pytest.mark.skipif(
    netns.available() is not None, reason=f"no network namespaces: {netns.available()}"
)


def endpoint(pod: str, address: str, ready=True, terminating=False) -> Endpoint:
    return Endpoint(
        pod, address, 8000, ready, serving=ready or terminating, terminating=terminating
    )


async def view_of(*endpoints: Endpoint) -> EndpointView:
    view = EndpointView(Timeline(), UniformLag(0.0), random.Random(1))
    view.publish_all({e.pod: e for e in endpoints})
    await asyncio.sleep(0.01)  # the lag's timer
    return view


def rules_for(*endpoints: Endpoint) -> list[str]:
    async def build() -> str:
        view = await view_of(*endpoints)
        return restore_input([ServicePort("default/web:80", "10.96.0.10", 80, view)])

    return asyncio.run(build()).splitlines()


def test_each_endpoint_is_picked_with_the_probability_that_makes_the_choice_uniform():
    # kube-proxy's iptables proxier: the i-th of n endpoints with probability 1/(n-i), the last
    # without a match.
    rules = rules_for(*(endpoint(f"p{i}", f"10.244.1.{i}") for i in (2, 3, 4)))
    picks = [rule for rule in rules if rule.startswith("-A KUBE-SVC-")]
    assert ["--probability 0.3333333333" in picks[0], "--probability 0.5000000000" in picks[1]] == [
        True,
        True,
    ]
    assert "--probability" not in picks[2]
    dnat = [rule.rsplit(" ", 1)[1] for rule in rules if "DNAT" in rule]
    assert dnat == ["10.244.1.2:8000", "10.244.1.3:8000", "10.244.1.4:8000"]
    assert not [rule for rule in rules if "REJECT" in rule]


def test_terminating_endpoints_are_used_only_when_none_is_ready():
    rules = rules_for(
        endpoint("old", "10.244.1.2", ready=False, terminating=True),
        endpoint("new", "10.244.1.3"),
    )
    assert [rule.rsplit(" ", 1)[1] for rule in rules if "DNAT" in rule] == ["10.244.1.3:8000"]
    rules = rules_for(endpoint("old", "10.244.1.2", ready=False, terminating=True))
    assert [rule.rsplit(" ", 1)[1] for rule in rules if "DNAT" in rule] == ["10.244.1.2:8000"]


def test_a_service_without_endpoints_is_rejected():
    rules = rules_for(endpoint("starting", "10.244.1.2", ready=False))
    assert not [rule for rule in rules if "DNAT" in rule]
    (reject,) = [rule for rule in rules if "REJECT" in rule]
    assert "-d 10.96.0.10/32 -p tcp -m tcp --dport 80" in reject


async def connect_from(network: NamespaceNetwork, node: int, address: str, port: int):
    sock = netns.socket_in(network.node_netns(node))
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (address, port)), 5)
    except BaseException:
        sock.close()
        raise
    return sock


async def http_server_in(network: NamespaceNetwork, pod: str) -> asyncio.subprocess.Process:
    network.allocate(pod, 8000)
    sandbox = await network.sandbox(pod)
    with netns.preexec_in(sandbox.netns) as preexec:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "http.server",
            "8000",
            preexec_fn=preexec,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    while True:  # until it listens: its address answers from the cluster namespace
        try:
            _, writer = await asyncio.open_connection(sandbox.address, 8000)
            writer.close()
            return server
        except ConnectionRefusedError:
            await asyncio.sleep(0.02)


@needs_namespaces
def test_the_kernel_follows_the_rules_and_keeps_established_connections():
    async def scenario() -> None:
        network = NamespaceNetwork()
        await network.start(nodes=1)
        try:
            server = await http_server_in(network, "web-1")
            view = EndpointView(Timeline(), UniformLag(0.0), random.Random(1))
            proxier = Proxier(network, 0)
            proxier.add(ServicePort("default/web:80", cluster_ip(0), 80, view))
            view.on_apply = proxier.changed
            await proxier.start()
            events = NewConnections(network.node_netns(0))
            events.start()
            # No endpoint: the filter table's REJECT refuses the connect; conntrack never
            # records it.
            with pytest.raises(ConnectionRefusedError):
                await connect_from(network, 0, cluster_ip(0), 80)

            pod = endpoint("web-1", network.addresses["web-1"])
            view.publish("web-1", pod)
            while not (view.ready and proxier.in_sync):
                await asyncio.sleep(0.01)
            kept = await connect_from(network, 0, cluster_ip(0), 80)
            kept_port = kept.getsockname()[1]

            view.publish("web-1", None)  # the endpoint leaves the node's rules
            while view.ready or not proxier.in_sync:
                await asyncio.sleep(0.01)
            with pytest.raises(ConnectionRefusedError):
                await connect_from(network, 0, cluster_ip(0), 80)
            # conntrack keeps the established connection on its pod.
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(kept, b"GET / HTTP/1.0\r\n\r\n")
            answer = await asyncio.wait_for(loop.sock_recv(kept, 64), 5)
            assert answer.startswith(b"HTTP/1.0 200")
            kept.close()
            # The pod stops listening while the node's rules still send to it: refused by the
            # pod, and conntrack's event says where the NAT sent it.
            server.kill()
            await server.wait()
            view.publish("web-1", pod)
            while not (view.ready and proxier.in_sync):
                await asyncio.sleep(0.01)
            refused = netns.socket_in(network.node_netns(0))
            refused.bind(("0.0.0.0", 0))
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(refused, (cluster_ip(0), 80))
            events.read()
            pod_ip = network.addresses["web-1"]
            assert events.destinations[(kept_port, cluster_ip(0))] == pod_ip
            assert events.destinations[(refused.getsockname()[1], cluster_ip(0))] == pod_ip
            assert len(events.destinations) == 2  # not the REJECTed one
            refused.close()
            events.stop()
            await proxier.stop()
        finally:
            await network.stop()

    asyncio.run(scenario())


@needs_namespaces
def test_the_pod_network_is_not_on_the_hosts_own_links():
    before = socket.if_nameindex()

    async def scenario() -> list:
        network = NamespaceNetwork()
        await network.start(nodes=2)
        try:
            network.allocate("p", 8000)
            await network.sandbox("p")
            # The rehearsal's thread works in the cluster namespace meanwhile...
            inside = socket.if_nameindex()
        finally:
            await network.stop()
        return inside

    inside = asyncio.run(scenario())
    assert {name for _, name in inside} >= {"lo", "cni0"}
    # ...and the host's own namespace has no link of the pod network, before or after.
    assert socket.if_nameindex() == before
    assert "cni0" not in {name for _, name in before}

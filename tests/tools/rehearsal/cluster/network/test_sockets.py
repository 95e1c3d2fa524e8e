"""What the rehearsal reads of a namespace's TCP sockets (sock_diag), and the TCP table each of
its namespaces gets."""

import asyncio
import socket

import pytest

from tools.rehearsal.cluster.network import netns, sockets
from tools.rehearsal.cluster.network.podnet import CHILD_TCP_TABLE, NamespaceNetwork

needs_namespaces = pytest.mark.skipif(
    netns.available() is not None, reason=f"no network namespaces: {netns.available()}"
)


def test_listeners_and_open_connections_are_read_by_port_and_address():
    server = socket.create_server(("127.0.0.7", 0))
    port = server.getsockname()[1]
    wildcard = socket.create_server(("::", 0), family=socket.AF_INET6)
    client = socket.create_connection(("127.0.0.7", port))
    accepted, _ = server.accept()
    try:
        assert sockets.listening(None, "127.0.0.7", port)
        assert not sockets.listening(None, "127.0.0.8", port)
        # [::] takes IPv4 connections on every address too
        assert sockets.listening(None, "10.1.2.3", wildcard.getsockname()[1])
        assert sockets.connections_to(None, port) == 1
        assert sockets.connections_to(None, port, ignore="127.0.0.1") == 0  # the client's
        server.close()
        assert not sockets.listening(None, "127.0.0.7", port)
        assert sockets.connections_to(None, port) == 1  # established stays
    finally:
        for sock in (server, wildcard, client, accepted):
            sock.close()


def test_a_namespace_that_is_gone_has_no_socket():
    assert sockets.tcp_sockets("/proc/0/ns/net", (sockets.LISTEN,)) == []


@needs_namespaces
def test_a_pods_server_is_seen_listening_in_its_namespace_which_has_a_tcp_table_of_its_own():
    async def scenario():
        network = NamespaceNetwork()
        await network.start(nodes=1)
        try:
            address = network.allocate("p", 8000)
            sandbox = await network.sandbox("p")
            with netns.preexec_in(sandbox.netns) as preexec:
                sysctl = await asyncio.create_subprocess_exec(
                    "sysctl", "-n", "net.ipv4.tcp_max_tw_buckets",
                    preexec_fn=preexec, stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
            time_wait_slots = int((await sysctl.communicate())[0])
            seen = [network.listening("p", address, 8000)]
            with netns.entered(sandbox.netns):
                server = socket.create_server(("0.0.0.0", 8000))
            seen.append(network.listening("p", address, 8000))
            server.close()
            seen.append(network.listening("p", address, 8000))
            await network.remove("p")
            seen.append(network.listening("p", address, 8000))
            return time_wait_slots, seen
        finally:
            await network.stop()

    time_wait_slots, seen = asyncio.run(scenario())
    # The kernel sizes a namespace's TIME_WAIT limit from its own table (half of it); sharing
    # the host's 262 144-bucket one, every read of its sockets walked them all.
    assert time_wait_slots == CHILD_TCP_TABLE // 2
    assert seen == [False, True, False, False]

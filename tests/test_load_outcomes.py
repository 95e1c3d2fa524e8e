"""Every way a request can fail is named for what happened, each produced here for real.

The rehearsal's load generator (tools/rehearsal/traffic/load.py) runs against tiny servers
on loopback that refuse, reset, cut an answer short, never answer, or answer HTTP 500.
"""

import asyncio
import contextlib
import socket
import struct

import pytest

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.podnet import ip
from tools.rehearsal.traffic import profiles
from tools.rehearsal.traffic.load import Generator, LoadConfig, Target
from tools.rehearsal.traffic.outcomes import (
    CUT_MID_RESPONSE,
    OK,
    REFUSED,
    RESET_BEFORE_ANSWER,
    TIMEOUT,
    UNREACHABLE,
    RequestRecord,
)

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-App-Version: v9\r\n\r\nOK v9\n"


def rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def answer_ok(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()
    writer.close()


async def reset_at_once(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    rst(writer)


async def close_at_once(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def cut_mid_answer(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER[:20])
    await writer.drain()
    await asyncio.sleep(0.05)
    rst(writer)


async def never_answer(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(5)


async def answer_500(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    writer.close()


async def one_request(handler) -> tuple[str, str, int]:
    """Start `handler` as a server (None: nothing listens), send one request, return the
    outcome, the version and the recorded client port."""
    server = None
    if handler is None:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    else:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    generator = Generator(LoadConfig((f"127.0.0.1:{port}",), request_timeout=0.5))
    try:
        await generator.request(profiles.WGET, Target("127.0.0.1", port), None)
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
    (record,) = generator.records
    return record.outcome, record.version, record.port


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (answer_ok, OK),
        (None, REFUSED),
        (reset_at_once, RESET_BEFORE_ANSWER),
        (close_at_once, RESET_BEFORE_ANSWER),
        (cut_mid_answer, CUT_MID_RESPONSE),
        (never_answer, TIMEOUT),
        (answer_500, "http 500"),
    ],
)
def test_each_outcome_is_named_for_what_happened(handler, expected):
    outcome, version, port = asyncio.run(one_request(handler))
    assert outcome == expected
    assert version == ("v9" if expected == OK else "")
    # The client's port finds the connection in the Service's records, even one that never
    # got through the handshake.
    assert port != 0


def test_a_kept_alive_connection_is_reused_until_the_server_says_close():
    async def twice(reader, writer):
        for closing in (b"", b"Connection: close\r\n"):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER.replace(b"\r\n\r\n", b"\r\n" + closing + b"\r\n", 1))
            await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(twice, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        generator = Generator(LoadConfig((f"127.0.0.1:{port}",)))
        target = Target("127.0.0.1", port)
        first = await generator.request(profiles.KEEP_ALIVE, target, None)
        second = await generator.request(profiles.KEEP_ALIVE, target, first)
        server.close()
        return generator.records, first, second

    records, first, second = asyncio.run(scenario())
    assert [(r.outcome, r.client, r.reused) for r in records] == [
        (OK, "keep-alive", False),
        (OK, "keep-alive", True),
    ]
    assert first is not None and second is None  # dropped once the server said close
    assert records[0].port == records[1].port != 0


@pytest.mark.skipif(netns.available() is not None, reason=f"{netns.available()}")
def test_an_address_no_host_answers_is_unreachable():
    """What a node's client meets once a pod is gone: its address is on the link, but no one
    answers the ARP for it, and the kernel reports "no route to host"."""

    async def scenario() -> RequestRecord:
        namespace = await netns.create("unreachable")
        try:
            await ip(
                namespace,
                "link set lo up",  # the kernel's ICMP error comes back to the client through it
                "link add eth0 type veth peer name nobody",
                "addr add 10.9.0.1/24 dev eth0",
                "link set nobody up",
                "link set eth0 up",
            )
            with netns.entered(namespace.path):  # one ARP request, unanswered after 0.1 s
                for setting, value in (("mcast_solicit", 1), ("retrans_time_ms", 100)):
                    with open(f"/proc/sys/net/ipv4/neigh/eth0/{setting}", "w") as file:
                        file.write(str(value))
            target = f"10.9.0.2:80@{namespace.path}"
            generator = Generator(LoadConfig((target,), request_timeout=5))
            await generator.request(profiles.WGET, Target.parse(target), None)
        finally:
            await namespace.close()
        return generator.records[0]

    record = asyncio.run(scenario())
    assert record.outcome == UNREACHABLE
    assert record.latency < 5  # reported by the kernel, before the request timeout

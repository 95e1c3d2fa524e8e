"""One probe attempt of each kind the manifests allow (tools/rehearsal/cluster/node/probes.py),
as the kubelet makes it: httpGet succeeds on 200-399 within its timeout, tcpSocket when the port
accepts a connection, exec when the command exits 0 in the container within its timeout."""

import asyncio
import contextlib
import sys

import pytest

from tools.rehearsal.cluster.node.probes import attempt
from tools.rehearsal.cluster.node.runtime import ContainerCgroups, ProcessContainer, spawn
from tools.rehearsal.manifests.pod import Probe


def probe(action: str, port: int = 0, path: str = "/", command: tuple = (), timeout=1.0):
    return Probe(
        kind="readiness",
        action=action,
        port=port,
        path=path,
        command=command,
        initial_delay=0,
        period=1,
        timeout=timeout,
    )


async def server(status: int | None) -> asyncio.AbstractServer:
    """Answers every request with `status`; None: reads it and never answers."""

    async def handle(reader, writer):
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            if status is None:
                await asyncio.sleep(30)
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def port_of(listening: asyncio.AbstractServer) -> int:
    return listening.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    "status, ok", [(200, True), (302, True), (399, True), (404, False), (503, False)]
)
def test_http_get_succeeds_on_200_to_399(status, ok):
    async def scenario():
        async with await server(status) as listening:
            return await attempt(probe("http", port_of(listening)), "127.0.0.1", None)

    assert asyncio.run(scenario()) is ok


def test_http_get_fails_when_no_answer_comes_within_the_timeout():
    async def scenario():
        async with await server(None) as listening:
            loop = asyncio.get_running_loop()
            began = loop.time()
            ok = await attempt(probe("http", port_of(listening), timeout=1), "127.0.0.1", None)
            return ok, loop.time() - began

    ok, took = asyncio.run(scenario())
    assert not ok and 1.0 <= took < 3.0


def test_tcp_socket_succeeds_when_the_port_accepts_and_fails_when_refused():
    async def scenario():
        async with await server(200) as listening:
            port = port_of(listening)
            accepted = await attempt(probe("tcp", port), "127.0.0.1", None)
        refused = await attempt(probe("tcp", port), "127.0.0.1", None)
        return accepted, refused

    assert asyncio.run(scenario()) == (True, False)


@pytest.mark.parametrize(
    "command, ok",
    [
        (("true",), True),
        (("false",), False),
        (("sh", "-c", "exit 3"), False),
        (("sleep", "5"), False),  # outlives the 1 s timeout: killed, a failure
    ],
)
def test_exec_succeeds_when_the_command_exits_0_in_the_container_within_the_timeout(command, ok):
    async def scenario():
        process = await spawn(
            (sys.executable, "-c", "import time; time.sleep(30)"), (), start_new_session=True
        )
        container = ProcessContainer(process, {}, ContainerCgroups(), 0.0)
        try:
            return await attempt(probe("exec", command=command), "127.0.0.1", container)
        finally:
            await container.kill()
            await container.wait()

    assert asyncio.run(scenario()) is ok

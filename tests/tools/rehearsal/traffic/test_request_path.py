"""The load's request (`--path`, `--expect-status`; tools/rehearsal/traffic/load.py): each client
asks for the path given, and an answer counts as ok only with the status expected."""

import asyncio

import pytest

from tests.test_traffic_profiles import Server
from tools.rehearsal.traffic.outcomes import OK
from tools.rehearsal.traffic.profiles import WGET


def answering(status: int, seen: list[bytes]):
    async def handler(number, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()

    return handler


@pytest.mark.parametrize(
    "status, expected, outcome",
    [
        (200, 200, OK),
        (204, 204, OK),  # e.g. a health endpoint answering no content
        (204, 200, "http 204"),
        (404, 200, "http 404"),
        (200, 204, "http 200"),
    ],
)
def test_the_path_asked_and_the_status_expected(status, expected, outcome):
    seen: list[bytes] = []

    async def scenario():
        async with Server(answering(status, seen)) as server:
            generator = server.generator(path="/healthz?probe=1", expect_status=expected)
            await generator.request(WGET, server.target, None)
        return generator.records

    (record,) = asyncio.run(scenario())
    assert seen == [b"GET /healthz?probe=1 HTTP/1.1"]
    assert record.outcome == outcome

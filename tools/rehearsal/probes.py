"""One probe attempt, as the kubelet makes it: httpGet, tcpSocket or exec."""

import asyncio
from typing import TYPE_CHECKING

from tools.rehearsal import httpclient
from tools.rehearsal.spec import Probe

if TYPE_CHECKING:
    from tools.rehearsal.runtime import Container


async def attempt(probe: Probe, address: str, container: "Container") -> bool:
    """True when the probe succeeds within its timeout."""
    try:
        if probe.action == "http":
            response = await httpclient.get(
                address, probe.port, probe.path, probe.timeout, probe.headers
            )
            return 200 <= response.status < 400
        if probe.action == "tcp":
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(address, probe.port), probe.timeout
            )
            writer.close()
            return True
        return await container.exec(probe.command, probe.timeout) == 0
    except (
        OSError,
        TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ValueError,
    ):
        return False

"""One probe attempt, as the kubelet makes it: httpGet, tcpSocket or exec."""

import asyncio

from tools.rehearsal.cluster.node.container import Container
from tools.rehearsal.manifests.pod import Probe
from tools.rehearsal.traffic import httpclient


async def attempt(probe: Probe, address: str, container: Container) -> bool:
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

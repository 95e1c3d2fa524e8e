"""One node's Service rules, emulated like kube-proxy: a TCP proxy on a loopback address.

Each NEW connection goes to a ready endpoint picked at random from the node's own view; only
when none is ready does it fall back to serving-but-terminating endpoints. Established
connections stay where they are, whatever happens to the endpoint. Endpoint changes reach the
view late (view.py, lag.py), like EndpointSlice updates reaching kube-proxy and the iptables
rules on that node; every node has its own proxy (service.py).
"""

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from dataclasses import dataclass

from tools.rehearsal.cluster.network.view import Endpoint, EndpointView

CLOSED_BY_NO_ENDPOINT = "Service (no endpoint)"
CLOSED_BY_CONNECT_FAILED = "Service (connect to the pod failed)"


@dataclass
class ConnectionTrace:
    """One client connection through the Service, as the proxy saw it (times: run seconds)."""

    client_port: int
    accepted: float
    pod: str = ""  # the endpoint picked; "" when there was none
    address: str = ""
    connect_started: float | None = None
    connected: float | None = None
    connect_error: str = ""
    first_byte: float | None = None  # the first byte from the pod
    bytes_to_pod: int = 0
    bytes_to_client: int = 0
    closed: float | None = None
    closed_by: str = ""  # client, pod, pod (reset), or one of the CLOSED_BY_ constants
    node: int = 0  # the node whose proxy accepted it

    def close(self, at: float, by: str) -> None:
        if self.closed is None:
            self.closed, self.closed_by = at, by


def reset(transport: asyncio.Transport) -> None:
    """Close with RST, as a client sees a connection to a dead or absent backend."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Upstream(asyncio.Protocol):
    def __init__(self, client: "_Client") -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.client.upstream_made(transport)

    def data_received(self, data: bytes) -> None:
        trace = self.client.trace
        if trace.first_byte is None:
            trace.first_byte = self.client.proxy.now()
        trace.bytes_to_client += len(data)
        self.client.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


class _Client(asyncio.Protocol):
    def __init__(self, proxy: "ServiceProxy") -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.endpoint: Endpoint | None = None
        self.counted = False  # this connection is in proxy.open
        self.closed = False
        self.trace: ConnectionTrace | None = None
        self.connecting: asyncio.Task | None = None  # held: the loop keeps only weak references

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.trace = ConnectionTrace(
            peer[1] if peer else 0, self.proxy.now(), node=self.proxy.view.node
        )
        self.proxy.traces.append(self.trace)
        endpoint = self.proxy.view.pick()
        if endpoint is None:
            self.proxy.no_endpoint += 1
            self.trace.close(self.proxy.now(), CLOSED_BY_NO_ENDPOINT)
            reset(transport)
            return
        self.endpoint = endpoint
        self.trace.pod, self.trace.address = endpoint.pod, endpoint.address
        transport.pause_reading()  # until the backend connection exists
        self.connecting = asyncio.get_running_loop().create_task(self._connect(endpoint))

    async def _connect(self, endpoint: Endpoint) -> None:
        loop = asyncio.get_running_loop()
        self.trace.connect_started = self.proxy.now()
        try:
            await loop.create_connection(lambda: _Upstream(self), endpoint.address, endpoint.port)
        except OSError as error:
            self.trace.connect_error = type(error).__name__
            self.proxy.backend_failed[endpoint.pod] += 1
            if not self.closed:
                self.trace.close(self.proxy.now(), CLOSED_BY_CONNECT_FAILED)
                reset(self.transport)

    def upstream_made(self, transport: asyncio.BaseTransport) -> None:
        self.trace.connected = self.proxy.now()
        if self.closed:
            transport.close()
            return
        self.upstream = transport
        self.counted = True
        self.proxy.open[self.endpoint.pod] += 1
        self.proxy.connections[self.endpoint.pod] += 1
        self.transport.resume_reading()

    def upstream_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.proxy.open[self.endpoint.pod] -= 1
            self.counted = False
        self.upstream = None
        if not self.closed:
            self.trace.close(self.proxy.now(), "pod" if exc is None else "pod (reset)")
            if exc is None:
                self.transport.close()
            else:
                reset(self.transport)

    def data_received(self, data: bytes) -> None:
        self.trace.bytes_to_pod += len(data)
        if self.upstream is not None:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.trace.close(self.proxy.now(), "client")
        self.closed = True
        if self.upstream is not None:
            self.upstream.close()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()


class ServiceProxy:
    """Listens on a loopback address; splices every accepted connection to one endpoint."""

    def __init__(self, view: EndpointView, host: str = "127.0.0.1") -> None:
        self.view = view
        self.host = host
        self.port = 0
        self.server: asyncio.AbstractServer | None = None
        self.connections: Counter[str] = Counter()  # accepted, per pod
        self.open: Counter[str] = Counter()  # currently established, per pod
        self.backend_failed: Counter[str] = Counter()
        self.no_endpoint = 0
        self.traces: list[ConnectionTrace] = []  # every accepted connection, in order

    def now(self) -> float:
        return self.view.timeline.now()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Client(self), self.host, 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def reachable(self, pod: str) -> bool:
        """Can a request still reach this pod (new connection or established one)?"""
        return self.view.routable(pod) or self.open[pod] > 0

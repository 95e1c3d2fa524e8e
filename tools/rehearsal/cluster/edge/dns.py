"""The proxy's upstream list, served as DNS A records.

HAProxy's `resolvers` section and `server-template` (haproxy.py) ask for one name once per
`refresh` and fill a server slot with each address of the answer; pointed at this resolver,
the proxy learns the pods it may send to without a reload (a reload would start new processes
and drop the pool of kept-alive connections to the pods, which neither a gateway's xDS update
nor an ALB does). Only what that lookup needs is answered: A queries for one name; AAAA and
anything else get no record, other names NXDOMAIN (RFC 1035 section 4.1).
"""

import asyncio
import ipaddress
import struct
from collections.abc import Callable

TYPE_A, CLASS_IN = 1, 1
FLAGS_ANSWER = 0x8400  # QR (a response), AA (authoritative); RCODE below
RCODE_NXDOMAIN = 3


def question_end(packet: bytes) -> int:
    """The offset just past the question's QNAME, QTYPE and QCLASS."""
    offset = 12
    while packet[offset]:
        offset += 1 + packet[offset]
    return offset + 5


def qname(packet: bytes) -> str:
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels).lower() + "."


def answer(packet: bytes, name: str, addresses: list[str]) -> bytes:
    """The response to one query: A records of `addresses` if it asks for `name`'s."""
    end = question_end(packet)
    (query_id,) = struct.unpack("!H", packet[:2])
    (qtype, qclass) = struct.unpack("!HH", packet[end - 4 : end])
    if qname(packet) != name:
        header = struct.pack("!HHHHHH", query_id, FLAGS_ANSWER | RCODE_NXDOMAIN, 1, 0, 0, 0)
        return header + packet[12:end]
    records = addresses if (qtype, qclass) == (TYPE_A, CLASS_IN) else []
    header = struct.pack("!HHHHHH", query_id, FLAGS_ANSWER, 1, len(records), 0, 0)
    body = b"".join(
        # The name as a pointer to the question's (0xC00C), class IN, TTL 0, 4 bytes of address.
        struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, 0, 4) + ipaddress.IPv4Address(a).packed
        for a in records
    )
    return header + packet[12:end] + body


class UpstreamResolver(asyncio.DatagramProtocol):
    """Answers `name` with the addresses `current()` returns at the moment of each query."""

    def __init__(self, name: str, current: Callable[[], list[str]]) -> None:
        self.name = name if name.endswith(".") else name + "."
        self.current = current
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            response = answer(data, self.name, self.current())
        except (IndexError, struct.error):
            return  # not a query this resolver understands: no answer, as a lost datagram
        self.queries += 1
        self.transport.sendto(response, addr)

    async def start(self, host: str = "127.0.0.1") -> int:
        """Listen on a free UDP port of `host`; returns the port."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        return self.transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.close()

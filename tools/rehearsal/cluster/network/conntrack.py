"""Where a node's NAT sends each new connection, as the kernel reports it: conntrack's NEW events
of the node's namespace, read from netlink (what `conntrack -E -e NEW` prints).

The event comes when a connection's first packet leaves the node, so even a connection that the
pod then refuses is reported (the conntrack table forgets an unanswered SYN's entry as soon as
the RST comes back); a connection the node's rules REJECT never gets an entry, nor an event.

The messages are nfnetlink's (linux include/uapi/linux/netfilter/nfnetlink_conntrack.h): after
the netlink and nfgenmsg headers, attributes CTA_TUPLE_ORIG and CTA_TUPLE_REPLY, each holding
CTA_TUPLE_IP (CTA_IP_V4_SRC, CTA_IP_V4_DST) and CTA_TUPLE_PROTO (CTA_PROTO_SRC_PORT, ...).
"""

import asyncio
import errno
import socket
import struct

from tools.rehearsal.cluster.network import netlink, netns

NETLINK_NETFILTER = 12
NF_NETLINK_CONNTRACK_NEW = 1  # the multicast group of NEW events
SO_RCVBUFFORCE = 33
RECEIVE_BUFFER = 16 << 20  # a burst of new connections is not lost while the loop is busy
NFGENMSG_SIZE = 4
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY = 1, 2
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 2, 3
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER


def attributes(data: bytes) -> dict[int, bytes]:
    """A run of netlink attributes, by type."""
    found, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def tuple_of(data: bytes) -> tuple[str, str, int, int] | None:
    """(source, destination, source port, destination port) of a CTA_TUPLE_ attribute."""
    parts = attributes(data)
    addresses, ports = (
        attributes(parts.get(CTA_TUPLE_IP, b"")),
        attributes(parts.get(CTA_TUPLE_PROTO, b"")),
    )
    try:
        return (
            socket.inet_ntoa(addresses[CTA_IP_V4_SRC]),
            socket.inet_ntoa(addresses[CTA_IP_V4_DST]),
            struct.unpack("!H", ports[CTA_PROTO_SRC_PORT])[0],
            struct.unpack("!H", ports[CTA_PROTO_DST_PORT])[0],
        )
    except (KeyError, OSError, struct.error):
        return None


def new_connections(message: bytes) -> list[tuple[tuple[int, str], str]]:
    """((client port, original destination), the reply's source: where the NAT sent it) of every
    conntrack event in one netlink read."""
    found = []
    for _, payload in netlink.messages(message):
        body = attributes(payload[NFGENMSG_SIZE:])
        original = tuple_of(body.get(CTA_TUPLE_ORIG, b""))
        reply = tuple_of(body.get(CTA_TUPLE_REPLY, b""))
        if original and reply:
            found.append(((original[2], original[1]), reply[0]))
    return found


class NewConnections:
    """The NEW conntrack events of one namespace, from when `start` is called: the pod IP each
    connection was sent to, by (client port, original destination)."""

    def __init__(self, netns_path: str) -> None:
        self.netns_path = netns_path
        self.sock: socket.socket | None = None
        self.destinations: dict[tuple[int, str], str] = {}
        self.lost = False  # the receive buffer overflowed: some events never arrived

    def start(self) -> None:
        with netns.entered(self.netns_path):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        sock.bind((0, NF_NETLINK_CONNTRACK_NEW))
        sock.setblocking(False)
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self.read)

    def read(self) -> None:
        while self.sock is not None:
            try:
                message = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno != errno.ENOBUFS:
                    raise
                self.lost = True  # events were dropped: the next read goes on after them
                continue
            self.destinations.update(new_connections(message))

    def forget(self, port: int, destination: str) -> None:
        """A new connection is about to use this client port: an earlier one's destination
        must not stand for it (a REJECTed connect has no event of its own)."""
        self.destinations.pop((port, destination), None)

    def stop(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

"""What the kernel knows of a namespace's connections: its TCP sockets, read as `ss` reads them
(whether a server still listens, how many clients a terminating pod still has), and a node's
conntrack table (which pod its NAT sent a connection to).

The sockets come from netlink's sock_diag (linux include/uapi/linux/inet_diag.h,
net/ipv4/inet_diag.c), which filters by state in the kernel: asking for listeners alone never
walks the table of established connections, as reading /proc/net/tcp does every time.
"""

import contextlib
import os
import socket
import struct
from dataclasses import dataclass

from tools.rehearsal.cluster.network import netlink, netns

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
# inet_diag_req_v2: family, protocol, extensions, pad, states; then its inet_diag_sockid:
# source and destination ports (network order), addresses, interface, cookie.
DIAG_REQUEST = struct.Struct("=BBBBI")
SOCKET_ID = struct.Struct("!HH16s16s")
SOCKET_ID_SIZE = 48
DIAG_MESSAGE_HEAD = 4  # inet_diag_msg: family, state, timer, retransmits; then the socket id

# include/net/tcp_states.h
ESTABLISHED, SYN_RECV, CLOSE_WAIT, LISTEN = 1, 3, 8, 10
# States that can still carry a request to the server or its answer back (CLOSE_WAIT: the client
# closed its side).
OPEN_STATES = (ESTABLISHED, SYN_RECV, CLOSE_WAIT)


@dataclass(frozen=True)
class TcpSocket:
    state: int
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int


def address_text(family: int, packed: bytes) -> str:
    """An address of a socket id. An IPv4-mapped IPv6 address reads as IPv4, the IPv6 wildcard as
    0.0.0.0: a server on [::]:PORT takes IPv4 connections too."""
    if family == socket.AF_INET:
        return socket.inet_ntoa(packed[:4])
    text = socket.inet_ntop(socket.AF_INET6, packed)
    if text.startswith("::ffff:") and "." in text:
        text = text.removeprefix("::ffff:")
    return "0.0.0.0" if text == "::" else text


def request(family: int, states: int, local_port: int) -> bytes:
    body = DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, states)
    body += struct.pack("!HH", local_port, 0) + bytes(SOCKET_ID_SIZE - 4)
    flags = NLM_F_REQUEST | NLM_F_DUMP
    header = netlink.HEADER.pack(netlink.HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, flags, 1, 0)
    return header + body


def answers(sock: socket.socket) -> list[TcpSocket]:
    """The sockets of one dump, read until its NLMSG_DONE."""
    found = []
    while True:
        for kind, payload in netlink.messages(sock.recv(1 << 16)):
            if kind == netlink.DONE:
                return found
            if kind == netlink.ERROR:
                error = -struct.unpack_from("=i", payload)[0]
                raise OSError(error, f"sock_diag: {os.strerror(error)}")
            family, state = payload[0], payload[1]
            local_port, remote_port, local, remote = SOCKET_ID.unpack_from(
                payload, DIAG_MESSAGE_HEAD
            )
            found.append(
                TcpSocket(
                    state,
                    address_text(family, local),
                    local_port,
                    address_text(family, remote),
                    remote_port,
                )
            )


def tcp_sockets(
    netns_path: str | None, states: tuple[int, ...], local_port: int = 0
) -> list[TcpSocket]:
    """The TCP sockets, IPv4 and IPv6, in `states` of the namespace at `netns_path` (None: the
    caller's own), on `local_port` if given. Empty when the namespace is gone."""
    mask = sum(1 << state for state in set(states))
    try:
        with netns.entered(netns_path) if netns_path else contextlib.nullcontext():
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except FileNotFoundError:
        return []
    with sock:
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            sock.send(request(family, mask, local_port))
            found += answers(sock)
    return found


def listening(netns_path: str | None, address: str, port: int) -> bool:
    """Whether a socket listens on `port` at `address` (or on every address) in the namespace."""
    return any(
        s.local_address in (address, "0.0.0.0") for s in tcp_sockets(netns_path, (LISTEN,), port)
    )


def connections_to(netns_path: str | None, port: int, ignore: str = "") -> int:
    """Open connections to `port` in the namespace, but those from the address `ignore` (the
    control plane's probes)."""
    return sum(s.remote_address != ignore for s in tcp_sockets(netns_path, OPEN_STATES, port))


def dnat_destinations(table: str, connections: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """For each (client port, ClusterIP) in `connections`, the pod IP the node's NAT sent that
    connection to: the reply's source in the conntrack `table` file (a connection absent from
    it was never made, e.g. REJECTed, or has been forgotten after its timeout)."""
    try:
        with open(table) as entries:
            lines = entries.read().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        # The original direction's fields first, then the reply's.
        fields: dict[str, list[str]] = {key: [] for key in ("src", "dst", "sport")}
        for token in line.split():
            key, sep, value = token.partition("=")
            if sep and key in fields:
                fields[key].append(value)
        if len(fields["src"]) != 2 or len(fields["sport"]) != 2:
            continue
        key = (int(fields["sport"][0]), fields["dst"][0])
        if key in connections:
            found[key] = fields["src"][1]
    return found

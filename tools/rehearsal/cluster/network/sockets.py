"""What the kernel knows of a namespace's connections: its socket tables (/proc/net/tcp and
tcp6, as `ss` reads them: whether a server still listens, how many clients a terminating pod
still has) and a node's conntrack table (which pod its NAT sent a connection to)."""

import socket
import struct

from tools.rehearsal.cluster.network.netns import Namespace

# Connection states that can still carry a request to the server or its answer back
# (include/net/tcp_states.h): ESTABLISHED, SYN_RECV, CLOSE_WAIT (the client closed its side).
OPEN_STATES = {"01", "03", "08"}


def address_of(hex_address: str) -> tuple[str, int]:
    """An address of /proc/net/tcp or tcp6 ("0100007F:1F90": IPv4 as a little-endian word, or
    IPv6 as four of them, then the port). An IPv4-mapped IPv6 address reads as IPv4, the IPv6
    wildcard as 0.0.0.0: a server on [::]:PORT takes IPv4 connections too."""
    host, port = hex_address.split(":")
    if len(host) == 8:
        return socket.inet_ntoa(struct.pack("<I", int(host, 16))), int(port, 16)
    packed = b"".join(struct.pack("<I", int(host[i : i + 8], 16)) for i in range(0, 32, 8))
    text = socket.inet_ntop(socket.AF_INET6, packed)
    if text.startswith("::ffff:") and "." in text:
        text = text.removeprefix("::ffff:")
    return ("0.0.0.0" if text == "::" else text), int(port, 16)


def socket_lines(table: str) -> list[list[str]]:
    """The rows of a socket table file (.../net/tcp) and of its IPv6 twin (.../net/tcp6)."""
    rows = []
    for path in (table, table + "6"):
        try:
            with open(path) as entries:
                rows += [line.split() for line in entries.read().splitlines()[1:]]
        except OSError:  # the namespace is gone, or no IPv6
            continue
    return rows


LISTEN = "0A"


def listening(table: str, address: str, port: int) -> bool:
    """Whether a socket listens on `port` at `address` (or on every address) in the socket
    table file `table` (a namespace's /proc/PID/net/tcp)."""
    for fields in socket_lines(table):
        if fields[3] == LISTEN:
            host, local_port = address_of(fields[1])
            if local_port == port and host in (address, "0.0.0.0"):
                return True
    return False


def connections_to(namespace: Namespace, port: int, ignore: str = "") -> int:
    """Open connections to `port` in the namespace, but those from the address `ignore` (the
    control plane's probes)."""
    count = 0
    for fields in socket_lines(namespace.proc_net("tcp")):
        if fields[3] not in OPEN_STATES:
            continue
        local, remote = address_of(fields[1]), address_of(fields[2])
        if local[1] == port and remote[0] != ignore:
            count += 1
    return count


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

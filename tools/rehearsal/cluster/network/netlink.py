"""Netlink's framing (linux include/uapi/linux/netlink.h), shared by conntrack's events and
sock_diag's dumps: one read holds messages, each a header (length, type, flags, sequence, port
id) and its payload, padded to 4 bytes."""

import struct
from collections.abc import Iterator

HEADER = struct.Struct("=IHHII")
ERROR, DONE = 2, 3  # NLMSG_ERROR, NLMSG_DONE


def messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each message in one read; a truncated or malformed one ends it."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind = HEADER.unpack_from(data, offset)[:2]
        if length < HEADER.size:
            return
        yield kind, data[offset + HEADER.size : offset + length]
        offset += (length + 3) & ~3

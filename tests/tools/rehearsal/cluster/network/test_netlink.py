"""Netlink's framing, as conntrack's events and sock_diag's dumps arrive."""

from tools.rehearsal.cluster.network import netlink


def message(kind: int, payload: bytes) -> bytes:
    framed = netlink.HEADER.pack(netlink.HEADER.size + len(payload), kind, 0, 1, 0) + payload
    return framed + bytes(-len(framed) % 4)  # padded to 4 bytes


def test_each_message_of_a_read_with_its_type_and_payload():
    data = message(20, b"abcde") + message(netlink.DONE, b"")
    assert list(netlink.messages(data)) == [(20, b"abcde"), (netlink.DONE, b"")]


def test_a_malformed_length_ends_the_read_instead_of_looping():
    broken = netlink.HEADER.pack(0, 20, 0, 1, 0)
    assert list(netlink.messages(message(20, b"x") + broken + message(20, b"y"))) == [(20, b"x")]

"""A request's outcome as a client sees it, and the record the load keeps of it."""

import asyncio
import errno
from dataclasses import dataclass

from tools.rehearsal.traffic import httpclient

OK = "ok"
# How a request without an answer failed.
REFUSED = "refused"  # nothing listened on the address
RESET_BEFORE_ANSWER = "reset before answer"  # the connection ended (RST or EOF), no answer
CUT_MID_RESPONSE = "cut mid-response"  # it ended after part of the answer
TIMEOUT = "timeout"  # no complete answer within the request timeout
# No host answered for the address (EHOSTUNREACH): in a pod network, a pod that is gone, its
# veth with it, so the node's ARP for its IP went unanswered.
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the load generator saw it."""

    started: float  # time.monotonic() in the load process (the same clock in every process)
    latency: float  # seconds
    outcome: str  # OK, "http <status>", or REFUSED, RESET_BEFORE_ANSWER, CUT_MID_RESPONSE, ...
    version: str  # X-App-Version of the answer, "" when there was none
    client: str  # the client model (traffic/profiles.py), e.g. "python-requests"
    port: int = 0  # the client's local port, 0 when no connection was made
    reused: bool = False  # sent on a connection that had carried an earlier request
    dropped: bool = False  # its idle connection was found closed by the server and replaced
    attempts: int = 1  # 2: the client retried it (go-net-http), on a new connection
    node: int = 0  # the entry point (a node's Service, or the edge) the client was pinned to
    # Where the Service is the kernel's NAT: the pod IP the node's rules sent a failed request's
    # connection to, from the node's conntrack table ("" when unknown, or when it did not fail).
    pod_address: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == OK


@dataclass(frozen=True)
class Connection:
    """The requests one connection carried: a request on a new connection and those that
    reused it after, from the same entry point, client model and local port."""

    node: int
    opened: float  # the first request's start
    requests: int


def connections(records: list[RequestRecord]) -> list[Connection]:
    """Every connection the records went on (a request that made none counts as one)."""
    found: list[Connection] = []
    open_at: dict[tuple[int, str, int], int] = {}  # a connection's key: its index in found
    for record in sorted(records, key=lambda r: r.started):
        key = (record.node, record.client, record.port)
        if record.reused and record.port and key in open_at:
            index = open_at[key]
            found[index] = Connection(record.node, found[index].opened, found[index].requests + 1)
            continue
        found.append(Connection(record.node, record.started, 1))
        if record.port:
            open_at[key] = len(found) - 1
    return found


def classify(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return REFUSED
    if isinstance(error, httpclient.CutMidResponse):
        return CUT_MID_RESPONSE
    if isinstance(error, ConnectionResetError | BrokenPipeError | asyncio.IncompleteReadError):
        return RESET_BEFORE_ANSWER
    if isinstance(error, TimeoutError):
        return TIMEOUT
    if isinstance(error, OSError) and error.errno == errno.EHOSTUNREACH:
        return UNREACHABLE
    if isinstance(error, OSError) and error.errno:
        return errno.errorcode.get(error.errno, str(error.errno)).lower()
    return type(error).__name__

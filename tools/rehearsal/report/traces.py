"""What happened to each failed request: its record, its connection through the Service, and
what the pod that held it logged meanwhile."""

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tools.rehearsal.cluster.network.proxy import (
    CLOSED_BY_CONNECT_FAILED,
    CLOSED_BY_NO_ENDPOINT,
    ConnectionTrace,
)
from tools.rehearsal.traffic.outcomes import (
    CUT_MID_RESPONSE,
    REFUSED,
    RESET_BEFORE_ANSWER,
    TIMEOUT,
    UNREACHABLE,
    RequestRecord,
)

# Log lines kept around a failed request, before and after it (seconds).
LOG_MARGIN = 1.0
MAX_LOG_LINES = 40
# Clock reads in two processes (the load's and the rehearsal's) disagree by this much at most.
ACCEPT_SLACK = 0.05


@dataclass
class FailureTrace:
    request: RequestRecord  # started: seconds since the run started
    connection: ConnectionTrace | None
    pod_log: list[str] = field(default_factory=list)

    def describe(self) -> str:
        r, c = self.request, self.connection
        line = f"{r.started:7.2f}s {r.client}: {r.outcome} after {r.latency:.3f}s"
        if c is None:
            return line + "; no connection reached the Service"

        def at(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        error = f" {c.connect_error}" if c.connect_error else ""
        return (
            f"{line}; Service: accepted {at(c.accepted)}, pod {c.pod or '-'}, connect "
            f"{at(c.connect_started)}->{at(c.connected)}{error}, first byte {at(c.first_byte)},"
            f" bytes {c.bytes_to_pod}/{c.bytes_to_client}, closed {at(c.closed)}"
            f" by {c.closed_by or '-'}"
        )


def cause(request: RequestRecord, connection: ConnectionTrace | None) -> str:
    """Why a request failed, in words, from its outcome and its connection's record."""
    if request.outcome.startswith("http "):
        return f"answered with HTTP {request.outcome.removeprefix('http ')}"
    if connection is not None and connection.closed_by == CLOSED_BY_CONNECT_FAILED:
        return "new connection sent to a pod no longer listening"
    if connection is not None and connection.closed_by == CLOSED_BY_NO_ENDPOINT:
        return "no endpoint in the Service"
    return {
        REFUSED: "the Service refused the connection",
        RESET_BEFORE_ANSWER: "connection closed or reset before any answer",
        CUT_MID_RESPONSE: "connection cut in the middle of an answer",
        TIMEOUT: "no complete answer within the request timeout",
        UNREACHABLE: "new connection sent to a pod that is gone: no one answers its address",
    }.get(request.outcome, request.outcome)


def causes(failed: list[RequestRecord], traces: list[FailureTrace]) -> dict[str, int]:
    """Failed requests by cause; those beyond the traced ones by outcome alone."""
    counts: dict[str, int] = {}
    for trace in traces:
        key = cause(trace.request, trace.connection)
        counts[key] = counts.get(key, 0) + 1
    for request in failed[len(traces) :]:
        key = cause(request, None)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def log_time(line: str) -> float | None:
    """The wall-clock time of a server log line: the app's JSON lines or gunicorn's own."""
    try:
        if line.startswith("{"):
            return datetime.fromisoformat(json.loads(line)["time"]).timestamp()
        if line.startswith("["):
            return datetime.strptime(line[1:26], "%Y-%m-%d %H:%M:%S %z").timestamp()
    except (ValueError, KeyError, TypeError):
        return None
    return None


def log_excerpt(path: Path, start: float, end: float) -> list[str]:
    """The lines of a pod's log written between two wall-clock times."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    kept = []
    for line in lines:
        when = log_time(line)
        if when is not None and start <= when <= end:
            kept.append(line)
    return kept[:MAX_LOG_LINES]


def kernel_connection(request: RequestRecord, pods: dict[str, str]) -> ConnectionTrace | None:
    """A failed request's connection through the kernel's NAT, as the kernel reported it: the
    pod from the node's conntrack table (request.pod_address), how it ended from the client's
    error. A refused connect that conntrack never recorded was REJECTed by the node's rules (no
    endpoint); one it recorded reached a pod that answered with a reset: not listening."""
    if not request.port:
        return None
    pod = pods.get(request.pod_address, "")
    closed_by = {
        REFUSED: CLOSED_BY_CONNECT_FAILED if request.pod_address else CLOSED_BY_NO_ENDPOINT,
        RESET_BEFORE_ANSWER: "pod (reset)",
        CUT_MID_RESPONSE: "pod (reset)",
        TIMEOUT: "client",
        UNREACHABLE: "node (no host answers the pod's address)",
    }.get(request.outcome, "pod")
    return ConnectionTrace(
        request.port,
        request.started,
        pod=pod,
        address=request.pod_address,
        connect_error="ConnectionRefusedError" if closed_by == CLOSED_BY_CONNECT_FAILED else "",
        closed=request.started + request.latency,
        closed_by=closed_by,
        node=request.node,
    )


def failure_traces(
    failed: list[RequestRecord],
    connections: list[ConnectionTrace],
    log_dir: Path,
    wall_start: float,
    limit: int = 1000,
    pods: dict[str, str] | None = None,
) -> list[FailureTrace]:
    """Each failed request with its connection: from the Service's TCP proxies' records
    (`connections`), or, where the Service is the kernel's NAT, from what the kernel reported
    (`pods`: pod names by IP)."""
    by_port: dict[int, list[ConnectionTrace]] = defaultdict(list)
    for connection in connections:  # in order of acceptance
        by_port[connection.client_port].append(connection)
    traces = []
    for request in failed[:limit]:
        candidates = by_port.get(request.port, []) if request.port else []
        # The last connection from that port accepted by the time the request ended: the port
        # is that connection's for the whole request, and a busy proxy may accept it only well
        # after the client started.
        index = bisect.bisect_right(
            candidates, request.started + request.latency + ACCEPT_SLACK, key=lambda c: c.accepted
        )
        connection = candidates[index - 1] if index else None
        if pods is not None:
            connection = kernel_connection(request, pods)
        trace = FailureTrace(request, connection)
        if connection is not None and connection.pod:
            begin = wall_start + request.started - LOG_MARGIN
            end = wall_start + request.started + request.latency + LOG_MARGIN
            trace.pod_log = log_excerpt(log_dir / f"{connection.pod}.log", begin, end)
        traces.append(trace)
    return traces

"""The preStop hook that waits until traffic has left the pod: GET /prestop.

A deleted pod keeps receiving new requests for as long as any node's kube-proxy, any gateway or
any load balancer still routes to it: that lag has a long tail (docs/shutdown.md, "How much
endpoint lag the contract tolerates"), so a fixed preStop sleep either lingers far longer than
usually needed or ends while a late node is still sending. Instead, the kubelet calls this
endpoint as the preStop hook and it answers once no request has arrived for PRESTOP_QUIET_SECONDS,
after at least PRESTOP_MIN_SECONDS, and after PRESTOP_MAX_SECONDS at most. Only then does the
kubelet send SIGTERM and the drain (app/draining.py) begin.

A node learns of a new pod as late as of a deleted one, and a node that has not learned of the
pod yet sends it nothing the hook could wait for: a pod deleted soon after it started serving
(the rollout removing a pod the HPA had just added; `zdt soak` found one, deleted 1.1 s after it
turned ready, that a node learned of 13.5 s later, when it had exited) would leave before that
node's first request. So the hook also waits until the pod has been in service, from its first
request, for PRESTOP_MIN_SERVICE_SECONDS (30 s: the p99 of network programming latency that SIG
Scalability's SLO allows); a pod that never got one waits PRESTOP_MAX_SECONDS. Pods in service
longer, nearly all of them outside a rehearsal, are not held by it.

The kubelet runs an httpGet hook before it signals the container and waits for it at most the
grace period (kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go, executePreStopHook:
`time.After(gracePeriod)`; the hook's status is only logged). So the hook must end by itself
(PRESTOP_MAX_SECONDS), and terminationGracePeriodSeconds must cover it, the drain and the
graceful stop (`zdt validate` checks it).

While it waits, every response closes its connection (LEAVING; gunicorn_conf.pre_request): a
client that keeps a connection to the pod open (through conntrack, whatever the nodes' rules now
say) would otherwise keep the pod "in use" until PRESTOP_MAX_SECONDS. Told to reconnect, it
comes back only through a node that still routes here, which is the traffic to wait for. The
readiness probe keeps answering 200 until SIGTERM, as with a sleep.

What counts as traffic: every request but the kubelet's and the monitoring's own (the probes'
paths, the hook's and /metrics), whose arrivals say nothing about routing. The times of the
first and the last arrival live in shared memory created in the gunicorn master before any
worker is forked, as the drain flag does, so a hook served by one worker sees the requests of
every worker.
"""

import mmap
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from app.draining import DrainFlag

QUIET_HOOK_PATH = "/prestop"
# Paths whose requests do not keep a pod "in use": the probes, the hook, the scrapes.
NOT_TRAFFIC = frozenset({"/ready", "/healthz", QUIET_HOOK_PATH, "/metrics"})
POLL_SECONDS = 0.1


class Arrivals:
    """The monotonic times of the first and the last request that counted as traffic, shared
    across fork. Before any, the last is the process's start and there is no first."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 16)  # anonymous and shared: survives fork
        struct.pack_into("dd", self._memory, 0, 0.0, time.monotonic())

    def mark(self, now: float) -> None:
        if self.first() is None:
            struct.pack_into("d", self._memory, 0, now)
        struct.pack_into("d", self._memory, 8, now)

    def first(self) -> float | None:
        first = struct.unpack_from("d", self._memory, 0)[0]
        return first or None

    def last(self) -> float:
        return struct.unpack_from("d", self._memory, 8)[0]


class Seen(Protocol):
    def first(self) -> float | None: ...

    def last(self) -> float: ...


# Created when the gunicorn configuration is imported, in the master, before any fork.
ARRIVALS = Arrivals()
# Set by the hook: every response closes its connection from then on.
LEAVING = DrainFlag()


def counts_as_traffic(path: str) -> bool:
    return path not in NOT_TRAFFIC


@dataclass(frozen=True)
class HookTiming:
    """The hook's settings (app/settings.py), seconds."""

    minimum: float  # PRESTOP_MIN_SECONDS
    quiet: float  # PRESTOP_QUIET_SECONDS
    maximum: float  # PRESTOP_MAX_SECONDS
    in_service: float  # PRESTOP_MIN_SERVICE_SECONDS: since the pod's first request


@dataclass(frozen=True)
class Quiet:
    """How the hook ended: after `waited` seconds, quiet for `idle` seconds, or at its max."""

    waited: float
    idle: float
    timed_out: bool

    def describe(self) -> str:
        if self.timed_out:
            last = f"last request {self.idle:.1f}s ago"
            return f"PRESTOP_MAX_SECONDS reached after {self.waited:.1f}s ({last})"
        return f"quiet for {self.idle:.1f}s after {self.waited:.1f}s"


def wait_until_quiet(
    seen: Seen,
    timing: HookTiming,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Quiet:
    """Block until `timing.minimum` seconds have passed, no traffic has arrived for
    `timing.quiet` seconds and the pod has been in service for `timing.in_service`; or until
    `timing.maximum` seconds have passed."""
    started = clock()
    while True:
        now = clock()
        waited, idle = now - started, now - seen.last()
        first = seen.first()
        served = 0.0 if first is None else now - first  # never served: not in service yet
        if waited >= timing.maximum:
            return Quiet(waited, idle, timed_out=True)
        due = max(timing.minimum - waited, timing.quiet - idle, timing.in_service - served)
        if due <= 0:
            return Quiet(waited, idle, timed_out=False)
        sleep(min(max(due, 0.01), POLL_SECONDS, timing.maximum - waited))

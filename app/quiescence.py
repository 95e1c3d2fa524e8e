"""The preStop hook that waits until traffic has left the pod: GET /prestop.

A deleted pod keeps receiving new requests for as long as any node's kube-proxy, any gateway or
any load balancer still routes to it: that lag has a long tail (docs/shutdown.md, "How much
endpoint lag the contract tolerates"), so a fixed preStop sleep either lingers far longer than
usually needed or ends while a late node is still sending. Instead, the kubelet calls this
endpoint as the preStop hook and it answers once no request has arrived for PRESTOP_QUIET_SECONDS,
after at least PRESTOP_MIN_SECONDS, and after PRESTOP_MAX_SECONDS at most. Only then does the
kubelet send SIGTERM and the drain (app/draining.py) begin.

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
paths, the hook's and /metrics), whose arrivals say nothing about routing. The time of the last
arrival lives in shared memory created in the gunicorn master before any worker is forked, as
the drain flag does, so a hook served by one worker sees the requests of every worker.
"""

import mmap
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.draining import DrainFlag

QUIET_HOOK_PATH = "/prestop"
# Paths whose requests do not keep a pod "in use": the probes, the hook, the scrapes.
NOT_TRAFFIC = frozenset({"/ready", "/healthz", QUIET_HOOK_PATH, "/metrics"})
POLL_SECONDS = 0.1


class LastArrival:
    """The monotonic time of the last request that counts as traffic, shared across fork."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 8)  # anonymous and shared: survives fork
        self.mark(time.monotonic())

    def mark(self, now: float) -> None:
        struct.pack_into("d", self._memory, 0, now)

    def get(self) -> float:
        return struct.unpack_from("d", self._memory, 0)[0]


# Created when the gunicorn configuration is imported, in the master, before any fork.
LAST_ARRIVAL = LastArrival()
# Set by the hook: every response closes its connection from then on.
LEAVING = DrainFlag()


def counts_as_traffic(path: str) -> bool:
    return path not in NOT_TRAFFIC


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
    last_arrival: Callable[[], float],
    minimum: float,
    quiet: float,
    maximum: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Quiet:
    """Block until no traffic has arrived for `quiet` seconds and `minimum` seconds have passed,
    or until `maximum` seconds have passed."""
    started = clock()
    while True:
        now = clock()
        waited, idle = now - started, now - last_arrival()
        if waited >= maximum:
            return Quiet(waited, idle, timed_out=True)
        if waited >= minimum and idle >= quiet:
            return Quiet(waited, idle, timed_out=False)
        due = max(minimum - waited, quiet - idle, 0.0)
        sleep(min(max(due, 0.01), POLL_SECONDS, maximum - waited))

"""What one proxy knows of a Service's endpoints: the EndpointSlice as it reaches it, late."""

import asyncio
import random
from collections import defaultdict, deque
from dataclasses import dataclass

from tools.rehearsal.timeline import Timeline


@dataclass(frozen=True)
class Endpoint:
    pod: str
    address: str
    port: int
    ready: bool  # pod ready and not terminating
    serving: bool  # readiness probe passing, whether terminating or not
    terminating: bool

    def describe(self) -> str:
        if self.ready:
            return "ready"
        if self.terminating:
            return "terminating, serving" if self.serving else "terminating"
        return "not ready"


class EndpointView:
    """kube-proxy's view of the Service's endpoints, always one propagation delay behind."""

    def __init__(
        self,
        timeline: Timeline,
        delay: float,
        jitter: float,
        rng: random.Random,
        name: str = "service",
    ) -> None:
        self.timeline = timeline
        self.name = name  # the source of its events
        self.delay = delay
        self.jitter = jitter
        self.rng = rng
        self.current: dict[str, Endpoint] = {}
        self.published: dict[str, Endpoint | None] = {}
        self.last_apply: dict[str, float] = {}
        # Each pod's updates not yet applied, in the order they were published.
        self.pending: dict[str, deque[Endpoint | None]] = defaultdict(deque)
        self.ready: list[Endpoint] = []
        self.fallback: list[Endpoint] = []
        # (run seconds, pods a new connection may go to): every change of what the proxy sees.
        self.history: list[tuple[float, tuple[str, ...]]] = []

    def publish(self, pod: str, endpoint: Endpoint | None) -> None:
        """The EndpointSlice changed now; the proxy learns it after the propagation delay."""
        self.publish_all({pod: endpoint})

    def publish_all(self, changes: dict[str, Endpoint | None]) -> None:
        """Changes made by one EndpointSlice update (a Service's selector moving to other
        pods changes many endpoints at once): they reach the proxy together, after one
        propagation delay, never one without the others."""
        changes = {
            pod: endpoint
            for pod, endpoint in changes.items()
            if pod not in self.published or self.published[pod] != endpoint
        }
        if not changes:
            return
        self.published.update(changes)
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.delay + self.rng.uniform(-self.jitter, self.jitter))
        # Updates for one endpoint arrive in order: never before the previous one, and, as
        # timers due at the same moment may fire in any order, each timer applies the oldest
        # pending update of its endpoints rather than its own.
        apply_at = max([loop.time() + delay, *(self.last_apply.get(pod, 0.0) for pod in changes)])
        for pod, endpoint in changes.items():
            self.last_apply[pod] = apply_at
            self.pending[pod].append(endpoint)
        loop.call_at(apply_at, self._apply_next, list(changes))

    def _apply_next(self, pods: list[str]) -> None:
        for pod in pods:
            self._apply(pod, self.pending[pod].popleft())
        routable = tuple(e.pod for e in (self.ready or self.fallback))
        if not self.history or self.history[-1][1] != routable:
            self.history.append((self.timeline.now(), routable))

    def _apply(self, pod: str, endpoint: Endpoint | None) -> None:
        previous = self.current.get(pod)
        if endpoint is None:
            self.current.pop(pod, None)
        else:
            self.current[pod] = endpoint
        self.ready = [e for e in self.current.values() if e.ready]
        self.fallback = [e for e in self.current.values() if e.serving and e.terminating]
        before = previous.describe() if previous else "absent"
        after = endpoint.describe() if endpoint else "removed"
        if before != after:
            self.timeline.record(self.name, "view", f"{pod}: {before} -> {after}")

    def pick(self) -> Endpoint | None:
        if self.ready:
            return self.rng.choice(self.ready)
        if self.fallback:
            return self.rng.choice(self.fallback)
        return None

    def routable(self, pod: str) -> bool:
        """Could a new connection still be sent to this pod?"""
        endpoint = self.current.get(pod)
        if endpoint is None:
            return False
        return endpoint.ready or (not self.ready and endpoint in self.fallback)


# The Service itself ended the connection: no endpoint to send it to, or the pod refused it.

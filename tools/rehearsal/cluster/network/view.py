"""What one node's kube-proxy knows of a Service's endpoints: the EndpointSlice as it reaches
that node, late."""

import asyncio
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tools.rehearsal.cluster.network.lag import Lag
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


@dataclass
class Update:
    """One EndpointSlice update on its way to a node's rules."""

    number: int
    published: float  # run seconds
    changes: dict[str, Endpoint | None]


@dataclass(frozen=True)
class ViewSummary:
    """How late one view was during a run (lag: from an update's publication to its rules)."""

    service: str
    node: int
    updates: int
    max_lag: float
    frozen_seconds: float
    lags: tuple[float, ...] = ()  # each applied update's, in order
    # The age of each update not applied when the run ended: its lag is at least that.
    unapplied: tuple[float, ...] = ()
    # (run seconds, pods a new connection could go to): every change of the node's rules.
    history: tuple[tuple[float, tuple[str, ...]], ...] = ()


class EndpointView:
    """One node's kube-proxy view of a Service's endpoints.

    Each update is applied after its own lag, drawn from `lag`. Updates are applied in the order
    they were published: kube-proxy gets them through one watch, and each sync of its rules
    applies every change received so far (pkg/proxy/endpointslicecache.go, the proxier's
    endpointsChanges), so a late update holds back the ones behind it and a later update never
    overtakes an earlier one. While frozen (a kube-proxy restarting) nothing is applied; then it
    catches up, in order.
    """

    def __init__(
        self,
        timeline: Timeline,
        lag: Lag,
        rng: random.Random,
        name: str = "service",
        node: int = 0,
    ) -> None:
        self.timeline = timeline
        self.name = name  # the source of its events
        self.node = node
        self.lag = lag
        self.rng = rng
        # False while a run brings up its starting state, which stands for pods that have
        # served for an hour: every view caught up with them long ago (run.py).
        self.lagging = True
        self.current: dict[str, Endpoint] = {}
        self.published: dict[str, Endpoint | None] = {}
        self.queue: deque[Update] = deque()  # published, not yet applied, in order
        self.numbered = 0  # updates published
        self.due = 0  # the last update whose lag is over
        self.last_apply = 0.0  # loop time the last queued update applies at
        self.frozen_until = 0.0  # loop time
        self.frozen_seconds = 0.0
        self.lags: list[float] = []  # each applied update's lag, in order
        self.ready: list[Endpoint] = []
        self.fallback: list[Endpoint] = []
        # (run seconds, pods a new connection may go to): every change of what the proxy sees.
        self.history: list[tuple[float, tuple[str, ...]]] = []
        self.on_apply: Callable[[], None] | None = None  # a controller watching this view

    def publish(self, pod: str, endpoint: Endpoint | None) -> None:
        """The EndpointSlice changed now; the proxy learns it after its lag."""
        self.publish_all({pod: endpoint})

    def publish_all(self, changes: dict[str, Endpoint | None]) -> None:
        """Changes made by one EndpointSlice update (a Service's selector moving to other
        pods changes many endpoints at once): they reach the proxy together, never one without
        the others."""
        changes = {
            pod: endpoint
            for pod, endpoint in changes.items()
            if pod not in self.published or self.published[pod] != endpoint
        }
        if not changes:
            return
        self.published.update(changes)
        loop = asyncio.get_running_loop()
        self.numbered += 1
        self.queue.append(Update(self.numbered, self.timeline.now(), changes))
        delay = self.lag.sample(self.rng) if self.lagging else 0.0
        self.last_apply = max(loop.time() + delay, self.last_apply)
        # Timers due at the same moment may fire in any order: each one applies every update up
        # to its own.
        loop.call_at(self.last_apply, self._lag_over, self.numbered)

    def freeze(self, seconds: float) -> None:
        """kube-proxy restarting: no update reaches the rules for `seconds`."""
        loop = asyncio.get_running_loop()
        self.frozen_until = max(self.frozen_until, loop.time() + seconds)
        self.frozen_seconds += seconds
        self.timeline.record(self.name, "view", f"frozen for {seconds:g}s (kube-proxy restarting)")
        loop.call_at(self.frozen_until, self._thaw)

    def _lag_over(self, number: int) -> None:
        self.due = max(self.due, number)
        if asyncio.get_running_loop().time() >= self.frozen_until:
            self._apply_due()

    def _thaw(self) -> None:
        if asyncio.get_running_loop().time() >= self.frozen_until:
            self.timeline.record(self.name, "view", "thawed: catching up")
            self._apply_due()

    def _apply_due(self) -> None:
        while self.queue and self.queue[0].number <= self.due:
            update = self.queue.popleft()
            self.lags.append(self.timeline.now() - update.published)
            for pod, endpoint in update.changes.items():
                self._apply(pod, endpoint)
        routable = tuple(e.pod for e in self.usable)
        if not self.history or self.history[-1][1] != routable:
            self.history.append((self.timeline.now(), routable))
        if self.on_apply is not None:
            self.on_apply()

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

    @property
    def usable(self) -> list[Endpoint]:
        """The endpoints a new connection may go to: the ready ones, or only when none is ready
        the serving terminating ones (kubernetes pkg/proxy/topology.go CategorizeEndpoints)."""
        return self.ready or self.fallback

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

    def summary(self, service: str) -> ViewSummary:
        now = self.timeline.now()
        unapplied = tuple(round(now - update.published, 3) for update in self.queue)
        return ViewSummary(
            service,
            self.node,
            len(self.lags),
            max([*self.lags, *unapplied], default=0.0),
            self.frozen_seconds,
            tuple(round(lag, 3) for lag in self.lags),
            unapplied,
            tuple(self.history),
        )

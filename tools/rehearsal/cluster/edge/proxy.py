"""The exposure's proxy in front of the users' Service: a real HAProxy process (haproxy.py,
configured as an ALB answers: no retries, a 502 when a pod fails a request) that sends each
request straight to a pod (as a gateway or an ALB with target-type ip does, past kube-proxy),
choosing among the pods its own view routes to:
- a gateway: an EndpointSlice watch of the Service with its own lag, like a node's kube-proxy
  (ready endpoints, else serving terminating ones);
- an AWS ALB: the emulated target group (targetgroup.py), fed by the load balancer
  controller's own EndpointSlice watch.
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tools.exposure import Exposure
from tools.rehearsal.cluster.edge.dns import UpstreamResolver
from tools.rehearsal.cluster.edge.haproxy import HAProxy, ProxyError, ProxySettings
from tools.rehearsal.cluster.edge.targetgroup import GATE_PREFIX, TargetGroup
from tools.rehearsal.cluster.network.lag import Lag
from tools.rehearsal.cluster.network.service import EmulatedService
from tools.rehearsal.cluster.network.view import EndpointView
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.timeline import Timeline

UPSTREAM_NAME = "targets.edge.rehearsal."
# How long the proxy keeps one answer (it asks once per refresh): what its view may lag on top
# of the gateway's or ALB's.
REFRESH_SECONDS = 0.5

LATE = "late deregistration: a new connection to a pod that had stopped listening"
# On the namespaces' network a pod's address goes with the pod: a connection to it is never
# answered, where the loopback network refuses it.
GONE = "late deregistration: a new connection to a pod that was gone (its address unanswered)"
LATE_CAUSES = (LATE, GONE)
CLOSED = "a kept-alive connection the pod had closed (idle-connection race, or the pod's exit)"
NO_TARGET = "no target to send to"
SLOW = "the pod did not answer in time"
CUT = "the pod cut its answer"
# HAProxy's termination state (its first two characters: who ended the request, and in which
# phase; doc/configuration.txt section 8.5), and what each means on this path.
CAUSES = {
    "SC": LATE,  # the connection to the pod failed: refused, as by a pod that stopped listening
    "SH": CLOSED,  # the pod closed or reset the connection before any response header
    "sH": SLOW,
    "sC": GONE,  # the connection was not established in time: the pod's address was gone
    "SD": CUT,
    "sD": CUT,
}


@dataclass
class EdgeSummary:
    """The path from outside, as one run saw it."""

    kind: str  # "gateway" or "aws-alb"
    proxy: str  # what ran and how it was set up
    view: str  # where its upstream list came from, and how late
    proxy_errors: int
    causes: dict[str, int] = field(default_factory=dict)
    max_deregistration_lag: float | None = None  # aws-alb: the slowest one drawn
    first_errors: list[str] = field(default_factory=list)  # "run seconds  status  message"


def cause(error: ProxyError) -> str:
    if error.status == 503 and error.upstream is None:
        return NO_TARGET  # no server to choose (HAProxy's <NOSRV>)
    if error.status == 503 and error.state.startswith("SC"):
        # A failed connection to a chosen pod is answered 502 (haproxy.py); left a 503, the
        # connection was a kept-alive one HAProxy could not send on, and it closed the
        # client's connection without an answer.
        return CLOSED
    return CAUSES.get(error.state[:2], error.message)


class EdgeProxy:
    def __init__(
        self,
        exposure: Exposure,
        service: EmulatedService,
        pods: Callable[[str], Pod | None],
        port: int,
        timeline: Timeline,
        rng: random.Random,
        log_dir: Path,
        lag: Lag,
        alb_lag: Lag,
        requeue: float,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        self.exposure = exposure
        self.timeline = timeline
        self.refresh = refresh
        self.log_dir = log_dir
        self.port = port
        source = "alb controller" if exposure.kind == "aws-alb" else "gateway"
        self.view = EndpointView(timeline, lag, random.Random(rng.random()), name=source)
        service.slices.views.append(self.view)
        self.targets: TargetGroup | None = None
        self.gate: str | None = None
        if exposure.kind == "aws-alb":
            self.gate = f"{GATE_PREFIX}k8s-{exposure.service}"
            self.targets = TargetGroup(
                self.view,
                pods,
                exposure.health_check,
                port,
                exposure.deregistration_delay or 0.0,
                alb_lag,
                random.Random(rng.random()),
                timeline,
                self.gate,
                requeue,
            )
            self.view.on_apply = self.targets.reconcile
            self.targets.on_route_change = self.changed
        else:
            self.view.on_apply = self.changed
        # (run seconds, pods new requests may go to): every change of what the proxy routes to.
        self.history: list[tuple[float, tuple[str, ...]]] = []
        self.resolver = UpstreamResolver(UPSTREAM_NAME, self.addresses)
        self.proxy: HAProxy | None = None

    def pod_changed(self) -> None:
        """The load balancer controller watches the pods that carry its readiness gate."""
        if self.targets is not None:
            self.targets.reconcile()

    def routed(self) -> dict[str, str]:
        """pod -> address, of every pod new requests may go to now."""
        if self.targets is not None:
            return {t.pod: t.address for t in self.targets.routed()}
        return {e.pod: e.address for e in (self.view.ready or self.view.fallback)}

    def addresses(self) -> list[str]:
        return sorted(self.routed().values())

    def changed(self) -> None:
        pods = tuple(sorted(self.routed()))
        if not self.history or self.history[-1][1] != pods:
            self.history.append((self.timeline.now(), pods))

    def reachable(self, pod: str) -> bool:
        """Could a new request still reach this pod through the proxy (whose answer may be up
        to one refresh old)?"""
        since = self.timeline.now() - self.refresh
        for at, pods in reversed(self.history):
            if pod in pods:
                return True
            if at <= since:
                break
        return False

    async def start(self) -> None:
        port = await self.resolver.start()
        exposure = self.exposure
        self.proxy = HAProxy(
            ProxySettings(
                upstream_name=UPSTREAM_NAME,
                upstream_port=self.port,
                resolver=f"127.0.0.1:{port}",
                refresh=self.refresh,
                upstream_idle_timeout=exposure.upstream_idle_timeout,
                client_idle_timeout=exposure.upstream_idle_timeout,
                request_timeout=exposure.request_timeout,
                path_prefix=exposure.path_prefix,
            ),
            self.log_dir,
        )
        await self.proxy.start()

    async def stop(self) -> None:
        if self.targets is not None:
            self.targets.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        self.resolver.stop()

    @property
    def entry_points(self) -> tuple[str, ...]:
        return (self.proxy.entry_point,)

    def errors(self) -> list[ProxyError]:
        return self.proxy.errors() if self.proxy is not None else []

    def describe(self, alb_lag: Lag) -> str:
        exposure = self.exposure
        proxy = (
            f"HAProxy at {self.proxy.entry_point} (as an ALB answers: 502, no re-send): upstream "
            f"keep-alive {exposure.upstream_idle_timeout:g}s, no retries, upstreams looked up "
            f"every {self.refresh:g}s"
        )
        if self.targets is None:
            lag = self.view.lag.describe()
            return f"gateway (HTTPRoute {exposure.route}): {proxy}; its view lags {lag}"
        check = exposure.health_check
        return (
            f"emulated ALB (HTTPRoute {exposure.route}): {proxy}; target group: target-type ip, "
            f"health check {check.path} every {check.interval:g}s, healthy after "
            f"{check.healthy_threshold}, unhealthy after {check.unhealthy_threshold}, "
            f"deregistration delay {exposure.deregistration_delay:g}s, readiness gate {self.gate}"
            f" (requeue {self.targets.requeue:g}s); deregistrations reach the ALB's nodes "
            f"{alb_lag.describe()}"
        )

    def summary(self, pods: dict[str, str], wall_start: float, first: int = 5) -> EdgeSummary:
        """`pods`: address -> pod name, to name the pod an error's upstream was."""
        exposure = self.exposure
        errors = self.errors()
        first_errors = []
        for error in errors[:first]:
            pod = pods.get((error.upstream or "").rpartition(":")[0])
            first_errors.append(
                f"{error.at - wall_start:7.2f}s  {error.status}  {error.message}"
                + (f" ({pod})" if pod else "")
            )
        lags = self.targets.deregistration_lags if self.targets is not None else []
        return EdgeSummary(
            kind=exposure.kind,
            proxy=(
                f"real HAProxy, upstream keep-alive {exposure.upstream_idle_timeout:g}s, "
                "no retries, 502 on a failed request"
            ),
            view=(
                f"the load balancer controller's watch ({self.view.lag.describe()}) and an "
                "emulated ALB target group (deregistrations reach its nodes "
                f"{self.targets.alb_lag.describe()})"
                if self.targets is not None
                else f"the gateway's EndpointSlice watch ({self.view.lag.describe()})"
            ),
            proxy_errors=len(errors),
            causes=dict(Counter(cause(error) for error in errors).most_common()),
            first_errors=first_errors,
            max_deregistration_lag=max(lags) if lags else None,
        )

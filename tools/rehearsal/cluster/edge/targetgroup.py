"""Emulated: an ALB target group as the AWS Load Balancer Controller keeps it for a Service
(target-type ip), and the ALB's nodes routing to it. No real ALB runs here; every rule below is
read from the controller's source at v3.5.0 or from the Elastic Load Balancing docs:

- Registered pods (pkg/backend/endpoint_resolver.go): the Service's ready endpoints, and the
  not-ready ones whose containers are ready (their target-health readiness gate still False);
  never a terminating one.
- The readiness gate (pkg/targetgroupbinding/resource_manager.go,
  `calculateReadinessGateTransition`): the pod's condition `target-health.elbv2.k8s.aws/<binding>`
  is True once its target is healthy, False otherwise, written when the binding is reconciled:
  on an endpoint change or a change of a pod carrying the gate
  (controllers/elbv2/eventhandlers/pod.go), and while a gate is not yet True again after
  `--targetgroupbinding-requeue-duration` (cluster/network/lag.py TGB_REQUEUE).
- Health checks ("Health checks for Application Load Balancer target groups"): every interval,
  each with a timeout; a registered target is `initial` and gets no request until its first
  verdict, healthy after `healthy_threshold` passes in a row, unhealthy after
  `unhealthy_threshold` failures; a draining target is not checked.
- Deregistration ("Deregistration delay"): the target drains for the deregistration delay; the
  ALB's nodes stop sending it new requests only after their own lag (`alb_lag`), which the
  pod's preStop has to cover.
- Fail open: with no healthy target the ALB routes to every unhealthy one.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from tools.exposure import HealthCheck
from tools.rehearsal.cluster.network.lag import TGB_REQUEUE, Lag
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.timeline import Timeline
from tools.rehearsal.traffic import httpclient

GATE_PREFIX = "target-health.elbv2.k8s.aws/"


# One health check: (address, port, path, timeout) -> passed.
Probe = Callable[[str, int, str, float], Awaitable[bool]]


async def http_check(address: str, port: int, path: str, timeout: float) -> bool:
    """An ALB's HTTP health check with the default matcher (200)."""
    try:
        response = await httpclient.get(address, port, path, timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
        return False
    return response.status == 200


class TargetState(Enum):
    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"


@dataclass
class Target:
    pod: str
    address: str
    state: TargetState = TargetState.INITIAL
    passes: int = 0  # in a row
    failures: int = 0  # in a row
    routed: bool = False  # the ALB's nodes send it new requests
    checks: asyncio.Task | None = None


class TargetGroup:
    def __init__(
        self,
        view: EndpointView,
        pods: Callable[[str], Pod | None],
        health_check: HealthCheck,
        port: int,
        deregistration_delay: float,
        alb_lag: Lag,
        rng: random.Random,
        timeline: Timeline,
        gate: str,
        requeue: float = TGB_REQUEUE,
        probe: Probe = http_check,
    ) -> None:
        self.view = view
        self.pods = pods
        self.health_check = health_check
        self.port = port
        self.deregistration_delay = deregistration_delay
        self.alb_lag = alb_lag
        self.rng = rng
        self.timeline = timeline
        self.gate = gate
        self.requeue = requeue
        self.probe = probe
        self.targets: dict[str, Target] = {}
        self.requeued: asyncio.TimerHandle | None = None
        self.deregistration_lags: list[float] = []
        self.on_route_change: Callable[[], None] = lambda: None

    # -- the controller ----------------------------------------------------------------------

    def wanted(self, endpoint: Endpoint) -> bool:
        if endpoint.terminating:
            return False
        if endpoint.ready:
            return True
        pod = self.pods(endpoint.pod)
        return pod is not None and pod.containers_ready and not pod.terminating

    def requeue_over(self) -> None:
        self.requeued = None
        self.reconcile()

    def reconcile(self) -> None:
        """One reconcile of the binding: on an endpoint or pod change, and on its requeue (an
        event between requeues reconciles at once and leaves the requeue due as it was)."""
        wanted = {e.pod: e for e in self.view.current.values() if self.wanted(e)}
        for pod, endpoint in wanted.items():
            target = self.targets.get(pod)
            if target is None or target.state is TargetState.DRAINING and not target.routed:
                self.register(pod, endpoint.address)
        for target in list(self.targets.values()):
            if target.pod not in wanted and target.state is not TargetState.DRAINING:
                self.deregister(target)
        pending = False
        for target in self.targets.values():
            pod = self.pods(target.pod)
            if target.state is TargetState.DRAINING or pod is None:
                continue
            if self.gate in pod.template.readiness_gates:
                healthy = target.state is TargetState.HEALTHY
                pod.set_condition(self.gate, healthy)
                pending = pending or not healthy
        if pending and self.requeued is None:
            self.requeued = asyncio.get_running_loop().call_later(self.requeue, self.requeue_over)

    def register(self, pod: str, address: str) -> None:
        target = Target(pod, address)
        self.targets[pod] = target
        self.timeline.record("alb", "target", f"{pod}: registered (initial)")
        target.checks = asyncio.get_running_loop().create_task(self.check(target))

    def deregister(self, target: Target) -> None:
        was_routed = target.routed
        target.state = TargetState.DRAINING
        if target.checks is not None:
            target.checks.cancel()
        lag = self.alb_lag.sample(self.rng)
        self.deregistration_lags.append(lag)
        self.timeline.record(
            "alb", "target", f"{target.pod}: draining; the ALB's nodes stop in {lag:.1f}s"
        )
        loop = asyncio.get_running_loop()
        if was_routed:
            loop.call_later(lag, self.stop_routing, target)
        loop.call_later(self.deregistration_delay, self.forget, target)

    def stop_routing(self, target: Target) -> None:
        if target.state is TargetState.DRAINING and target.routed:
            target.routed = False
            self.timeline.record("alb", "target", f"{target.pod}: no longer routed")
            self.route()

    def forget(self, target: Target) -> None:
        if self.targets.get(target.pod) is target and target.state is TargetState.DRAINING:
            target.routed = False
            del self.targets[target.pod]
            self.route()

    # -- the ALB -----------------------------------------------------------------------------

    async def check(self, target: Target) -> None:
        check = self.health_check
        port = self.port if check.port == "traffic-port" else int(check.port)
        await asyncio.sleep(self.rng.uniform(0, check.interval))  # the ALB's own phase
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self.verdict(target, await self.probe(target.address, port, check.path, check.timeout))
            await asyncio.sleep(max(0.0, check.interval - (loop.time() - started)))

    def verdict(self, target: Target, passed: bool) -> None:
        if target.state is TargetState.DRAINING:
            return
        target.passes = target.passes + 1 if passed else 0
        target.failures = 0 if passed else target.failures + 1
        before = target.state
        if passed and target.passes >= self.health_check.healthy_threshold:
            target.state = TargetState.HEALTHY
        elif not passed and target.failures >= self.health_check.unhealthy_threshold:
            target.state = TargetState.UNHEALTHY
        if target.state is not before:
            self.timeline.record("alb", "target", f"{target.pod}: {target.state.value}")
            self.route()

    def route(self) -> None:
        """What the ALB's nodes send new requests to: healthy targets and draining ones whose
        deregistration has not reached them yet; with none healthy, every unhealthy one."""
        live = [t for t in self.targets.values() if t.state is not TargetState.DRAINING]
        healthy = [t for t in live if t.state is TargetState.HEALTHY]
        chosen = healthy or [t for t in live if t.state is TargetState.UNHEALTHY]
        for target in live:
            target.routed = target in chosen
        self.on_route_change()

    def routed(self) -> list[Target]:
        return [t for t in self.targets.values() if t.routed]

    def stop(self) -> None:
        if self.requeued is not None:
            self.requeued.cancel()
        for target in self.targets.values():
            if target.checks is not None:
                target.checks.cancel()

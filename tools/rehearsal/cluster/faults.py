"""Faults a rehearsal can add to its rollout: a crash, a node drain, a long request in flight.

Each starts a set time after the rollout starts and reports what happened; the summary then
says what each cost (tools/rehearsal/report/findings.py).
- crash (--kill-at): SIGKILL to the container of one ready old pod, as an out-of-memory kill or
  a segfault would do it; the kubelet restarts it and the rollout goes on.
- node drain (--evict-at): every pod present is evicted, one at a time, as `kubectl drain` does:
  an eviction the PodDisruptionBudget refuses is retried every 5 s; an evicted pod terminates
  gracefully and its ReplicaSet replaces it.
- slow request (--slow-request): one request that takes that long, sent through the Service
  when the rollout starts; the pod that serves it is deleted by the rollout while it runs.
"""

import asyncio
from dataclasses import dataclass, field

from tools.rehearsal.cluster.deployment import DeploymentController
from tools.rehearsal.cluster.network.service import EmulatedService
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.workload import DisruptionBudget
from tools.rehearsal.timeline import PodEvent, Timeline
from tools.rehearsal.traffic import httpclient
from tools.rehearsal.traffic.outcomes import OK, classify

EVICTION_RETRY_SECONDS = 5.0  # kubectl drain's pause after a refused eviction
MAX_SLOW_REQUEST = 30.0  # the app's own limit for ?delay=
CRASH, NODE_DRAIN, SLOW_REQUEST = "crash", "node drain", "slow request"


@dataclass(frozen=True)
class Faults:
    kill_at: float | None = None  # seconds after the rollout starts
    evict_at: float | None = None
    slow_request: float | None = None  # its length in seconds

    def validate(self) -> None:
        for option, value in (("--kill-at", self.kill_at), ("--evict-at", self.evict_at)):
            if value is not None and not 0 <= value <= 600:
                raise RehearsalError(f"{option}: {value:g} is not within 0..600 seconds")
        if self.slow_request is not None and not 0 < self.slow_request <= MAX_SLOW_REQUEST:
            raise RehearsalError(
                f"--slow-request: {self.slow_request:g} is not within 0..{MAX_SLOW_REQUEST:g} s"
            )


@dataclass
class FaultReport:
    kind: str  # CRASH, NODE_DRAIN or SLOW_REQUEST
    at: float  # run seconds
    pods: list[str] = field(default_factory=list)  # killed, evicted, or the one that served
    open_connections: int = 0  # crash: connections established to the pod when it was killed
    refused: int = 0  # node drain: evictions the PodDisruptionBudget refused
    outcome: str = ""  # slow request: ok, http <status> or how it failed
    seconds: float = 0.0  # slow request: how long it took
    deleted_while_running: bool = False  # slow request: its pod was deleted meanwhile
    note: str = ""


@dataclass
class Cluster:
    """What the faults act on: the rehearsal's controller, Service and clock."""

    controller: DeploymentController
    service: EmulatedService  # the users' Service, on every node
    timeline: Timeline
    budget: DisruptionBudget | None


async def crash(cluster: Cluster, after: float) -> FaultReport:
    await asyncio.sleep(after)
    report = FaultReport(CRASH, cluster.timeline.now())
    candidates = [
        pod
        for replica_set in cluster.controller.old
        for pod in replica_set.active()
        if pod.ready and pod.container is not None and pod.container.is_alive()
    ]
    if not candidates:
        report.note = "no ready old pod left to kill"
        return report
    pod = candidates[0]
    report.pods = [pod.name]
    report.open_connections = cluster.service.open_connections(pod.name)
    await pod.kill_container("SIGKILL to the container (fault)")
    return report


def healthy_pods(cluster: Cluster) -> int:
    """Ready pods not being deleted: what a PodDisruptionBudget counts."""
    return sum(pod.ready for pod in cluster.controller.pods() if not pod.terminating)


async def node_drain(cluster: Cluster, after: float) -> FaultReport:
    await asyncio.sleep(after)
    report = FaultReport(NODE_DRAIN, cluster.timeline.now())
    budget = cluster.budget
    for pod in [p for p in cluster.controller.pods() if not p.terminating and not p.gone]:
        while not pod.terminating:
            expected = cluster.controller.spec.replicas
            allowed = budget is None or budget.allows_eviction(
                pod.ready, budget.status(expected, healthy_pods(cluster))
            )
            if allowed:
                cluster.timeline.record(pod.name, PodEvent.EVICTED, "node drain")
                pod.delete()
                report.pods.append(pod.name)
                break
            report.refused += 1
            cluster.timeline.record(
                "node drain", "eviction refused", f"{pod.name}: PodDisruptionBudget {budget.name}"
            )
            await asyncio.sleep(EVICTION_RETRY_SECONDS)
    return report


async def slow_request(cluster: Cluster, seconds: float) -> FaultReport:
    report = FaultReport(SLOW_REQUEST, cluster.timeline.now())
    reader, writer = await cluster.service.open_connection(0)  # sent from node 0
    port = writer.get_extra_info("sockname")[1]
    try:
        writer.write(httpclient.request(f"/status?delay={seconds:g}", "service", False))
        response = await asyncio.wait_for(httpclient.read_response(reader), seconds + 60)
        report.outcome = OK if response.status == 200 else f"http {response.status}"
    except (OSError, TimeoutError, asyncio.IncompleteReadError, httpclient.CutMidResponse) as error:
        report.outcome = classify(error)
    finally:
        writer.close()
    report.seconds = cluster.timeline.now() - report.at
    pod = cluster.service.pod_of(0, port)
    if pod:
        report.pods = [pod]
        report.deleted_while_running = any(
            event.source == pod
            and event.kind == PodEvent.TERMINATING
            and report.at <= event.t <= report.at + report.seconds
            for event in cluster.timeline.events
        )
    return report


def start(cluster: Cluster, faults: Faults) -> list[asyncio.Task]:
    """Start the faults asked for; each task returns its FaultReport."""
    loop = asyncio.get_running_loop()
    tasks = []
    if faults.slow_request is not None:
        tasks.append(loop.create_task(slow_request(cluster, faults.slow_request)))
    if faults.kill_at is not None:
        tasks.append(loop.create_task(crash(cluster, faults.kill_at)))
    if faults.evict_at is not None:
        tasks.append(loop.create_task(node_drain(cluster, faults.evict_at)))
    return tasks

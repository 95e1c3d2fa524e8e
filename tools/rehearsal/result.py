"""What a rehearsal found: every request, every event, every pod, and the figures derived."""

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property

from tools.rehearsal.cluster.autoscaling.pipeline import AutoscalingSummary
from tools.rehearsal.cluster.deployment import DeploymentController, Resize
from tools.rehearsal.cluster.edge.proxy import EdgeSummary
from tools.rehearsal.cluster.faults import FaultReport
from tools.rehearsal.cluster.network.view import ViewSummary
from tools.rehearsal.cluster.node.shutdown import ServerStop
from tools.rehearsal.cluster.rollouts.analysis import AnalysisRun
from tools.rehearsal.cluster.rollouts.controller import RolloutController
from tools.rehearsal.manifests.workload import Workload
from tools.rehearsal.options import Options
from tools.rehearsal.report.traces import FailureTrace
from tools.rehearsal.timeline import Event
from tools.rehearsal.traffic.outcomes import OK, RequestRecord, connections


@dataclass(frozen=True)
class FailureChance:
    """The requests an aborted release could have failed: their expectation, its standard
    deviation, and the bound three of them above (plus one)."""

    expected: float
    deviation: float

    @property
    def bound(self) -> int:
        return 0 if self.expected == 0 else math.ceil(self.expected + 3 * self.deviation + 1)


@dataclass
class PodSummary:
    name: str
    version: str
    address: str
    restarts: int
    exit_codes: list[int]
    exit_reasons: list[str]


@dataclass
class ReplicaSetSummary:
    name: str
    version: str
    owner: str  # Deployment or Rollout
    resizes: list[Resize]  # its spec.replicas over time
    pods: list[str]


def replica_set_summaries(controller: DeploymentController) -> list[ReplicaSetSummary]:
    """Every ReplicaSet of the workload's controller, and of the Deployment a Rollout adopts."""
    controllers = [controller]
    if isinstance(controller, RolloutController) and controller.workload:
        controllers.insert(0, controller.workload)
    return [
        ReplicaSetSummary(
            rs.name,
            rs.template.version,
            "Rollout" if isinstance(owner, RolloutController) else "Deployment",
            list(rs.resizes),
            [pod.name for pod in rs.pods],
        )
        for owner in controllers
        for rs in owner.replica_sets
    ]


@dataclass
class Result:
    name: str
    source: Workload
    target: Workload
    options: Options
    runtime: str
    records: list[RequestRecord]  # started: seconds since the run's start
    events: list[Event]
    pods: list[PodSummary]
    capacity: float | None
    rate: float
    load_started: float
    steady_started: float  # the load runs at `rate` from here
    rollout_started: float
    rollout_completed: float | None
    rollout_failed: str
    settled: float  # old pods gone or unreachable
    startup_seconds: float  # the fastest pod: creation to ready
    final_versions: list[str]
    proxy_no_endpoint: int
    proxy_backend_failed: int
    failure_traces: list[FailureTrace] = field(default_factory=list)
    faults: list[FaultReport] = field(default_factory=list)
    aborted: str = ""  # why Argo Rollouts aborted the rollout; "" when it did not
    analyses: list[AnalysisRun] = field(default_factory=list)
    views: list[ViewSummary] = field(default_factory=list)  # every Service's view on every node
    notes: list[str] = field(default_factory=list)
    edge: EdgeSummary | None = None  # the exposure's proxy, when the users came through one
    replica_sets: list[ReplicaSetSummary] = field(default_factory=list)
    autoscaling: AutoscalingSummary | None = None  # the HPA, when it ran
    final_replicas: int | None = None  # the workload's spec.replicas at the end
    server_stops: list[ServerStop] = field(default_factory=list)  # each deleted pod's server

    @property
    def failed(self) -> list[RequestRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def rollout_duration(self) -> float | None:
        return (
            None
            if self.rollout_completed is None
            else self.rollout_completed - self.rollout_started
        )

    @property
    def lower_bound(self) -> float:
        """Waves x (the fastest pod start-up seen in this run + minReadySeconds); for a
        Rollout, one wave per weight step (blue-green: one), plus its pauses and the time its
        analyses took."""
        wave = self.startup_seconds + self.target.deployment.min_ready_seconds
        if self.target.rollout is not None:
            steps = getattr(self.target.rollout.strategy, "steps", ())
            pauses = sum(step.pause for step in steps if step.pause and step.pause != math.inf)
            return self.waves * wave + pauses + sum(run.seconds for run in self.analyses)
        return self.waves * wave

    @property
    def waves(self) -> int:
        """How many times the rollout waits for new pods to become available."""
        deployment = self.target.deployment
        if self.target.rollout is not None:
            steps = getattr(self.target.rollout.strategy, "steps", ())
            return max(1, sum(step.weight is not None for step in steps))
        if deployment.strategy_type == "Recreate":
            return 1
        # The count the rollout ended at (an HPA may have changed it on the way).
        replicas = self.final_replicas or deployment.replicas
        scaled = replace(deployment, replicas=replicas)
        return scaled.fenceposts.waves(replicas)

    @property
    def new_version_exposure(self) -> float:
        """Seconds x the new version's share of the users' Service's endpoints, from the start
        of the rollout to the end of the run: how much of the traffic it could take. Each node
        routes by its own view: its share is weighted by the requests that entered there."""
        entered = Counter(r.node for r in self.exposed_records)
        total = 0.0
        for node, count in entered.items():
            spans = [*self.view_history(node), (self.settled, ())]
            for (start, pods), (end, _) in zip(spans, spans[1:], strict=False):
                start, end = max(start, self.rollout_started), min(end, self.settled)
                if end > start:
                    total += count / entered.total() * (end - start) * self.new_share(pods)
        return total

    @property
    def failure_bound(self) -> int:
        return self.failure_chance.bound

    @cached_property
    def failure_chance(self) -> FailureChance:
        """How many requests the new version could have failed. Each node's rules pick a pod
        when a connection opens, and the connection keeps it for all its requests: a
        connection opened while the new version had a share p of its node's view goes there
        with probability p, carrying its n requests. Every one may fail: the expectation is
        sum(p n), the variance sum(p (1 - p) n^2)."""
        expected = variance = 0.0
        for connection in connections(self.records):  # those opened before it have p = 0
            p = self.new_share(self.routable_at(connection.node, connection.opened))
            expected += p * connection.requests
            variance += p * (1 - p) * connection.requests**2
        return FailureChance(expected, math.sqrt(variance))

    @property
    def exposed_records(self) -> list[RequestRecord]:
        """The requests sent between the start of the rollout and the end of the run."""
        return [r for r in self.records if self.rollout_started <= r.started <= self.settled]

    @cached_property
    def view_histories(self) -> dict[int, tuple[tuple[float, tuple[str, ...]], ...]]:
        """Each node's (run seconds, pods a new connection could go to) in the users'
        Service."""
        return {
            view.node: view.history
            for view in self.views
            if view.service == self.target.service.name
        }

    def view_history(self, node: int) -> tuple[tuple[float, tuple[str, ...]], ...]:
        """`node`'s, or node 0's for an entry point with no view of its own (the edge's)."""
        return self.view_histories.get(node, self.view_histories.get(0, ()))

    def routable_at(self, node: int, t: float) -> tuple[str, ...]:
        history = self.view_history(node)
        index = bisect.bisect_right(history, t, key=lambda change: change[0])
        return history[index - 1][1] if index else ()

    @cached_property
    def versions(self) -> dict[str, str]:
        """Each pod's version, by its name."""
        return {pod.name: pod.version for pod in self.pods}

    def new_share(self, pods: tuple[str, ...]) -> float:
        new = self.target.deployment.template.version
        return sum(self.versions.get(pod) == new for pod in pods) / len(pods) if pods else 0.0

    @property
    def aborted_as_designed(self) -> bool:
        """Argo Rollouts stopped the release, and it cost no more than its exposure."""
        return bool(self.aborted) and len(self.failed) <= self.failure_bound

    @property
    def ok(self) -> bool:
        slow_requests_answered = all(f.outcome in ("", OK) for f in self.faults)
        return not self.failed and self.rollout_completed is not None and slow_requests_answered

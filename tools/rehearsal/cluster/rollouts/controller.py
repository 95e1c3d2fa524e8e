"""The Argo Rollouts controller, emulated for blueGreen and basic (replica-weight) canary.

It drives ReplicaSets and pods as the Deployment controller does, with Argo Rollouts' rules,
split as argo-rollouts v1.9.1 splits them: this file is rollout/controller.go and sync.go (the
reconcile, stable promotion, abort, the Healthy phase, the workloadRef'd Deployment);
bluegreen.py is rollout/bluegreen.go, canary.py rollout/canary.go with utils/replicaset/canary.go,
service.py rollout/service.go (which Service selects which ReplicaSet, and when), replicaset.py
rollout/replicaset.go (delayed scale-downs, the adopted Deployment's scale-down), scale.py the
scale subresource an HPA reads and writes, analysis.py the analysis runs.

A Rollout's ReplicaSets carry Argo Rollouts' own pod-template hash (rollouts-pod-template-hash,
computed from the Rollout's template), never the Deployment's: a Service switched to a Rollout
ReplicaSet selects none of a Deployment's pods. Services' selectors change through `route`; each
change reaches the emulated Service after the propagation delay.
"""

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace

from tools.rehearsal.cluster.deployment import DeploymentController, ReplicaSet
from tools.rehearsal.cluster.rollouts.bluegreen import BlueGreenMixin
from tools.rehearsal.cluster.rollouts.canary import CanaryMixin
from tools.rehearsal.cluster.rollouts.replicaset import (
    NEVER,
    ReplicaSetMixin,
)
from tools.rehearsal.cluster.rollouts.scale import RolloutStatus, ScaleMixin
from tools.rehearsal.cluster.rollouts.service import ServiceMixin
from tools.rehearsal.manifests.deployment import Deployment
from tools.rehearsal.manifests.pod import PodTemplate
from tools.rehearsal.manifests.rollout import Analysis, BlueGreen, Rollout

# Argo Rollouts' rollouts-pod-template-hash selector of a managed Service: (name, hash).
Route = Callable[[str, str], None]
# Runs an analysis against a Service; True when it passed.
Analyse = Callable[[Analysis, str], Awaitable[bool]]


def rollout_template(template: PodTemplate) -> PodTemplate:
    """The pod template as a Rollout's ReplicaSet has it: its own pod-template hash."""
    digest = hashlib.sha256(f"Rollout {template.template_hash}".encode()).hexdigest()[:10]
    return replace(template, template_hash=digest)


class RolloutController(
    ScaleMixin, BlueGreenMixin, CanaryMixin, ServiceMixin, ReplicaSetMixin, DeploymentController
):
    def __init__(
        self,
        *args,
        rollout: Rollout,
        route: Route,
        analyse: Analyse,
        workload: DeploymentController | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rollout = rollout
        self.route = route
        self.analyse = analyse
        # The emulated Deployment controller of the workloadRef'd Deployment, whose running pods
        # this Rollout adopts (None: no Deployment runs beside the Rollout).
        self.workload = workload
        self.stable: ReplicaSet | None = None
        self.selectors: dict[str, str] = {}  # managed Service -> the hash it selects
        self.scale_down_at: dict[str, float] = {}  # ReplicaSet -> its scale-down deadline
        self.revision = 0  # of the new ReplicaSet: 1 is the Rollout's first
        self.aborted_at: float | None = None
        self.abort_reason = ""
        self.promotable = False  # blue-green: the active Service may move to the new pods
        self.step = 0  # canary: the index of the current step
        self.pause_started: float | None = None
        self.analysis: asyncio.Task | None = None
        self.analysis_at = ""  # where the analysis runs: "pre-promotion", "step 2"
        self.passed: set[str] = set()  # where analyses passed in this rollout
        self.status = RolloutStatus()  # as the last reconcile persisted it

    def apply(self, deployment: Deployment) -> None:
        """Apply the Rollout's manifest (spec.replicas kept as DeploymentController.apply keeps
        it)."""
        known = {rs.template.template_hash for rs in self.replica_sets}
        spec = replace(deployment, template=rollout_template(deployment.template))
        super().apply(spec)
        if spec.template.template_hash not in known:
            self.revision += 1
        # A new rollout: the stable ReplicaSet stays (after an abort too).
        self.scale_down_at.pop(self.new.name, None)  # removeScaleDownDeadlines
        self.aborted_at = self.pause_started = None
        self.abort_reason = ""
        self.promotable = False
        self.step = 0
        self.analysis = None
        self.passed = set()

    async def stop(self) -> None:
        await super().stop()
        if self.workload is not None:
            await self.workload.stop()

    # -- what the run reads --------------------------------------------------------------------

    @property
    def aborted(self) -> bool:
        return self.aborted_at is not None

    def others(self) -> list[ReplicaSet]:
        """The ReplicaSets that are neither new nor stable (otherRSs)."""
        return [rs for rs in self.old if rs is not self.stable]

    def pods(self):
        """Every pod a Service may select: the Rollout's and the adopted Deployment's."""
        adopted = self.workload.pods() if self.workload is not None else []
        return super().pods() + adopted

    def old_pods(self):
        """Pods the rollout takes out of service: every ReplicaSet's but the new one, and the
        adopted Deployment's unless its scaleDown is never (then they keep serving)."""
        pods = [pod for rs in self.old for pod in rs.pods]
        ref = self.rollout.workload_ref
        if self.workload is not None and ref is not None and ref.scale_down != NEVER:
            pods += self.workload.pods()
        return pods

    def healthy(self) -> bool:
        """CalculateRolloutPhase == Healthy: every pod updated and available, no older pod
        (basic canary), the stable ReplicaSet the new one, blue-green's active Service on it."""
        new = self.new
        if new is not self.stable or not self.saturated(new):
            return False
        strategy = self.rollout.strategy
        if isinstance(strategy, BlueGreen):
            return self.selectors.get(strategy.active_service) == new.template.template_hash
        return all(not rs.active() for rs in self.others())

    # -- reconciliation ------------------------------------------------------------------------

    def reconcile_strategy(self) -> None:
        if self.stable is None:
            self.stable = self.new  # shouldFullPromote: "Initial deploy"
        old_scale = self.new.replicas
        strategy = self.rollout.strategy
        if isinstance(strategy, BlueGreen):
            self.reconcile_blue_green(strategy)
        else:
            self.reconcile_canary(strategy)
        self.reconcile_workload_ref(old_scale)
        active = (
            self.selectors.get(strategy.active_service) if isinstance(strategy, BlueGreen) else None
        )
        self.persist_status(active)

    def scale(self, rs: ReplicaSet, replicas: int) -> bool:
        """scaleReplicaSetAndRecordEvent; True if the size changed."""
        if rs.replicas == replicas:
            return False
        self._scale(rs, replicas)
        return True

    def scale_deployment(self, replicas: int) -> None:
        """scaleDeployment (rollout/scale_utils.go): the workloadRef'd Deployment's replicas."""
        workload = self.workload
        replicas = max(0, replicas)
        if workload is None or workload.spec.replicas == replicas:
            return
        self.timeline.record(
            "rollout",
            "scaled Deployment",
            f"{workload.spec.name} {workload.spec.replicas} -> {replicas}",
        )
        workload.spec = replace(workload.spec, replicas=replicas)
        workload.wake.set()

    def promote_stable(self) -> None:
        """promoteStable: the new ReplicaSet becomes the stable one."""
        if self.stable is not self.new:
            self.stable = self.new
            self.timeline.record("rollout", "promoted", f"{self.new.name} is stable")

    def complete_rollout(self) -> None:
        if self.completed_at is None:
            self.completed_at = self.timeline.now()
            self.timeline.record(
                "rollout", "rollout complete", f"{self.spec.replicas} x {self.new.template.version}"
            )

    def complete(self) -> bool:
        return self.completed_at is not None

    def abort(self, reason: str) -> None:
        if self.aborted_at is None:
            self.aborted_at = self.timeline.now()
            self.abort_reason = reason
            self.failed_reason = f"aborted: {reason}"
            self.timeline.record("rollout", "aborted", reason)

    def run_analysis(self, analysis: Analysis, service: str, where: str) -> bool | None:
        """Start the analysis once; None while it runs, then whether it passed."""
        if where in self.passed:
            return True
        if self.analysis is None:
            self.analysis_at = where
            self.timeline.record("rollout", "analysis started", f"{where}, against {service}")
            self.analysis = asyncio.get_running_loop().create_task(self.analyse(analysis, service))
            self.analysis.add_done_callback(lambda _: self.wake.set())
        if not self.analysis.done():
            return None
        passed = self.analysis.result()
        self.timeline.record("rollout", "analysis passed" if passed else "analysis failed", where)
        if passed:
            self.passed.add(where)
        self.analysis = None
        return passed

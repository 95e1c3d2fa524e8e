"""The Deployment and ReplicaSet controllers, emulated (kubernetes pkg/controller/deployment).

Each pass does what syncDeployment (deployment_controller.go) does: a scaling event (the
Deployment's replicas changed, by `kubectl scale`, an apply or an autoscaler) is reconciled by
sync.go's scale, which shares the new size out among the ReplicaSets in proportion; otherwise the
strategy's rollout step runs. RollingUpdate follows reconcileNewReplicaSet /
reconcileOldReplicaSets: the new ReplicaSet grows while all pods stay within replicas + maxSurge;
old ReplicaSets shrink (unhealthy pods first) while available pods stay at least replicas -
maxUnavailable. A pod is available once it has been ready for minReadySeconds. No progress for
progressDeadlineSeconds fails the rollout (ProgressDeadlineExceeded); the old pods keep running,
as in Kubernetes. The arithmetic is deployment_util.py's; this module applies it.
"""

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tools.rehearsal.cluster.autoscaling.target import Scale
from tools.rehearsal.cluster.deployment_util import (
    DeploymentStatus,
    by_creation,
    deployment_complete,
    deployment_progressing,
    filter_active,
    is_scaling_event,
    reconcile_new_replica_set,
    reconcile_old_replica_sets,
    scale,
    set_replicas_annotations,
)
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.manifests.deployment import Deployment
from tools.rehearsal.manifests.pod import PodTemplate
from tools.rehearsal.timeline import PodEvent, Timeline

RESYNC_SECONDS = 0.05


@dataclass(frozen=True)
class Resize:
    """The ReplicaSet's spec.replicas from `t` (run seconds) on."""

    t: float
    replicas: int


@dataclass
class ReplicaSet:
    name: str
    template: PodTemplate
    replicas: int = 0
    pods: list[Pod] = field(default_factory=list)
    created_at: float = 0.0  # creationTimestamp, in run seconds
    # The deployment.kubernetes.io/desired-replicas and max-replicas annotations: the Deployment's
    # replicas (and those plus maxSurge) when the controller created or last sized this one.
    desired_replicas: int | None = None
    max_replicas: int | None = None
    resizes: list[Resize] = field(default_factory=list)  # for the report

    def active(self) -> list[Pod]:
        return [p for p in self.pods if not p.terminating and not p.gone]

    def available(self, min_ready_seconds: float) -> int:
        return sum(p.available(min_ready_seconds) for p in self.active())


def deletion_rank(pod: Pod) -> tuple:
    """ReplicaSet scale-down order: not-ready pods first, then the most recently ready."""
    return (pod.ready, -(pod.ready_since or 0.0), -pod.created_at)


class DeploymentController:
    kind = "Deployment"  # what an autoscaler's scaleTargetRef names (autoscaling.ScaleTarget)

    def __init__(
        self,
        timeline: Timeline,
        make_pod: Callable[[str, PodTemplate], Pod],
        rng: random.Random,
    ) -> None:
        self.timeline = timeline
        self.make_pod = make_pod
        self.rng = rng
        self.spec: Deployment | None = None
        self.applied: Deployment | None = None  # the manifest's record, as last applied
        self.replica_sets: list[ReplicaSet] = []  # the last is the new one
        self.wake = asyncio.Event()
        self.failed_reason = ""
        self.completed_at: float | None = None
        self.available_seen: set[str] = set()
        self._last_status: DeploymentStatus | None = None  # at the last progress check
        self._last_progress = 0.0
        self._task: asyncio.Task | None = None

    # -- API ---------------------------------------------------------------------------------

    def apply(self, deployment: Deployment) -> None:
        """Like `kubectl apply` of a new Deployment spec: start (or continue) a rollout.
        spec.replicas stays what it is (an HPA's count) unless the manifest's own replicas
        changed, as `kubectl apply`'s three-way merge does; Argo CD keeps it in any case
        (ignoreDifferences on /spec/replicas with RespectIgnoreDifferences,
        argocd/application.yaml)."""
        applied = deployment
        if self.applied is not None and self.applied.replicas == deployment.replicas:
            deployment = replace(deployment, replicas=self.spec.replicas)
        self.applied = applied
        self.spec = deployment
        self.completed_at = None
        self.failed_reason = ""
        template = deployment.template
        existing = next(
            (rs for rs in self.replica_sets if rs.template.template_hash == template.template_hash),
            None,
        )
        if existing is None:
            name = f"{deployment.name}-{template.template_hash[:10]}"
            existing = ReplicaSet(name, template, created_at=self.timeline.now())
            set_replicas_annotations(existing, deployment)  # getNewReplicaSet, at its creation
            self.timeline.record("deployment", "new ReplicaSet", f"{name} ({template.version})")
        else:
            self.replica_sets.remove(existing)
        self.replica_sets.append(existing)
        self._last_progress = self.timeline.now()
        self._last_status = None
        self.wake.set()

    def get_scale(self) -> Scale:
        """GET of the Deployment's scale subresource."""
        return Scale(self.spec.replicas, self.deployment_status().replicas)

    def update_scale(self, replicas: int) -> None:
        """PUT of the scale subresource (`kubectl scale`, an autoscaler): spec.replicas changes,
        nothing else; the controller then sees a scaling event."""
        if replicas < 0:
            raise ValueError(f"spec.replicas must not be negative, got {replicas}")
        if replicas == self.spec.replicas:
            return
        self.timeline.record(
            "deployment", "scale", f"spec.replicas {self.spec.replicas} -> {replicas}"
        )
        self.spec = replace(self.spec, replicas=replicas)
        self.wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def new(self) -> ReplicaSet:
        return self.replica_sets[-1]

    @property
    def old(self) -> list[ReplicaSet]:
        return self.replica_sets[:-1]

    def pods(self) -> list[Pod]:
        return [pod for rs in self.replica_sets for pod in rs.pods]

    def deployment_status(self) -> DeploymentStatus:
        """calculateStatus (sync.go): the pods that are not terminating, of every ReplicaSet."""
        active = [pod for rs in self.replica_sets for pod in rs.active()]
        min_ready = self.spec.min_ready_seconds
        return DeploymentStatus(
            replicas=len(active),
            updated_replicas=len(self.new.active()),
            ready_replicas=sum(pod.ready for pod in active),
            available_replicas=sum(pod.available(min_ready) for pod in active),
        )

    def complete(self) -> bool:
        return deployment_complete(self.spec, self.deployment_status())

    # -- reconciliation ---------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            # Cleared before the pass: what the pass changes (a ReplicaSet resized) wakes the next
            # one at once, as the ReplicaSet's update requeues the Deployment.
            self.wake.clear()
            self.reconcile()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation (stop())
            # that arrives as the event is set.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESYNC_SECONDS):
                    await self.wake.wait()

    def reconcile(self) -> None:
        if self.spec is None:
            return
        self.reconcile_strategy()
        for rs in self.replica_sets:
            self._sync_replica_set(rs)
        self._record_availability()
        self._check_progress()

    def reconcile_strategy(self) -> None:
        """syncDeployment: a scaling event is sync's (this pass does nothing else); otherwise the
        strategy's rollout step. (Argo Rollouts' controller overrides.)"""
        if is_scaling_event(self.spec, self.replica_sets):
            self._sync()
        elif self.spec.strategy_type == "Recreate":
            self._recreate()
        else:
            self._rolling_update()

    def _sync(self) -> None:
        """sync (sync.go): scale the ReplicaSets to the Deployment's new size."""
        spec = self.spec
        scaling = scale(
            spec, self.new, self.old, spec.min_ready_seconds, self.deployment_status().replicas
        )
        if scaling.how == "proportional":
            self.timeline.record("deployment", "proportional scale", scaling.describe())
            for share in scaling.shares:  # scaleReplicaSet: each one's annotations too
                self._scale_replica_set(share.replica_set, share.after)
        else:
            for share in scaling.shares:
                self._scale(share.replica_set, share.after)

    def _scale(self, rs: ReplicaSet, replicas: int) -> None:
        """scaleReplicaSetAndRecordEvent: nothing to do at the same size."""
        if replicas != rs.replicas:
            self._scale_replica_set(rs, replicas)

    def _scale_replica_set(self, rs: ReplicaSet, replicas: int) -> None:
        """scaleReplicaSet (sync.go): the ReplicaSet's size, and its replica annotations set to the
        Deployment's current size."""
        changed = set_replicas_annotations(rs, self.spec)
        if replicas != rs.replicas:
            direction = "up" if replicas > rs.replicas else "down"
            self.timeline.record(
                "deployment", f"scaled {direction}", f"{rs.name} {rs.replicas} -> {replicas}"
            )
            rs.replicas = replicas
            rs.resizes.append(Resize(self.timeline.now(), replicas))
            self._sync_replica_set(rs)
            changed = True
        if changed:
            self.wake.set()

    def _rolling_update(self) -> None:
        """rolloutRolling (rolling.go): scale the new ReplicaSet up if it may; only in a pass where
        it did not change, scale old ones down."""
        spec, new = self.spec, self.new
        size = reconcile_new_replica_set(spec, self.replica_sets, new)
        if size != new.replicas:
            self._scale(new, size)
            return
        old = filter_active(by_creation(self.old))
        min_ready = spec.min_ready_seconds
        for resize in reconcile_old_replica_sets(spec, self.replica_sets, old, new, min_ready):
            self._scale(resize.replica_set, resize.replicas)

    def _recreate(self) -> None:
        """rolloutRecreate (recreate.go): old ReplicaSets to zero; once their pods are gone, the new
        one to the full size."""
        for rs in self.old:
            self._scale(rs, 0)
        if all(not rs.pods or all(p.gone for p in rs.pods) for rs in self.old):
            self._scale(self.new, self.spec.replicas)

    def _sync_replica_set(self, rs: ReplicaSet) -> None:
        active = rs.active()
        for _ in range(rs.replicas - len(active)):
            pod = self.make_pod(f"{rs.name}-{self._suffix()}", rs.template)
            rs.pods.append(pod)
            pod.start()
        if len(active) > rs.replicas:
            for pod in sorted(active, key=deletion_rank)[: len(active) - rs.replicas]:
                pod.delete()

    def _suffix(self) -> str:
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))

    def _record_availability(self) -> None:
        for pod in self.pods():
            if pod.name not in self.available_seen and pod.available(self.spec.min_ready_seconds):
                self.available_seen.add(pod.name)
                self.timeline.record(pod.name, PodEvent.AVAILABLE)

    def _check_progress(self) -> None:
        """syncRolloutStatus (progress.go): complete once DeploymentComplete holds; failed after
        progressDeadlineSeconds without DeploymentProgressing (more updated, ready or available
        pods, or fewer old ones)."""
        spec = self.spec
        if self.completed_at is not None or self.failed_reason:
            return
        status = self.deployment_status()
        now = self.timeline.now()
        if self._last_status is None or deployment_progressing(self._last_status, status):
            self._last_progress = now
        self._last_status = status
        if self.complete():
            self.completed_at = now
            self.timeline.record(
                "deployment", "rollout complete", f"{spec.replicas} x {self.new.template.version}"
            )
        elif now - self._last_progress > spec.progress_deadline_seconds:
            self.failed_reason = "ProgressDeadlineExceeded"
            self.timeline.record(
                "deployment",
                "rollout failed",
                f"ProgressDeadlineExceeded: no progress for {spec.progress_deadline_seconds:g}s",
            )

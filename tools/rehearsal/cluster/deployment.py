"""The Deployment and ReplicaSet controllers, emulated (pkg/controller/deployment semantics).

RollingUpdate follows reconcileNewReplicaSet / reconcileOldReplicaSets: the new ReplicaSet grows
while all pods stay within replicas + maxSurge; old ReplicaSets shrink (unhealthy pods first)
while available pods stay at least replicas - maxUnavailable. A pod is available once it has
been ready for minReadySeconds. No progress for progressDeadlineSeconds fails the rollout
(ProgressDeadlineExceeded); the old pods keep running, as in Kubernetes.
"""

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.manifests.deployment import Deployment
from tools.rehearsal.manifests.pod import PodTemplate
from tools.rehearsal.timeline import PodEvent, Timeline

RESYNC_SECONDS = 0.05


@dataclass
class ReplicaSet:
    name: str
    template: PodTemplate
    replicas: int = 0
    pods: list[Pod] = field(default_factory=list)

    def active(self) -> list[Pod]:
        return [p for p in self.pods if not p.terminating and not p.gone]

    def available(self, min_ready_seconds: float) -> int:
        return sum(p.available(min_ready_seconds) for p in self.active())


def deletion_rank(pod: Pod) -> tuple:
    """ReplicaSet scale-down order: not-ready pods first, then the most recently ready."""
    return (pod.ready, -(pod.ready_since or 0.0), -pod.created_at)


class DeploymentController:
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
        self.replica_sets: list[ReplicaSet] = []  # oldest first; the last is the new one
        self.wake = asyncio.Event()
        self.failed_reason = ""
        self.completed_at: float | None = None
        self.available_seen: set[str] = set()
        self._progress: tuple | None = None
        self._last_progress = 0.0
        self._task: asyncio.Task | None = None

    # -- API ---------------------------------------------------------------------------------

    def apply(self, deployment: Deployment) -> None:
        """Like `kubectl apply` of a new Deployment spec: start (or continue) a rollout."""
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
            existing = ReplicaSet(name, template)
            self.timeline.record("deployment", "new ReplicaSet", f"{name} ({template.version})")
        else:
            self.replica_sets.remove(existing)
        self.replica_sets.append(existing)
        self._last_progress = self.timeline.now()
        self._progress = None
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

    def complete(self) -> bool:
        spec = self.spec
        return (
            self.new.replicas == spec.replicas
            and self.new.available(spec.min_ready_seconds) == spec.replicas
            and all(rs.replicas == 0 and not rs.active() for rs in self.old)
        )

    # -- reconciliation ---------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self.reconcile()
            self.wake.clear()
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
        """Scale the ReplicaSets as the strategy says (Argo Rollouts' controller overrides)."""
        if self.spec.strategy_type == "Recreate":
            self._recreate()
        else:
            self._rolling_update()

    def _scale(self, rs: ReplicaSet, replicas: int) -> None:
        if replicas != rs.replicas:
            direction = "up" if replicas > rs.replicas else "down"
            self.timeline.record(
                "deployment", f"scaled {direction}", f"{rs.name} {rs.replicas} -> {replicas}"
            )
            rs.replicas = replicas
            self._sync_replica_set(rs)

    def _rolling_update(self) -> None:
        spec, new = self.spec, self.new
        fenceposts = spec.fenceposts
        max_unavailable = min(fenceposts.max_unavailable, spec.replicas)
        # reconcileNewReplicaSet
        if new.replicas > spec.replicas:
            self._scale(new, spec.replicas)
        elif new.replicas < spec.replicas:
            total = sum(rs.replicas for rs in self.replica_sets)
            room = spec.replicas + fenceposts.max_surge - total
            if room > 0:
                self._scale(new, new.replicas + min(room, spec.replicas - new.replicas))
        # reconcileOldReplicaSets
        if sum(rs.replicas for rs in self.old) == 0:
            return
        min_ready = spec.min_ready_seconds
        min_available = spec.replicas - max_unavailable
        new_unavailable = new.replicas - new.available(min_ready)
        max_scaled_down = (
            sum(rs.replicas for rs in self.replica_sets) - min_available - new_unavailable
        )
        if max_scaled_down <= 0:
            return
        cleaned = 0
        for rs in self.old:  # cleanupUnhealthyReplicas
            unhealthy = rs.replicas - rs.available(min_ready)
            if cleaned >= max_scaled_down or rs.replicas == 0 or unhealthy <= 0:
                continue
            down = min(unhealthy, max_scaled_down - cleaned)
            self._scale(rs, rs.replicas - down)
            cleaned += down
        available = sum(rs.available(min_ready) for rs in self.replica_sets)
        to_scale_down = available - min_available
        for rs in self.old:  # scaleDownOldReplicaSetsForRollingUpdate
            if to_scale_down <= 0:
                break
            down = min(rs.replicas, to_scale_down)
            if down:
                self._scale(rs, rs.replicas - down)
                to_scale_down -= down

    def _recreate(self) -> None:
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
        """DeploymentProgressing: more updated, ready or available pods, or fewer old ones."""
        spec, new = self.spec, self.new
        if self.completed_at is not None or self.failed_reason:
            return
        status = (
            len(new.active()),
            sum(p.ready for p in new.active()),
            new.available(spec.min_ready_seconds),
            -sum(len(rs.active()) for rs in self.old),
        )
        now = self.timeline.now()
        if self._progress is None or any(
            a > b for a, b in zip(status, self._progress, strict=True)
        ):
            self._last_progress = now
        self._progress = status
        if self.complete():
            self.completed_at = now
            self.timeline.record(
                "deployment", "rollout complete", f"{spec.replicas} x {new.template.version}"
            )
        elif now - self._last_progress > spec.progress_deadline_seconds:
            self.failed_reason = "ProgressDeadlineExceeded"
            self.timeline.record(
                "deployment",
                "rollout failed",
                f"ProgressDeadlineExceeded: no progress for {spec.progress_deadline_seconds:g}s",
            )

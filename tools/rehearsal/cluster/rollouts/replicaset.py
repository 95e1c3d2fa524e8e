"""Argo Rollouts' ReplicaSet rules (argo-rollouts v1.9.1 rollout/replicaset.go,
utils/replicaset/replicaset.go): availability as the Services' switches read it, the delayed
scale-downs (scaleDownDelaySeconds, abortScaleDownDelaySeconds), the older ReplicaSets of a
basic canary, and the scaling of a workloadRef'd Deployment while a Rollout adopts its pods.
"""

from tools.rehearsal.cluster.deployment import ReplicaSet
from tools.rehearsal.cluster.rollouts.scale import RolloutStatus

NEVER, ON_SUCCESS, PROGRESSIVELY = "never", "onsuccess", "progressively"


def fully_available(rs: ReplicaSet, min_ready: float) -> bool:
    """IsReplicaSetAvailable: scaled up, and every replica available."""
    available = rs.available(min_ready)
    return rs.replicas != 0 and available != 0 and rs.replicas <= available


def partially_available(rs: ReplicaSet, min_ready: float) -> bool:
    """IsReplicaSetPartiallyAvailable: at least one pod available."""
    return rs.available(min_ready) > 0


def workload_ref_replicas(
    scale_down: str,
    revision: int,
    rollout_replicas: int,
    status: RolloutStatus,
    old_scale: int,
    new_scale: int,
) -> int | None:
    """The replicas Argo Rollouts gives the workloadRef'd Deployment in this reconcile, None to
    leave them. Only while the new ReplicaSet is the Rollout's first (revision 1), and from the
    status the previous reconcile persisted (phase, readyReplicas), never from the Deployment's
    own count:
    - progressively (rollout/replicaset.go reconcileNewReplicaSet, after #4322): 0 once the
      Rollout is Healthy; before, spec.replicas - status.readyReplicas (floored at 0 by
      rollout/scale_utils.go scaleDeployment) as soon as one Rollout pod is ready, or the new
      ReplicaSet was just scaled down. That is a scale-down to the Rollout's replicas, whatever
      the Deployment held: a Deployment the HPA had taken to 5 drops to 2 when the first of 3
      Rollout pods is ready. And it scales the Deployment back up whenever the Rollout is not
      Healthy, e.g. while an HPA's scale-up of the Rollout brings its new pods up;
    - onsuccess (rollout/sync.go promoteStable): 0 once the Rollout is Healthy;
    - never (or unset): nothing."""
    if revision != 1 or scale_down not in (ON_SUCCESS, PROGRESSIVELY):
        return None
    if status.healthy:
        return 0
    if scale_down == PROGRESSIVELY and (status.ready_replicas > 0 or old_scale > new_scale):
        return max(0, rollout_replicas - status.ready_replicas)
    return None


class ReplicaSetMixin:
    """Methods of RolloutController, as rollout/replicaset.go's are methods of rolloutContext."""

    def saturated(self, rs: ReplicaSet) -> bool:
        """ReadyForPause and annotations.IsSaturated (blue-green): the ReplicaSet at the Rollout's
        full count, every pod available."""
        replicas = self.spec.replicas
        return rs.replicas == replicas and rs.available(self.spec.min_ready_seconds) == replicas

    def reconcile_new_replica_set(self, desired: int, abort_delay: float) -> None:
        """reconcileNewReplicaSet with shouldDelayScaleDownOnAbort (blue-green): after an abort the
        new pods stay up; their scale-down deadline (the scale-down-deadline annotation) is set only
        once the stable ReplicaSet is fully available again, and counts from then. A delay of 0
        leaves them up for good."""
        new, stable = self.new, self.stable
        # abortScaleDownDelaySeconds: 0 (shouldDelayScaleDownOnAbort false): the new pods stay, at
        # spec.replicas like any new ReplicaSet's (NewRSNewReplicas), so an HPA's change resizes
        # them too. Otherwise they keep their size until the deadline (one shorter than the
        # controller's resync period, as here, returns before scaling).
        if self.aborted and stable is not None and stable is not new and abort_delay > 0:
            deadline = self.scale_down_at.get(new.name)
            if deadline is None:
                if stable.available(self.spec.min_ready_seconds) == self.spec.replicas:
                    self.scale_down_at[new.name] = self.timeline.now() + abort_delay
                    self.timeline.record(
                        "rollout",
                        "scale-down deadline",
                        f"{new.name} in {abort_delay:g}s (aborted)",
                    )
                return  # leave the new ReplicaSet scaled up until the deadline is set
            if self.timeline.now() < deadline:
                return
            desired = 0
        self.scale(new, desired)

    def scale_down_old_replica_sets(self, delay: float) -> None:
        """scaleDownOldReplicaSetsForBlueGreen / scaleDownDelayHelper: a ReplicaSet that is
        neither new nor stable, nor selected by a managed Service (isReplicaSetReferenced), gets a
        scale-down deadline `delay` seconds away, keeping its size; until the deadline it is sized
        to spec.replicas (desiredReplicaCount = rolloutReplicas: an HPA's change resizes the
        previous version too), then scaled to zero."""
        referenced = set(self.selectors.values())
        for rs in self.others():
            if rs.replicas == 0 or rs.template.template_hash in referenced:
                continue
            deadline = self.scale_down_at.get(rs.name)
            if deadline is None:
                self.scale_down_at[rs.name] = deadline = self.timeline.now() + delay
                self.timeline.record("rollout", "scale-down deadline", f"{rs.name} in {delay:g}s")
                if deadline > self.timeline.now():
                    continue
            self.scale(rs, 0 if self.timeline.now() >= deadline else self.spec.replicas)

    def scale_down_old_replica_sets_for_canary(self) -> None:
        """reconcileOtherReplicaSets / scaleDownOldReplicaSetsForCanary (basic canary): older
        ReplicaSets lose their unavailable pods first (cleanupUnhealthyReplicas), then, newest
        first, as many pods as keep spec.replicas - maxUnavailable available."""
        others = [rs for rs in self.others() if rs.replicas > 0]
        if not others:
            return
        spec = self.spec
        min_ready = spec.min_ready_seconds
        available = sum(rs.available(min_ready) for rs in self.replica_sets)
        for rs in others:
            self.scale(rs, min(rs.replicas, rs.available(min_ready)))
        fewest_available = spec.replicas - min(spec.fenceposts.max_unavailable, spec.replicas)
        room = available - fewest_available
        for rs in reversed(others):
            if room <= 0:
                break
            if rs.replicas == 0:
                continue
            down = min(rs.replicas, room)
            self.scale(rs, rs.replicas - down)
            room -= down

    def reconcile_workload_ref(self, old_scale: int) -> None:
        """Scale the Deployment a Rollout adopts through workloadRef, while the Rollout's first
        ReplicaSet (revision 1) is the new one; `old_scale` is the new ReplicaSet's size before
        this reconcile."""
        ref, workload = self.rollout.workload_ref, self.workload
        if ref is None or workload is None or workload.spec is None:
            return
        replicas = workload_ref_replicas(
            ref.scale_down,
            self.revision,
            self.spec.replicas,
            self.status,
            old_scale,
            self.new.replicas,
        )
        if replicas is not None:
            self.scale_deployment(replicas)

"""Argo Rollouts' ReplicaSet rules (argo-rollouts v1.9.1 rollout/replicaset.go,
utils/replicaset/replicaset.go): availability as the Services' switches read it, the delayed
scale-downs (scaleDownDelaySeconds, abortScaleDownDelaySeconds), and the scaling of a
workloadRef'd Deployment while a Rollout adopts its pods.
"""

from tools.rehearsal.cluster.deployment import ReplicaSet

NEVER, ON_SUCCESS, PROGRESSIVELY = "never", "onsuccess", "progressively"


def fully_available(rs: ReplicaSet, min_ready: float) -> bool:
    """IsReplicaSetAvailable: scaled up, and every replica available."""
    available = rs.available(min_ready)
    return rs.replicas != 0 and available != 0 and rs.replicas <= available


def partially_available(rs: ReplicaSet, min_ready: float) -> bool:
    """IsReplicaSetPartiallyAvailable: at least one pod available."""
    return rs.available(min_ready) > 0


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
        if self.aborted and stable is not None and stable is not new:
            if abort_delay == 0:
                return
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
        scale-down deadline `delay` seconds away and is scaled to zero when it passes."""
        referenced = set(self.selectors.values())
        for rs in self.others():
            if rs.replicas == 0 or rs.template.template_hash in referenced:
                continue
            deadline = self.scale_down_at.get(rs.name)
            if deadline is None:
                self.scale_down_at[rs.name] = deadline = self.timeline.now() + delay
                self.timeline.record("rollout", "scale-down deadline", f"{rs.name} in {delay:g}s")
            if self.timeline.now() >= deadline:
                self.scale(rs, 0)

    def reconcile_workload_ref(self) -> None:
        """The Deployment a Rollout adopts through workloadRef, scaled as its scaleDown says, only
        while the Rollout's first ReplicaSet (revision 1) is the new one:
        - progressively (rollout/replicaset.go reconcileNewReplicaSet): to replicas minus the
          Rollout's ready pods as they come up, and to zero once the Rollout is Healthy;
        - onsuccess (rollout/sync.go promoteStable): to zero once the Rollout is Healthy;
        - never (or unset): left as it is."""
        ref, workload = self.rollout.workload_ref, self.workload
        if ref is None or workload is None or self.revision != 1 or workload.spec is None:
            return
        if ref.scale_down not in (ON_SUCCESS, PROGRESSIVELY):
            return
        if self.healthy():
            self.scale_deployment(0)
        elif ref.scale_down == PROGRESSIVELY:
            ready = sum(pod.ready for rs in self.replica_sets for pod in rs.active())
            if ready > 0:
                self.scale_deployment(self.spec.replicas - ready)

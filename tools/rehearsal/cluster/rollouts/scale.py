"""The Rollout's scale subresource, which an HPA reads and writes, and the status fields behind it
(argo-rollouts v1.9.1).

The Rollout CRD (manifests/crds/rollout-crd.yaml, subresources.scale) serves spec.replicas
(specReplicasPath), status.HPAReplicas (statusReplicasPath) and status.selector
(labelSelectorPath). The controller writes the two status fields as it ends each reconcile:

- canary (rollout/canary.go syncRolloutStatusCanary, and sync.go syncReplicasOnly on a scaling
  event): HPAReplicas counts the pods of every ReplicaSet of the Rollout
  (GetActualReplicaCountForReplicaSets, the sum of their status.replicas) and the selector is the
  Rollout's spec.selector. The HPA's metrics therefore average canary and stable pods alike
  (argoproj/argo-rollouts#4607). PR #4074 narrowed them to the stable pods for a traffic-routed
  canary, and #4553 reverted it before v1.9.0, so this holds for every canary at v1.9.1.
- blueGreen (rollout/bluegreen.go syncRolloutStatusBlueGreen): once the active Service selects a
  ReplicaSet (status.blueGreen.activeSelector), only that ReplicaSet: its status.replicas and its
  selector, which adds the rollouts-pod-template-hash; the preview pods count for nothing.
  Before the active Service has a hash (the first revision, or a Deployment's Service being
  adopted), as for canary.

The Rollout's spec.selector matches every pod of the app: while a Rollout adopts a Deployment
through workloadRef, the HPA averages the Deployment's pods' metrics too, though HPAReplicas
counts only the Rollout's own pods.
"""

from dataclasses import dataclass, replace

from tools.rehearsal.cluster.autoscaling.target import Scale
from tools.rehearsal.cluster.deployment import ReplicaSet


@dataclass(frozen=True)
class RolloutStatus:
    """What the last reconcile persisted of the Rollout's status, as far as the scale
    subresource and the workloadRef'd Deployment's scale-down read it."""

    hpa_replicas: int = 0  # status.HPAReplicas
    # status.selector: None is the Rollout's spec.selector (every pod of the app); a hash adds
    # rollouts-pod-template-hash (one ReplicaSet's pods).
    selector: str | None = None
    ready_replicas: int = 0  # status.readyReplicas
    healthy: bool = False  # status.phase == Healthy (utils/rollout CalculateRolloutPhase)


def replicas(rs: ReplicaSet) -> int:
    """A ReplicaSet's status.replicas: its pods not being deleted."""
    return len(rs.active())


def ready_replicas(rs: ReplicaSet) -> int:
    """A ReplicaSet's status.readyReplicas."""
    return sum(pod.ready for pod in rs.active())


def rollout_status(
    replica_sets: list[ReplicaSet], active_hash: str | None, healthy: bool
) -> RolloutStatus:
    """calculateBaseStatus with syncRolloutStatusCanary (`active_hash` None) or
    syncRolloutStatusBlueGreen (the active Service's hash, None before it has one)."""
    active = next((rs for rs in replica_sets if rs.template.template_hash == active_hash), None)
    counted = [active] if active is not None else replica_sets
    return RolloutStatus(
        hpa_replicas=sum(replicas(rs) for rs in counted),
        selector=active.template.template_hash if active is not None else None,
        ready_replicas=sum(ready_replicas(rs) for rs in counted),
        healthy=healthy,
    )


class ScaleMixin:
    """The ScaleTarget side of RolloutController (tools/rehearsal/cluster/autoscaling/target.py)."""

    kind = "Rollout"

    def get_scale(self) -> Scale:
        """GET the scale subresource: spec.replicas as it is now, the status as the last
        reconcile persisted it."""
        if self.spec is None:
            raise LookupError("the Rollout has not been applied")
        return Scale(
            spec_replicas=self.spec.replicas,
            status_replicas=self.status.hpa_replicas,
            selector=self.status.selector,
        )

    def update_scale(self, replicas: int) -> None:
        """PUT the scale subresource: spec.replicas, nothing else. The next reconcile sees a
        scaling event (rollout/sync.go isScalingEvent: the new or stable ReplicaSet's
        desired-replicas annotation differs) and resizes the ReplicaSets for the strategy."""
        if self.spec is None:
            raise LookupError("the Rollout has not been applied")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ValueError(f"replicas must be a non-negative integer, got {replicas!r}")
        if replicas != self.spec.replicas:
            self.timeline.record(
                "rollout", "scaled", f"spec.replicas {self.spec.replicas} -> {replicas}"
            )
            self.spec = replace(self.spec, replicas=replicas)
        self.wake.set()

    def persist_status(self, active_hash: str | None) -> None:
        """persistRolloutStatus: the fields above, from the ReplicaSets as they are now."""
        self.status = rollout_status(self.replica_sets, active_hash, self.healthy())

"""Blue-green, as argo-rollouts v1.9.1 rollout/bluegreen.go runs it (rolloutBlueGreen).

The new ReplicaSet comes up in full behind the preview Service; once every new pod is available
the pre-promotion analysis runs against that Service; if it passes (and autoPromotionEnabled)
the active Service switches to the new pods and the old ones get a scale-down deadline
scaleDownDelaySeconds away. A failed analysis aborts: the active Service stays on (or goes back
to) the stable pods, the preview Service stays on the new ones, and those are scaled down
abortScaleDownDelaySeconds after the stable ReplicaSet is fully available again.
"""

from typing import TYPE_CHECKING

from tools.rehearsal.cluster.rollouts import service
from tools.rehearsal.cluster.rollouts.replicaset import (
    reconcile_new_replica_set,
    saturated,
    scale_down_old_replica_sets,
)
from tools.rehearsal.manifests.spec import BlueGreen

if TYPE_CHECKING:
    from tools.rehearsal.cluster.rollouts.controller import RolloutController


def reconcile(ro: "RolloutController", strategy: BlueGreen) -> None:
    replicas = ro.spec.replicas
    service.reconcile_preview_service(ro, strategy)
    # reconcileBlueGreenReplicaSets
    ro.scale(ro.stable, replicas)
    reconcile_new_replica_set(ro, replicas, strategy.abort_scale_down_delay)
    scale_down_old_replica_sets(ro, strategy.scale_down_delay)
    reconcile_pause(ro, strategy)
    service.reconcile_active_service(ro, strategy)
    # syncRolloutStatusBlueGreen: shouldFullPromote once the active Service is on the new pods.
    if ro.selectors.get(strategy.active_service) == ro.new.template.template_hash:
        ro.promote_stable()
    if ro.healthy():
        ro.complete_rollout()


def reconcile_pause(ro: "RolloutController", strategy: BlueGreen) -> None:
    """reconcileBlueGreenPause and the pre-promotion analysis: `promotable` once the analysis
    passed on the saturated new pods and promotion is automatic."""
    if ro.aborted or ro.new is ro.stable or ro.promotable or not saturated(ro, ro.new):
        return
    if strategy.pre_promotion_analysis is not None:
        passed = ro.run_analysis(
            strategy.pre_promotion_analysis, strategy.preview_service, "pre-promotion"
        )
        if passed is None:
            return
        if not passed:
            ro.abort("pre-promotion analysis failed")
            return
    if strategy.auto_promotion:  # else paused until promoted by hand
        ro.promotable = True

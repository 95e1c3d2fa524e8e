"""Blue-green, as argo-rollouts v1.9.1 rollout/bluegreen.go runs it (rolloutBlueGreen).

The new ReplicaSet comes up in full behind the preview Service; once every new pod is available
the pre-promotion analysis runs against that Service; if it passes (and autoPromotionEnabled)
the active Service switches to the new pods and the old ones get a scale-down deadline
scaleDownDelaySeconds away. A failed analysis aborts: the active Service stays on (or goes back
to) the stable pods, the preview Service stays on the new ones, and those are scaled down
abortScaleDownDelaySeconds after the stable ReplicaSet is fully available again.
"""

from tools.rehearsal.manifests.rollout import BlueGreen


class BlueGreenMixin:
    """Methods of RolloutController, as rollout/bluegreen.go's are methods of rolloutContext."""

    def reconcile_blue_green(self, strategy: BlueGreen) -> None:
        replicas = self.spec.replicas
        self.reconcile_preview_service(strategy)
        # reconcileBlueGreenReplicaSets
        self.scale(self.stable, replicas)
        self.reconcile_new_replica_set(replicas, strategy.abort_scale_down_delay)
        self.scale_down_old_replica_sets(strategy.scale_down_delay)
        self.reconcile_pause(strategy)
        self.reconcile_active_service(strategy)
        # syncRolloutStatusBlueGreen: shouldFullPromote once the active Service is on the new pods.
        if self.selectors.get(strategy.active_service) == self.new.template.template_hash:
            self.promote_stable()
        if self.healthy():
            self.complete_rollout()

    def reconcile_pause(self, strategy: BlueGreen) -> None:
        """reconcileBlueGreenPause and the pre-promotion analysis: `promotable` once the analysis
        passed on the saturated new pods and promotion is automatic."""
        if (
            self.aborted
            or self.new is self.stable
            or self.promotable
            or not self.saturated(self.new)
        ):
            return
        if strategy.pre_promotion_analysis is not None:
            passed = self.run_analysis(
                strategy.pre_promotion_analysis, strategy.preview_service, "pre-promotion"
            )
            if passed is None:
                return
            if not passed:
                self.abort("pre-promotion analysis failed")
                return
        if strategy.auto_promotion:  # else paused until promoted by hand
            self.promotable = True

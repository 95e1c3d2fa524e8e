"""Which Service selects which ReplicaSet, and when (argo-rollouts v1.9.1 rollout/service.go).

Argo Rollouts narrows a Service it manages to one ReplicaSet by adding that ReplicaSet's
rollouts-pod-template-hash to the selector (switchServiceSelector). A Service it has not
switched yet selects every pod of the app, the Deployment's too: that is how a Rollout adopting
a running Deployment shares the traffic until it takes the Service over.
"""

from tools.rehearsal.cluster.deployment import ReplicaSet
from tools.rehearsal.cluster.rollouts.replicaset import (
    fully_available,
    partially_available,
)
from tools.rehearsal.manifests.rollout import BlueGreen, Canary


class ServiceMixin:
    """Methods of RolloutController, as rollout/service.go's are methods of rolloutContext."""

    def switch_service_selector(self, name: str, rs: ReplicaSet) -> None:
        """switchServiceSelector: the Service selects `rs`'s pods only."""
        if self.selectors.get(name) != rs.template.template_hash:
            self.selectors[name] = rs.template.template_hash
            self.route(name, rs.template.template_hash)

    def ensure_service_targets(self, name: str | None, rs: ReplicaSet) -> None:
        """ensureSVCTargets (with checkRsAvailability): a Service the Rollout has not switched yet
        (adoption) moves only to a fully available ReplicaSet; one it manages, to a ReplicaSet with
        at least one available pod, never to nothing."""
        if not name or self.selectors.get(name) == rs.template.template_hash:
            return
        min_ready = self.spec.min_ready_seconds
        if name not in self.selectors and not fully_available(rs, min_ready):
            return
        if not partially_available(rs, min_ready):
            return
        self.switch_service_selector(name, rs)

    def reconcile_stable_and_canary_service(self, strategy: Canary) -> None:
        """reconcileStableAndCanaryService (no traffic router): the stable Service follows the
        stable ReplicaSet, the canary Service the new one, or the stable one after an abort."""
        self.ensure_service_targets(strategy.stable_service, self.stable)
        if self.aborted:
            self.ensure_service_targets(strategy.canary_service, self.stable)
            return
        self.ensure_service_targets(strategy.canary_service, self.new)

    def reconcile_preview_service(self, strategy: BlueGreen) -> None:
        """reconcilePreviewService: the preview Service follows the new ReplicaSet as soon as it
        exists, and stays on it after an abort."""
        self.switch_service_selector(strategy.preview_service, self.new)

    def reconcile_active_service(self, strategy: BlueGreen) -> None:
        """reconcileActiveService: nothing moves until the new ReplicaSet is saturated (every pod
        available); then the active Service goes to it if it had no hash yet (fast-tracked: the
        first version, or the adoption of a Deployment's Service) or once promoted, and back to the
        stable ReplicaSet after an abort."""
        new = self.new
        if not self.saturated(new):
            return
        current = self.selectors.get(strategy.active_service)
        target = None
        if current is None or current == new.template.template_hash or self.promotable:
            target = new
        if self.aborted:
            target = self.stable
        if target is not None:
            self.switch_service_selector(strategy.active_service, target)

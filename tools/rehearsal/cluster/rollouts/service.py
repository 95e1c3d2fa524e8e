"""Which Service selects which ReplicaSet, and when (argo-rollouts v1.9.1 rollout/service.go).

Argo Rollouts narrows a Service it manages to one ReplicaSet by adding that ReplicaSet's
rollouts-pod-template-hash to the selector (switchServiceSelector). A Service it has not
switched yet selects every pod of the app, the Deployment's too: that is how a Rollout adopting
a running Deployment shares the traffic until it takes the Service over.
"""

from typing import TYPE_CHECKING

from tools.rehearsal.cluster.deployment import ReplicaSet
from tools.rehearsal.cluster.rollouts.replicaset import (
    fully_available,
    partially_available,
    saturated,
)
from tools.rehearsal.manifests.spec import BlueGreen, Canary

if TYPE_CHECKING:
    from tools.rehearsal.cluster.rollouts.controller import RolloutController


def switch_service_selector(ro: "RolloutController", name: str, rs: ReplicaSet) -> None:
    """switchServiceSelector: the Service selects `rs`'s pods only."""
    if ro.selectors.get(name) != rs.template.template_hash:
        ro.selectors[name] = rs.template.template_hash
        ro.route(name, rs.template.template_hash)


def ensure_service_targets(ro: "RolloutController", name: str | None, rs: ReplicaSet) -> None:
    """ensureSVCTargets (with checkRsAvailability): a Service the Rollout has not switched yet
    (adoption) moves only to a fully available ReplicaSet; one it manages, to a ReplicaSet with
    at least one available pod, never to nothing."""
    if not name or ro.selectors.get(name) == rs.template.template_hash:
        return
    min_ready = ro.spec.min_ready_seconds
    if name not in ro.selectors and not fully_available(rs, min_ready):
        return
    if not partially_available(rs, min_ready):
        return
    switch_service_selector(ro, name, rs)


def reconcile_stable_and_canary_service(ro: "RolloutController", strategy: Canary) -> None:
    """reconcileStableAndCanaryService (no traffic router): the stable Service follows the
    stable ReplicaSet, the canary Service the new one, or the stable one after an abort."""
    ensure_service_targets(ro, strategy.stable_service, ro.stable)
    if ro.aborted:
        ensure_service_targets(ro, strategy.canary_service, ro.stable)
        return
    ensure_service_targets(ro, strategy.canary_service, ro.new)


def reconcile_preview_service(ro: "RolloutController", strategy: BlueGreen) -> None:
    """reconcilePreviewService: the preview Service follows the new ReplicaSet as soon as it
    exists, and stays on it after an abort."""
    switch_service_selector(ro, strategy.preview_service, ro.new)


def reconcile_active_service(ro: "RolloutController", strategy: BlueGreen) -> None:
    """reconcileActiveService: nothing moves until the new ReplicaSet is saturated (every pod
    available); then the active Service goes to it if it had no hash yet (fast-tracked: the
    first version, or the adoption of a Deployment's Service) or once promoted, and back to the
    stable ReplicaSet after an abort."""
    new = ro.new
    if not saturated(ro, new):
        return
    current = ro.selectors.get(strategy.active_service)
    target = None
    if current is None or current == new.template.template_hash or ro.promotable:
        target = new
    if ro.aborted:
        target = ro.stable
    if target is not None:
        switch_service_selector(ro, strategy.active_service, target)

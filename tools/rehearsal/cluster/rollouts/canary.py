"""The basic (replica-weight) canary, as argo-rollouts v1.9.1 runs it: the steps
(rollout/canary.go rolloutCanary) and the replica arithmetic (utils/replicaset/canary.go).

Each setWeight step scales the canary and stable ReplicaSets to the weight within maxSurge and
maxUnavailable (the Service everyone uses selects both, so the canary gets its share of the
requests); pause steps wait; an analysis step runs against the canary Service. A failed analysis
aborts: weight 0, the canary scaled to zero, the stable pods back to full, and the canary Service
back on the stable pods. The counts are those of the current step's weight against spec.replicas
as it is at each reconcile, so a change of spec.replicas (an HPA) resizes both versions at any
point of the release, within maxSurge and maxUnavailable of the new count.
"""

import math
from dataclasses import dataclass

from tools import rollingupdate
from tools.rehearsal.cluster.deployment import ReplicaSet
from tools.rehearsal.manifests.rollout import Canary, CanaryStep


@dataclass
class Counts:
    new: int
    stable: int


def replicas_for_scale_down(rs: ReplicaSet | None, min_ready: float, ignore_availability: bool):
    """GetReplicasForScaleDown."""
    if rs is None:
        return 0
    available = rs.available(min_ready)
    if rs.replicas < available or ignore_availability:
        return rs.replicas
    return available


def approximate_counts(replicas: int, weight: int, max_surge: int) -> Counts:
    """approximateWeightedCanaryStableReplicaCounts: the canary and stable counts closest to
    the weight, over `replicas` pods or, where maxSurge allows, one more; a weight of 1-99 never
    leaves either at zero (unless a single pod cannot surge)."""
    if replicas == 0:
        return Counts(0, 0)
    ceiling = math.ceil(replicas * weight / 100)
    floor = math.floor(replicas * weight / 100)

    def tied(total: int) -> bool:
        return (total * (weight / 100)) % 1 == 0.5

    zero_allowed = weight in (0, 100) or (replicas == 1 and max_surge == 0)
    options = []
    if ceiling < replicas or zero_allowed:
        options.append((ceiling, replicas))
    if not tied(replicas) and (floor != 0 or zero_allowed):
        options.append((floor, replicas))
    if max_surge > 0:
        options.append((ceiling, replicas + 1))
        if not tied(replicas + 1) and (floor != 0 or zero_allowed):
            options.append((floor, replicas + 1))
    if not options:
        return Counts(0, replicas)
    # The first of the closest options wins, as in Argo Rollouts.
    canary, total = min(options, key=lambda option: abs(option[0] * 100 / option[1] - weight))
    return Counts(canary, total - canary)


def _scale_down_to(rs: ReplicaSet, desired: int, scale_down: int, count: int) -> int:
    """calculateScaleDownReplicaCount."""
    if rs.replicas > desired:
        return max(desired, rs.replicas - scale_down)
    return count


def _within_limits(
    drain: ReplicaSet | None,
    adjust: ReplicaSet,
    drain_count: int,
    adjust_count: int,
    most: int,
    fewest_available: int,
    min_ready: float,
) -> tuple[int, int]:
    """adjustReplicaWithinLimits: keep the counts within maxSurge and maxUnavailable."""
    over = max(0, adjust_count + drain_count - most)
    available = min(drain.available(min_ready), drain_count) if drain else 0
    adjust_count -= over
    available += min(adjust.available(min_ready), adjust_count)
    extra = max(0, adjust.available(min_ready) - adjust_count)
    adjust_count += min(extra, max(0, fewest_available - available))
    drain_count -= max(0, adjust_count + drain_count - most)
    return drain_count, adjust_count


def canary_counts(
    replicas: int,
    weight: int,
    fenceposts: rollingupdate.Fenceposts,
    new: ReplicaSet,
    stable: ReplicaSet | None,
    others: list[ReplicaSet],
    min_ready: float,
) -> Counts:
    """CalculateReplicaCountsForBasicCanary: the replica counts of the new and stable
    ReplicaSets for this weight, as far as maxSurge and maxUnavailable allow now."""
    desired = approximate_counts(replicas, weight, fenceposts.max_surge)
    scale_stable = stable is not None and stable is not new
    counts = Counts(new.replicas, stable.replicas if scale_stable else 0)
    if not scale_stable:
        desired = Counts(replicas, 0)
    most = replicas + fenceposts.max_surge
    total = sum(rs.replicas for rs in [*others, new, *([stable] if scale_stable else [])])
    scale_up = most - total
    if scale_stable and stable.replicas < desired.stable and scale_up > 0:
        counts.stable = min(desired.stable, stable.replicas + scale_up)
        scale_up -= counts.stable - stable.replicas
    if new.replicas < desired.new and scale_up > 0:
        counts.new = min(desired.new, new.replicas + scale_up)
    if sum(rs.replicas for rs in others) > 0:
        return counts  # older ReplicaSets go first
    fewest_available = replicas - min(fenceposts.max_unavailable, replicas)
    increasing = desired.new >= new.replicas
    scalable = replicas_for_scale_down(new, min_ready, not increasing)
    scalable += replicas_for_scale_down(stable if scale_stable else None, min_ready, increasing)
    if scalable <= fewest_available:
        return counts
    scale_down = scalable - fewest_available
    if not increasing:
        counts.new = _scale_down_to(new, desired.new, scale_down, counts.new)
        if scale_stable:
            counts.new, counts.stable = _within_limits(
                new, stable, counts.new, counts.stable, most, fewest_available, min_ready
            )
    elif scale_stable:
        counts.stable = _scale_down_to(stable, desired.stable, scale_down, counts.stable)
        counts.stable, counts.new = _within_limits(
            stable, new, counts.stable, counts.new, most, fewest_available, min_ready
        )
    return counts


def current_weight(steps: tuple[CanaryStep, ...], step: int, aborted: bool) -> int:
    """GetCurrentSetWeight: 0 once aborted; 100 past the last step (or without steps); else the
    last setWeight at or before the current step (0 if there is none yet)."""
    if aborted:
        return 0
    if step >= len(steps):
        return 100
    return next((s.weight for s in reversed(steps[: step + 1]) if s.weight is not None), 0)


class CanaryMixin:
    """Methods of RolloutController, as rollout/canary.go's are methods of rolloutContext."""

    def reconcile_canary(self, strategy: Canary) -> None:
        """rolloutCanary: the Services first, then the ReplicaSets, then the steps."""
        self.reconcile_stable_and_canary_service(strategy)
        # reconcileCanaryReplicaSets runs on every reconcile (syncReplicasOnly too), at the
        # current step's weight against spec.replicas as it is now: a change of spec.replicas
        # (an HPA) resizes the canary and the stable pods mid-step, during a pause or an
        # analysis, and after an abort.
        self.scale_canary(current_weight(strategy.steps, self.step, self.aborted))
        if self.new is self.stable:
            # The first version (shouldFullPromote "Initial deploy"): no steps, no analysis.
            if self.healthy():
                self.complete_rollout()
            return
        if self.aborted:
            return
        while self.step < len(strategy.steps):
            step = strategy.steps[self.step]
            if step.weight is not None:
                self.scale_canary(step.weight)
                if not self.at_weight(step.weight):
                    return
            elif step.pause is not None:
                now = self.timeline.now()
                if self.pause_started is None:
                    self.pause_started = now
                    self.timeline.record("rollout", "paused", f"step {self.step + 1}")
                if now - self.pause_started < step.pause:
                    return
                self.pause_started = None
            elif step.analysis is not None:
                where = f"step {self.step + 1}"
                passed = self.run_analysis(step.analysis, strategy.canary_service or "", where)
                if passed is None:
                    return
                if not passed:
                    self.abort(f"analysis at {where} failed")
                    self.scale_canary(0)
                    return
            self.step += 1
            self.timeline.record("rollout", "step", f"{self.step}/{len(strategy.steps)} done")
        self.scale_canary(100)
        # shouldFullPromote: every step done and at least spec.replicas new pods available
        # (more is enough: an HPA may have lowered spec.replicas meanwhile).
        if self.new.available(self.spec.min_ready_seconds) >= self.spec.replicas:
            self.promote_stable()  # the Services follow on the next reconcile
            self.complete_rollout()

    def scale_canary(self, weight: int) -> None:
        """reconcileCanaryReplicaSets (basic canary): the stable ReplicaSet first, then the new
        one, each to its CalculateReplicaCountsForBasicCanary count; a reconcile that scaled one
        goes no further. Only then the older ReplicaSets (reconcileOtherReplicaSets)."""
        spec = self.spec
        counts = canary_counts(
            spec.replicas,
            weight,
            spec.fenceposts,
            self.new,
            self.stable,
            self.others(),
            spec.min_ready_seconds,
        )
        if self.stable is not self.new and self.scale(self.stable, counts.stable):
            return
        if self.scale(self.new, counts.new):
            return
        self.scale_down_old_replica_sets_for_canary()

    def at_weight(self, weight: int) -> bool:
        """AtDesiredReplicaCountsForCanary (basic canary): the new pods all available, the stable
        pods all created, no older pod available."""
        spec, new, stable = self.spec, self.new, self.stable
        min_ready = spec.min_ready_seconds
        others = self.others()
        counts = canary_counts(
            spec.replicas, weight, spec.fenceposts, new, stable, others, min_ready
        )
        if new.replicas != counts.new or new.available(min_ready) != counts.new:
            return False
        if stable is not new and (
            stable.replicas != counts.stable or len(stable.active()) != counts.stable
        ):
            return False
        return all(rs.available(min_ready) == 0 for rs in others)

"""Argo Rollouts' basic canary arithmetic (utils/replicaset/canary.go): the replica counts of the
canary and stable ReplicaSets for a weight, within maxSurge and maxUnavailable."""

import math
from dataclasses import dataclass

from tools import rollingupdate
from tools.rehearsal.cluster.deployment import ReplicaSet


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

"""The Deployment controller's replica arithmetic, as pure functions of ReplicaSet records.

Ported from kubernetes pkg/controller/deployment: util/deployment_util.go (the replica
annotations, maxSurge/maxUnavailable, proportions, saturation, DeploymentComplete and
DeploymentProgressing), controller_utils.go (active ReplicaSets, the scaling orders), rolling.go
(what reconcileNewReplicaSet and reconcileOldReplicaSets decide) and sync.go (isScalingEvent, and
how scale shares a new size out). They decide; the controller (deployment.py) applies.

Each function names the upstream function it follows. Where upstream reads a ReplicaSet's
status.availableReplicas, these read `available(min_ready_seconds)`.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tools import rollingupdate
from tools.rehearsal.manifests.deployment import Deployment

RECREATE = "Recreate"


class ReplicaSetState(Protocol):
    """What the arithmetic reads of a ReplicaSet."""

    name: str
    replicas: int  # spec.replicas
    created_at: float  # creationTimestamp
    desired_replicas: int | None  # the deployment.kubernetes.io/desired-replicas annotation
    max_replicas: int | None  # the deployment.kubernetes.io/max-replicas annotation

    def available(self, min_ready_seconds: float) -> int: ...


@dataclass(frozen=True)
class ScaleDown:
    """An old ReplicaSet's new, smaller spec.replicas."""

    replica_set: ReplicaSetState
    replicas: int


@dataclass(frozen=True)
class Share:
    """One ReplicaSet's part of a proportional scale."""

    replica_set: ReplicaSetState
    before: int
    after: int
    proportion: int = 0  # what getReplicaSetProportion gave it
    leftover: int = 0  # what was left over after every proportion: the first ReplicaSet takes it


@dataclass(frozen=True)
class Scaling:
    """What sync.go's scale does on a scaling event. `how` is "active or latest" (one active
    ReplicaSet, or none: it gets the whole size), "saturated" (the new ReplicaSet is: old ones go
    to zero), "proportional" (every active ReplicaSet grows or shrinks by its proportion), or
    "none" (more than one active ReplicaSet under the Recreate strategy: scale leaves them)."""

    how: str
    replicas: int  # the Deployment's spec.replicas
    allowed: int = 0  # proportional: spec.replicas + maxSurge, what all ReplicaSets may hold
    to_add: int = 0  # proportional: allowed minus what they hold now
    shares: tuple[Share, ...] = ()

    def describe(self) -> str:
        parts = []
        for share in self.shares:
            part = (
                f"{share.replica_set.name} {share.before} -> {share.after} ({share.proportion:+d}"
            )
            if share.leftover:
                part += f", leftover {share.leftover:+d}"
            parts.append(part + ")")
        return (
            f"{self.replicas} replicas, {self.allowed} with maxSurge: {self.to_add:+d} over "
            f"{len(self.shares)} ReplicaSets: {', '.join(parts)}"
        )


@dataclass(frozen=True)
class DeploymentStatus:
    """The counts of a Deployment's status (calculateStatus, sync.go)."""

    replicas: int  # the non-terminating pods of every ReplicaSet
    updated_replicas: int  # those of the new ReplicaSet
    ready_replicas: int
    available_replicas: int


# -- deployment_util.go: maxSurge, maxUnavailable, the replica annotations ----------------------


def is_rolling_update(d: Deployment) -> bool:
    return d.strategy_type != RECREATE


def max_surge(d: Deployment) -> int:
    """MaxSurge: none under Recreate."""
    return d.fenceposts.max_surge if is_rolling_update(d) else 0


def max_unavailable(d: Deployment) -> int:
    """MaxUnavailable: none under Recreate or at zero replicas, and never above the replicas."""
    if not is_rolling_update(d) or d.replicas == 0:
        return 0
    return min(d.fenceposts.max_unavailable, d.replicas)


def min_available(d: Deployment) -> int:
    """MinAvailable."""
    return d.replicas - max_unavailable(d) if is_rolling_update(d) else 0


def replicas_annotations_need_update(rs: ReplicaSetState, desired: int, maximum: int) -> bool:
    """ReplicasAnnotationsNeedUpdate."""
    return rs.desired_replicas != desired or rs.max_replicas != maximum


def set_replicas_annotations(rs: ReplicaSetState, d: Deployment) -> bool:
    """SetReplicasAnnotations with the Deployment's size, as getNewReplicaSet sets them on a new
    ReplicaSet and scaleReplicaSet on every one it sizes: desired-replicas is spec.replicas,
    max-replicas that plus maxSurge. Whether they changed."""
    desired, maximum = d.replicas, d.replicas + max_surge(d)
    if not replicas_annotations_need_update(rs, desired, maximum):
        return False
    rs.desired_replicas, rs.max_replicas = desired, maximum
    return True


# -- controller_utils.go: active ReplicaSets and the scaling orders -----------------------------


def filter_active(replica_sets: Iterable[ReplicaSetState | None]) -> list[ReplicaSetState]:
    """FilterActiveReplicaSets: those with replicas."""
    return [rs for rs in replica_sets if rs is not None and rs.replicas > 0]


def by_creation(replica_sets: Iterable[ReplicaSetState]) -> list[ReplicaSetState]:
    """ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    return sorted(replica_sets, key=lambda rs: (rs.created_at, rs.name))


def by_size_older(replica_sets: Iterable[ReplicaSetState]) -> list[ReplicaSetState]:
    """ReplicaSetsBySizeOlder: largest first; at the same size, the older first."""
    return sorted(by_creation(replica_sets), key=lambda rs: -rs.replicas)


def by_size_newer(replica_sets: Iterable[ReplicaSetState]) -> list[ReplicaSetState]:
    """ReplicaSetsBySizeNewer: largest first; at the same size, the newer first."""
    return sorted(reversed(by_creation(replica_sets)), key=lambda rs: -rs.replicas)


# -- deployment_util.go: saturation, proportions, the new ReplicaSet's size ---------------------


def find_active_or_latest(
    new: ReplicaSetState | None, old: Sequence[ReplicaSetState]
) -> ReplicaSetState | None:
    """FindActiveOrLatest: the only active ReplicaSet; with none active, the new one (or the newest
    old one); None when more than one is active."""
    if new is None and not old:
        return None
    newest_first = list(reversed(by_creation(old)))
    active = filter_active([*newest_first, new])
    if not active:
        return new if new is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def is_saturated(d: Deployment, rs: ReplicaSetState | None, min_ready_seconds: float) -> bool:
    """IsSaturated: the ReplicaSet holds the Deployment's whole size, its desired-replicas
    annotation says so too, and every pod is available."""
    if rs is None or rs.desired_replicas is None:
        return False
    return (
        rs.replicas == d.replicas
        and rs.desired_replicas == d.replicas
        and rs.available(min_ready_seconds) == d.replicas
    )


def round_half_away(numerator: int, denominator: int) -> int:
    """integer.RoundToInt32 (math.Round) of a non-negative fraction, exactly."""
    return (2 * numerator + denominator) // (2 * denominator)


def replica_set_fraction(rs: ReplicaSetState, d: Deployment, status_replicas: int) -> int:
    """getReplicaSetFraction: how much a ReplicaSet grows (or shrinks) when the Deployment goes
    from its max-replicas annotation to spec.replicas + maxSurge. Without the annotation (or at 0)
    the Deployment's status.replicas stands for it; if that is 0 too, it does not move."""
    if d.replicas == 0:
        return -rs.replicas
    deployment_replicas = d.replicas + max_surge(d)
    annotated = rs.max_replicas or status_replicas
    if annotated == 0:
        return 0
    return round_half_away(rs.replicas * deployment_replicas, annotated) - rs.replicas


def replica_set_proportion(
    rs: ReplicaSetState | None, d: Deployment, to_add: int, added: int, status_replicas: int
) -> int:
    """GetReplicaSetProportion: the ReplicaSet's fraction, never past what is left to add (or to
    take away)."""
    if rs is None or rs.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d, status_replicas)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def new_rs_new_replicas(
    d: Deployment, all_rs: Iterable[ReplicaSetState], new: ReplicaSetState
) -> int:
    """NewRSNewReplicas: under RollingUpdate, the new ReplicaSet grows while every ReplicaSet
    together stays within spec.replicas + maxSurge, and never past spec.replicas."""
    if not is_rolling_update(d):
        return d.replicas
    surge = rollingupdate.scaled(d.max_surge, d.replicas, round_up=True)
    current = sum(rs.replicas for rs in all_rs)
    most = d.replicas + surge
    if current >= most:
        return new.replicas
    return new.replicas + min(most - current, d.replicas - new.replicas)


def deployment_complete(d: Deployment, status: DeploymentStatus) -> bool:
    """DeploymentComplete: every pod updated and available, and no other pod."""
    return (
        status.updated_replicas == d.replicas
        and status.replicas == d.replicas
        and status.available_replicas == d.replicas
    )


def deployment_progressing(old: DeploymentStatus, new: DeploymentStatus) -> bool:
    """DeploymentProgressing: more updated, ready or available pods, or fewer old ones."""
    return (
        new.updated_replicas > old.updated_replicas
        or new.replicas - new.updated_replicas < old.replicas - old.updated_replicas
        or new.ready_replicas > old.ready_replicas
        or new.available_replicas > old.available_replicas
    )


# -- rolling.go ------------------------------------------------------------------------------


def reconcile_new_replica_set(
    d: Deployment, all_rs: Sequence[ReplicaSetState], new: ReplicaSetState
) -> int:
    """reconcileNewReplicaSet: the new ReplicaSet's size (its current one: no scaling)."""
    if new.replicas >= d.replicas:
        return d.replicas
    return new_rs_new_replicas(d, all_rs, new)


def max_scaled_down(
    d: Deployment,
    all_rs: Sequence[ReplicaSetState],
    new: ReplicaSetState,
    min_ready_seconds: float,
) -> int:
    """reconcileOldReplicaSets' maxScaledDown: the pods beyond the minimum available, not counting
    the new ReplicaSet's unavailable ones (they must not let old pods go)."""
    new_unavailable = new.replicas - new.available(min_ready_seconds)
    return sum(rs.replicas for rs in all_rs) - min_available(d) - new_unavailable


def cleanup_unhealthy_replicas(
    old: Sequence[ReplicaSetState], max_cleanup: int, min_ready_seconds: float
) -> list[ScaleDown]:
    """cleanupUnhealthyReplicas: old ReplicaSets, oldest first, lose their unavailable pods, at
    most max_cleanup in all (removing them costs no availability)."""
    resizes, cleaned = [], 0
    for rs in by_creation(old):
        if cleaned >= max_cleanup:
            break
        unhealthy = rs.replicas - rs.available(min_ready_seconds)
        if rs.replicas == 0 or unhealthy <= 0:
            continue
        down = min(max_cleanup - cleaned, unhealthy)
        resizes.append(ScaleDown(rs, rs.replicas - down))
        cleaned += down
    return resizes


def scale_down_old_replica_sets_for_rolling_update(
    d: Deployment,
    all_rs: Sequence[ReplicaSetState],
    old: Sequence[ReplicaSetState],
    min_ready_seconds: float,
    sizes: dict[str, int] | None = None,
) -> list[ScaleDown]:
    """scaleDownOldReplicaSetsForRollingUpdate: old ReplicaSets, oldest first, shrink by the
    available pods beyond the minimum available. `sizes`: replicas already decided this pass."""
    sizes = sizes or {}
    available = sum(rs.available(min_ready_seconds) for rs in all_rs)
    to_scale_down = available - min_available(d)
    resizes = []
    for rs in by_creation(old):
        if to_scale_down <= 0:
            break
        replicas = sizes.get(rs.name, rs.replicas)
        if replicas == 0:
            continue
        down = min(replicas, to_scale_down)
        resizes.append(ScaleDown(rs, replicas - down))
        to_scale_down -= down
    return resizes


def reconcile_old_replica_sets(
    d: Deployment,
    all_rs: Sequence[ReplicaSetState],
    old: Sequence[ReplicaSetState],
    new: ReplicaSetState,
    min_ready_seconds: float,
) -> list[ScaleDown]:
    """reconcileOldReplicaSets: first the unhealthy old pods go (within maxScaledDown), then old
    ReplicaSets shrink as far as availability allows; in that order."""
    if sum(rs.replicas for rs in old) == 0:
        return []
    most = max_scaled_down(d, all_rs, new, min_ready_seconds)
    if most <= 0:
        return []
    cleanup = cleanup_unhealthy_replicas(old, most, min_ready_seconds)
    sizes = {resize.replica_set.name: resize.replicas for resize in cleanup}
    return cleanup + scale_down_old_replica_sets_for_rolling_update(
        d, all_rs, old, min_ready_seconds, sizes
    )


# -- sync.go ---------------------------------------------------------------------------------


def is_scaling_event(d: Deployment, replica_sets: Iterable[ReplicaSetState]) -> bool:
    """isScalingEvent: an active ReplicaSet's desired-replicas annotation differs from the
    Deployment's spec.replicas."""
    return any(
        rs.desired_replicas is not None and rs.desired_replicas != d.replicas
        for rs in filter_active(replica_sets)
    )


def scale(
    d: Deployment,
    new: ReplicaSetState | None,
    old: Sequence[ReplicaSetState],
    min_ready_seconds: float,
    status_replicas: int,
) -> Scaling:
    """scale (sync.go): share the Deployment's new size out among its ReplicaSets. A proportional
    scale keeps their ratio, so that a scaling event neither speeds up nor slows down a rollout;
    scaling up, the larger (then the newer) ReplicaSets come first, scaling down the larger (then
    the older); the rounding leftover goes to the first. `status_replicas`: the Deployment's
    status.replicas, for a ReplicaSet without a max-replicas annotation."""
    only = find_active_or_latest(new, old)
    if only is not None:
        shares = () if only.replicas == d.replicas else (Share(only, only.replicas, d.replicas),)
        return Scaling("active or latest", d.replicas, shares=shares)
    if is_saturated(d, new, min_ready_seconds):
        shares = tuple(Share(rs, rs.replicas, 0) for rs in filter_active(old))
        return Scaling("saturated", d.replicas, shares=shares)
    if not is_rolling_update(d):
        return Scaling("none", d.replicas)
    active = filter_active([*old, new])
    allowed = d.replicas + max_surge(d) if d.replicas > 0 else 0
    to_add = allowed - sum(rs.replicas for rs in active)
    if to_add > 0:
        active = by_size_newer(active)
    elif to_add < 0:
        active = by_size_older(active)
    proportions, added = [], 0
    for rs in active:
        proportion = replica_set_proportion(rs, d, to_add, added, status_replicas)
        proportions.append(proportion)
        added += proportion
    shares = []
    for i, (rs, proportion) in enumerate(zip(active, proportions, strict=True)):
        leftover = to_add - added if i == 0 else 0
        after = max(0, rs.replicas + proportion + leftover)
        shares.append(Share(rs, rs.replicas, after, proportion, leftover))
    return Scaling("proportional", d.replicas, allowed, to_add, tuple(shares))

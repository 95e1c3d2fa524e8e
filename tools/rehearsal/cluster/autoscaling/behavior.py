"""How far the HPA lets its recommendation move: the downscale stabilization window and the
scale-up cap of an HPA without behavior, and the stabilization windows and Pods/Percent policies
of spec.behavior. After kubernetes pkg/controller/podautoscaler/horizontal.go
(stabilizeRecommendation, stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithRules,
calculateScaleUpLimit, convertDesiredReplicasWithBehaviorRate,
calculateScaleUpLimitWithScalingRules, calculateScaleDownLimitWithBehaviors,
getReplicasChangePerPeriod, storeScaleEvent, markScaleEventsOutdated, getLongestPolicyPeriod).

Times are seconds on the controller's clock; "before" and "after" are strict, as Go's
time.Before and time.After are.
"""

import math
from dataclasses import dataclass

from tools.rehearsal.manifests.autoscaler import Behavior, ScalingPolicy, ScalingRules

# horizontal.go scaleUpLimitFactor and scaleUpLimitMinimum: without behavior, a sync at most
# doubles the replicas, or brings them to 4.
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


@dataclass(frozen=True)
class Recommendation:
    """horizontal.go timestampedRecommendation: a sync's unstabilized desired replicas."""

    replicas: int
    timestamp: float


@dataclass(frozen=True)
class ScaleEvent:
    """horizontal.go timestampedScaleEvent: one rescale's change (absolute), kept for the
    policies' periods; an outdated one is reused for the next event."""

    replica_change: int
    timestamp: float
    outdated: bool = False


@dataclass(frozen=True)
class Adjusted:
    """Replicas after a stabilization window or a limit, with the reason and message of the
    condition that says so (AbleToScale's ScaleUp/DownStabilized, or ScalingLimited's)."""

    replicas: int
    reason: str
    message: str


WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
)
DOWN_LIMIT = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
)


def stabilize_recommendation(
    recommendations: list[Recommendation], desired: int, now: float, window: float
) -> int:
    """horizontal.go stabilizeRecommendation (no behavior): the highest recommendation of the
    downscale stabilization window, this one included; this one replaces a recommendation older
    than the window (the last such) or is appended."""
    highest = desired
    old_index = None
    cutoff = now - window
    for index, recommendation in enumerate(recommendations):
        if recommendation.timestamp < cutoff:
            old_index = index
        elif recommendation.replicas > highest:
            highest = recommendation.replicas
    store(recommendations, old_index, Recommendation(desired, now))
    return highest


def stabilize_recommendation_with_behaviors(
    recommendations: list[Recommendation],
    current: int,
    desired: int,
    now: float,
    up_window: float,
    down_window: float,
) -> Adjusted:
    """horizontal.go stabilizeRecommendationWithBehaviors: the current replicas brought within
    [lowest recommendation of the scale-up window, highest of the scale-down window], this one
    included; this one replaces a recommendation older than both windows, or is appended."""
    up_recommendation = down_recommendation = desired
    up_cutoff, down_cutoff = now - up_window, now - down_window
    old_index = None
    for index, recommendation in enumerate(recommendations):
        if recommendation.timestamp > up_cutoff:
            up_recommendation = min(recommendation.replicas, up_recommendation)
        if recommendation.timestamp > down_cutoff:
            down_recommendation = max(recommendation.replicas, down_recommendation)
        if recommendation.timestamp < up_cutoff and recommendation.timestamp < down_cutoff:
            old_index = index
    replicas = min(max(current, up_recommendation), down_recommendation)
    store(recommendations, old_index, Recommendation(desired, now))
    if desired >= current:
        reason, message = (
            "ScaleUpStabilized",
            (
                "recent recommendations were lower than current one, applying the lowest recent"
                " recommendation"
            ),
        )
    else:
        reason, message = (
            "ScaleDownStabilized",
            (
                "recent recommendations were higher than current one, applying the highest recent"
                " recommendation"
            ),
        )
    return Adjusted(replicas, reason, message)


def store(items: list, old_index: int | None, item: object) -> None:
    """Put the item in place of the old one, or append it."""
    if old_index is None:
        items.append(item)
    else:
        items[old_index] = item


def calculate_scale_up_limit(
    current: int, factor: float = SCALE_UP_LIMIT_FACTOR, minimum: float = SCALE_UP_LIMIT_MINIMUM
) -> int:
    """horizontal.go calculateScaleUpLimit."""
    return int(max(factor * current, minimum))


def convert_desired_replicas_with_rules(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    factor: float = SCALE_UP_LIMIT_FACTOR,
    minimum: float = SCALE_UP_LIMIT_MINIMUM,
) -> Adjusted:
    """horizontal.go convertDesiredReplicasWithRules (no behavior): within [minReplicas,
    min(maxReplicas, scale-up limit)]."""
    scale_up_limit = calculate_scale_up_limit(current, factor, minimum)
    if max_replicas > scale_up_limit:
        maximum, limit = scale_up_limit, UP_LIMIT
    else:
        maximum, limit = max_replicas, TOO_MANY
    if desired < min_replicas:
        return Adjusted(min_replicas, *TOO_FEW)
    if desired > maximum:
        return Adjusted(maximum, *limit)
    return Adjusted(desired, *WITHIN_RANGE)


def replicas_change_per_period(period_seconds: int, events: list[ScaleEvent], now: float) -> int:
    """horizontal.go getReplicasChangePerPeriod: the replicas changed within the period."""
    cutoff = now - period_seconds
    return sum(event.replica_change for event in events if event.timestamp > cutoff)


def period_start(
    current: int,
    policy: ScalingPolicy,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    now: float,
) -> int:
    """The replicas at the start of the policy's period: the current count without the scale
    events within it (both limit functions of horizontal.go compute it alike)."""
    added = replicas_change_per_period(policy.period_seconds, up_events, now)
    deleted = replicas_change_per_period(policy.period_seconds, down_events, now)
    return current - added + deleted


def scale_up_limit_with_scaling_rules(
    current: int,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """horizontal.go calculateScaleUpLimitWithScalingRules: the most replicas the policies
    allow, each from the replicas at the start of its period (Max: the largest change, Min: the
    smallest)."""
    if rules.select_policy == "Disabled":
        return current
    choose, result = (min, INT32_MAX) if rules.select_policy == "Min" else (max, INT32_MIN)
    for policy in rules.policies:
        start = period_start(current, policy, up_events, down_events, now)
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            # Rounded up, or a small percentage of few pods would never add one.
            proposed = math.ceil(start * (1 + policy.value / 100))
        result = choose(result, proposed)
    return result


def scale_down_limit_with_behaviors(
    current: int,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """horizontal.go calculateScaleDownLimitWithBehaviors: the fewest replicas the policies
    allow (Max: the largest change, Min: the smallest)."""
    if rules.select_policy == "Disabled":
        return current
    choose, result = (max, INT32_MIN) if rules.select_policy == "Min" else (min, INT32_MAX)
    for policy in rules.policies:
        start = period_start(current, policy, up_events, down_events, now)
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = math.trunc(start * (1 - policy.value / 100))  # Go's int32(): truncated
        result = choose(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    now: float,
) -> Adjusted:
    """horizontal.go convertDesiredReplicasWithBehaviorRate: within the policies' rate and
    [minReplicas, maxReplicas]; never past the current count in the other direction while
    recent events use up a period's allowance."""
    if desired > current:
        limit = scale_up_limit_with_scaling_rules(
            current, up_events, down_events, behavior.scale_up, now
        )
        limit = max(limit, current)
        if max_replicas > limit:
            maximum, reason = limit, UP_LIMIT
        else:
            maximum, reason = max_replicas, TOO_MANY
        if desired > maximum:
            return Adjusted(maximum, *reason)
    elif desired < current:
        limit = scale_down_limit_with_behaviors(
            current, up_events, down_events, behavior.scale_down, now
        )
        limit = min(limit, current)
        if min_replicas < limit:
            minimum, reason = limit, DOWN_LIMIT
        else:
            minimum, reason = min_replicas, TOO_FEW
        if desired < minimum:
            return Adjusted(minimum, *reason)
    return Adjusted(desired, *WITHIN_RANGE)


def longest_policy_period(rules: ScalingRules) -> int:
    """horizontal.go getLongestPolicyPeriod."""
    return max((policy.period_seconds for policy in rules.policies), default=0)


def mark_scale_events_outdated(events: list[ScaleEvent], longest_period: int, now: float) -> None:
    """horizontal.go markScaleEventsOutdated: events older than every policy's period."""
    cutoff = now - longest_period
    for index, event in enumerate(events):
        if event.timestamp < cutoff:
            events[index] = ScaleEvent(event.replica_change, event.timestamp, outdated=True)


def store_scale_event(
    behavior: Behavior | None,
    up_events: list[ScaleEvent],
    down_events: list[ScaleEvent],
    previous: int,
    new: int,
    now: float,
) -> None:
    """horizontal.go storeScaleEvent: record a rescale (only with behavior: the policies read
    the events), in place of an outdated event (the last one) if any."""
    if behavior is None:
        return
    if new > previous:
        events, rules, change = up_events, behavior.scale_up, new - previous
    else:
        events, rules, change = down_events, behavior.scale_down, previous - new
    mark_scale_events_outdated(events, longest_policy_period(rules), now)
    old_index = None
    for index, event in enumerate(events):
        if event.outdated:
            old_index = index
    store(events, old_index, ScaleEvent(change, now))

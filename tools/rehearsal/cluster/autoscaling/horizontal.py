"""One sync of one HorizontalPodAutoscaler, as kubernetes
pkg/controller/podautoscaler/horizontal.go reconcileAutoscaler does it: read the target's scale,
compute the replicas each metric asks for (computeReplicasForMetrics,
computeStatusForResourceMetricGeneric), normalize them (normalizeDesiredReplicas without behavior,
normalizeDesiredReplicasWithBehaviors with it), rescale, and set the status: metric statuses, the
AbleToScale / ScalingActive / ScalingLimited conditions and the events, with upstream's texts.

Pure and clock-injected: the caller passes the scale, the pods the scale's selector selects, the
metrics as the resource metrics API answered, `now`, and the per-HPA state upstream keeps across
syncs (the controller's recommendations and scale events, the object's status).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tools.rehearsal.cluster.autoscaling.behavior import (
    Recommendation,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
    store_scale_event,
)
from tools.rehearsal.cluster.autoscaling.config import DEFAULT_CONFIG, ControllerConfig
from tools.rehearsal.cluster.autoscaling.replica_calculator import (
    PodInfo,
    PodMetrics,
    ReplicaCalculationError,
    ReplicaCalculator,
    Tolerances,
)
from tools.rehearsal.cluster.autoscaling.status import (
    ABLE_TO_SCALE,
    NORMAL,
    SCALING_ACTIVE,
    SCALING_LIMITED,
    WARNING,
    AutoscalerState,
    MetricStatus,
    Reconcile,
    Sync,
    set_status,
)
from tools.rehearsal.cluster.autoscaling.target import Scale, ScaleUpdateFailed
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler, ResourceMetric


@dataclass(frozen=True)
class MetricQuery:
    """What the metrics client asks the resource metrics API for."""

    resource: str
    container: str | None = None  # a ContainerResource metric's container


def query_of(metric: ResourceMetric) -> MetricQuery:
    return MetricQuery(metric.resource, metric.container)


class MetricFailed(Exception):
    """A metric gave no replica count: its ScalingActive condition reason and the error."""

    def __init__(self, reason: str, error: str, wrapped: str) -> None:
        super().__init__(wrapped)
        self.reason, self.error = reason, error


@dataclass(frozen=True)
class Proposal:
    replicas: int
    metric: str  # the metric's name in conditions and reasons
    status: MetricStatus


def tolerances_for(hpa: HorizontalPodAutoscaler, config: ControllerConfig) -> Tolerances:
    """horizontal.go tolerancesForHpa: the flag's tolerance, or behavior's per direction."""
    tolerances = Tolerances(
        config.horizontal_pod_autoscaler_tolerance, config.horizontal_pod_autoscaler_tolerance
    )
    if hpa.behavior is None or not config.hpa_configurable_tolerance:
        return tolerances
    down, up = hpa.behavior.scale_down.tolerance, hpa.behavior.scale_up.tolerance
    return Tolerances(
        tolerances.scale_down if down is None else down,
        tolerances.scale_up if up is None else up,
    )


def replicas_for_metric(
    metric: ResourceMetric,
    current: int,
    pods: Sequence[PodInfo],
    metrics: PodMetrics | MetricsUnavailable,
    tolerances: Tolerances,
    calculator: ReplicaCalculator,
    now: float,
) -> Proposal:
    """horizontal.go computeStatusForResourceMetricGeneric, computeStatusForResourceMetric and
    computeStatusForContainerResourceMetric."""
    target = metric.target
    if target.average_value is not None:
        try:
            raw = calculator.raw_resource_replicas(
                current, target.average_value, metric.resource, tolerances, pods, metrics, now
            )
        except ReplicaCalculationError as error:
            raise failed(metric, f"failed to get {metric.resource} usage: {error}") from None
        status = MetricStatus(metric, raw.usage)
        return Proposal(raw.replicas, f"{metric.resource} resource", status)
    try:
        answer = calculator.resource_replicas(
            current,
            target.average_utilization,
            metric.resource,
            tolerances,
            pods,
            metrics,
            now,
            metric.container,
        )
    except ReplicaCalculationError as error:
        raise failed(metric, f"failed to get {metric.resource} utilization: {error}") from None
    kind = "resource" if metric.container is None else "container resource"
    name = f"{metric.resource} {kind} utilization (percentage of request)"
    status = MetricStatus(metric, answer.raw_utilization, answer.utilization)
    return Proposal(answer.replicas, name, status)


def failed(metric: ResourceMetric, error: str) -> MetricFailed:
    """The failure of a metric, as computeReplicasForMetric wraps it."""
    if metric.container is None:
        wrapped = f"failed to get {metric.resource} resource metric value: {error}"
        return MetricFailed("FailedGetResourceMetric", error, wrapped)
    wrapped = f"failed to get {metric.container} container metric value: {error}"
    return MetricFailed("FailedGetContainerResourceMetric", error, wrapped)


@dataclass(frozen=True)
class MetricsReplicas:
    """computeReplicasForMetrics' answer: -1 replicas when the HPA cannot act on it."""

    replicas: int
    metric: str
    statuses: tuple[MetricStatus | None, ...]
    error: str | None


def replicas_for_metrics(
    sync: Sync,
    hpa: HorizontalPodAutoscaler,
    spec_replicas: int,
    pods: Sequence[PodInfo],
    metrics: Mapping[MetricQuery, PodMetrics | MetricsUnavailable],
    calculator: ReplicaCalculator,
    tolerances: Tolerances,
) -> MetricsReplicas:
    """horizontal.go computeReplicasForMetrics: the largest proposal. A failed metric blocks
    scaling down (and everything, when every metric failed), never scaling up."""
    replicas, metric = 0, ""
    statuses: list[MetricStatus | None] = []
    invalid: list[MetricFailed] = []
    for spec in hpa.metrics:
        samples = metrics.get(query_of(spec), MetricsUnavailable("no metrics were queried"))
        try:
            proposal = replicas_for_metric(
                spec, spec_replicas, pods, samples, tolerances, calculator, sync.now
            )
        except MetricFailed as failure:
            # horizontal.go getUnableComputeReplicaCountCondition: an event per failed metric.
            sync.event(WARNING, failure.reason, failure.error)
            invalid.append(failure)
            statuses.append(None)
            continue
        statuses.append(proposal.status)
        if replicas == 0 or proposal.replicas > replicas:
            replicas, metric = proposal.replicas, proposal.metric
    error = None
    if invalid:
        error = (
            f"invalid metrics ({len(invalid)} invalid out of {len(hpa.metrics)}),"
            f" first error is: {invalid[0]}"
        )
    if invalid and (len(invalid) >= len(hpa.metrics) or replicas < spec_replicas):
        first = invalid[0]
        message = f"the HPA was unable to compute the replica count: {first.error}"
        sync.condition(SCALING_ACTIVE, False, first.reason, message)
        return MetricsReplicas(-1, "", tuple(statuses), error)
    sync.condition(
        SCALING_ACTIVE,
        True,
        "ValidMetricFound",
        f"the HPA was able to successfully calculate a replica count from {metric}",
    )
    return MetricsReplicas(replicas, metric, tuple(statuses), error)


def normalize_desired_replicas(
    sync: Sync,
    hpa: HorizontalPodAutoscaler,
    current: int,
    desired: int,
    config: ControllerConfig,
) -> int:
    """horizontal.go normalizeDesiredReplicas (no behavior): the highest recommendation of the
    downscale stabilization window, within [minReplicas, maxReplicas] and the scale-up cap."""
    window = config.horizontal_pod_autoscaler_downscale_stabilization
    stabilized = stabilize_recommendation(sync.state.recommendations, desired, sync.now, window)
    if stabilized != desired:
        sync.condition(
            ABLE_TO_SCALE,
            True,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent"
            " recommendation",
        )
    else:
        sync.condition(
            ABLE_TO_SCALE, True, "ReadyForNewScale", "recommended size matches current size"
        )
    limited = convert_desired_replicas_with_rules(
        current,
        stabilized,
        hpa.min_replicas,
        hpa.max_replicas,
        config.scale_up_limit_factor,
        config.scale_up_limit_minimum,
    )
    sync.condition(SCALING_LIMITED, limited.replicas != stabilized, limited.reason, limited.message)
    return limited.replicas


def normalize_desired_replicas_with_behaviors(
    sync: Sync,
    hpa: HorizontalPodAutoscaler,
    current: int,
    desired: int,
    config: ControllerConfig,
) -> int:
    """horizontal.go normalizeDesiredReplicasWithBehaviors: stabilized within both windows,
    then within the policies' rate and [minReplicas, maxReplicas]."""
    behavior, state = hpa.behavior, sync.state
    down_window = behavior.scale_down.stabilization_window_seconds
    if down_window is None:  # maybeInitScaleDownStabilizationWindow: the flag, in whole seconds
        down_window = int(config.horizontal_pod_autoscaler_downscale_stabilization)
    stabilized = stabilize_recommendation_with_behaviors(
        state.recommendations,
        current,
        desired,
        sync.now,
        behavior.scale_up.stabilization_window_seconds,
        down_window,
    )
    if stabilized.replicas != desired:
        sync.condition(ABLE_TO_SCALE, True, stabilized.reason, stabilized.message)
    else:
        sync.condition(
            ABLE_TO_SCALE, True, "ReadyForNewScale", "recommended size matches current size"
        )
    limited = convert_desired_replicas_with_behavior_rate(
        current,
        stabilized.replicas,
        hpa.min_replicas,
        hpa.max_replicas,
        behavior,
        state.scale_up_events,
        state.scale_down_events,
        sync.now,
    )
    sync.condition(
        SCALING_LIMITED, limited.replicas != stabilized.replicas, limited.reason, limited.message
    )
    return limited.replicas


def reconcile(
    hpa: HorizontalPodAutoscaler,
    state: AutoscalerState,
    scale: Scale,
    pods: Sequence[PodInfo],
    metrics: Mapping[MetricQuery, PodMetrics | MetricsUnavailable],
    now: float,
    update_scale: Callable[[int], None],
    config: ControllerConfig = DEFAULT_CONFIG,
) -> Reconcile:
    """horizontal.go reconcileAutoscaler, from a scale already read: `pods` are those the
    scale's selector selects, `metrics` the API's answer for each of the HPA's metrics, and
    `update_scale` writes spec.replicas (ScaleUpdateFailed when it cannot)."""
    sync = Sync(state, now)
    target = hpa.target
    reference = f"{target.kind}/{hpa.namespace}/{target.name}"
    sync.condition(
        ABLE_TO_SCALE,
        True,
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
    )
    current = scale.spec_replicas
    if state.recommendations is None:  # recordInitialRecommendation
        state.recommendations = [Recommendation(current, now)]

    desired, reason, rescale, recommended = 0, "", True, None
    statuses: tuple[MetricStatus | None, ...] = ()
    error = None
    if current == 0:
        # Scaled to zero by hand (HPAScaleToZero, which could bring it back, is not emulated).
        rescale = False
        sync.condition(
            SCALING_ACTIVE,
            False,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
    elif current > hpa.max_replicas:
        reason, desired = "Current number of replicas above Spec.MaxReplicas", hpa.max_replicas
    elif current < hpa.min_replicas:
        reason, desired = "Current number of replicas below Spec.MinReplicas", hpa.min_replicas
    else:
        calculator = ReplicaCalculator(
            config.horizontal_pod_autoscaler_cpu_initialization_period,
            config.horizontal_pod_autoscaler_initial_readiness_delay,
        )
        outcome = replicas_for_metrics(
            sync, hpa, current, pods, metrics, calculator, tolerances_for(hpa, config)
        )
        statuses, error = outcome.statuses, outcome.error
        if outcome.replicas == -1:
            set_status(state, current, state.desired_replicas, statuses, False, now)
            sync.event(WARNING, "FailedComputeMetricsReplicas", error)
            failure = (
                "failed to compute desired number of replicas based on listed metrics for"
                f" {reference}: {error}"
            )
            return result(sync, current, state.desired_replicas, None, statuses, False, "", failure)
        recommended = desired = outcome.replicas
        if desired > current:
            reason = f"{outcome.metric} above target"
        if desired < current:
            reason = "All metrics below target"
        normalize = (
            normalize_desired_replicas
            if hpa.behavior is None
            else normalize_desired_replicas_with_behaviors
        )
        desired = normalize(sync, hpa, current, desired, config)
        rescale = desired != current

    if rescale:
        try:
            update_scale(desired)
        except ScaleUpdateFailed as failure:
            sync.event(
                WARNING,
                "FailedRescale",
                f"New size: {desired}; reason: {reason}; error: {failure}",
            )
            sync.condition(
                ABLE_TO_SCALE,
                False,
                "FailedUpdateScale",
                f"the HPA controller was unable to update the target scale: {failure}",
            )
            set_status(state, current, state.desired_replicas, statuses, False, now)
            text = f"failed to rescale {reference}: {failure}"
            return result(
                sync, current, state.desired_replicas, recommended, statuses, False, "", text
            )
        sync.condition(
            ABLE_TO_SCALE,
            True,
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
        )
        sync.event(NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        store_scale_event(
            hpa.behavior, state.scale_up_events, state.scale_down_events, current, desired, now
        )
    else:
        desired, reason = current, ""
    set_status(state, current, desired, statuses, rescale, now)
    return result(sync, current, desired, recommended, statuses, rescale, reason, error)


def result(
    sync: Sync,
    current: int,
    desired: int,
    recommended: int | None,
    statuses: tuple[MetricStatus | None, ...],
    rescaled: bool,
    reason: str,
    error: str | None,
) -> Reconcile:
    return Reconcile(
        t=sync.now,
        current_replicas=current,
        desired_replicas=desired,
        recommended=recommended,
        metric_statuses=statuses,
        rescaled=rescaled,
        reason=reason,
        conditions=tuple(sync.state.conditions),
        events=tuple(sync.events),
        error=error,
    )

"""One HPA sync against kubernetes pkg/controller/podautoscaler/horizontal_test.go, case by case,
each vector named after its upstream test (the classic functions; current upstream gathers many as
subtests of TestScaleUpCPU, TestScaleDownCPU, TestReplicaLimits, TestMetricsEdgeCases...).

Upstream's fake clients, translated: the HPA targets a scale of specReplicas (status
statusReplicas); there are len(reportedCPURequests) pods (statusReplicas when none are given,
each requesting 1 cpu), each request split evenly over container1 and container2; Ready defaults to
True and both its lastTransitionTime and the pod's startTime are reportedPodStartTime (Go's zero
time, GO_ZERO here, when not given); a pod reports reportedLevels[i] millicores as two halves (and
512 Ki of memory per container), timestamped now with a one-minute window; no levels at all is
the metrics client's "no metrics returned from resource metrics API". The HPA's status starts at
desiredReplicas = specReplicas with no conditions; `recommendations` seeds the controller's
(None: the sync records the initial one); the controller runs with upstream's testing settings
(tolerance 0.1, cpu initialization 2 min, readiness delay 10 s, downscale stabilization 5 min,
scaleUpLimitFactor 8). Conditions compare as upstream's do: type, status and reason.

Where upstream makes one metric fail with an External metric (whose reason is
FailedGetExternalMetric), the port fails a memory metric the same way, so the reason is
FailedGetResourceMetric. Cases of Pods, Object and External metrics, selectors, HPAScaleToZero,
conflict retries and the monitor's metrics are not ported.
"""

from dataclasses import dataclass, field

import pytest

from tools.rehearsal.cluster.autoscaling import behavior as rates
from tools.rehearsal.cluster.autoscaling.behavior import Recommendation, ScaleEvent
from tools.rehearsal.cluster.autoscaling.config import ControllerConfig
from tools.rehearsal.cluster.autoscaling.horizontal import MetricQuery, reconcile
from tools.rehearsal.cluster.autoscaling.replica_calculator import (
    FAILED,
    RUNNING,
    ContainerInfo,
    PodInfo,
)
from tools.rehearsal.cluster.autoscaling.status import AutoscalerState
from tools.rehearsal.cluster.autoscaling.target import Scale, ScaleUpdateFailed
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric
from tools.rehearsal.manifests.autoscaler import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    HorizontalPodAutoscaler,
    MetricTarget,
    ResourceMetric,
    ScaleTargetRef,
    ScalingPolicy,
    ScalingRules,
    generate_rules,
)

NOW = 10_000.0
GO_ZERO = -1e12
HOT, COOL = NOW, NOW - 180  # hotCPUCreationTime, coolCPUCreationTime
MEMORY_PER_CONTAINER = 512 * 1024 * 1000  # milli-units
CONFIG = ControllerConfig(
    horizontal_pod_autoscaler_cpu_initialization_period=120,
    horizontal_pod_autoscaler_initial_readiness_delay=10,
    scale_up_limit_factor=8,
)
FAILING_MEMORY = ResourceMetric("memory", MetricTarget("AverageValue", average_value=10**9))


def scaling_rules(pods=0, pods_period=0, percent=0, percent_period=0, window=0) -> ScalingRules:
    """generateScalingRules: Max of a Pods and a Percent policy (each when non-zero)."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, "Max", tuple(policies))


def cpu(utilization: int, container: str | None = None) -> ResourceMetric:
    return ResourceMetric("cpu", MetricTarget("Utilization", utilization), container)


@dataclass(frozen=True)
class Case:
    min: int
    max: int
    spec: int
    status: int
    desired: int
    cpu_target: int = 0
    levels: tuple[int, ...] = ()
    requests: tuple[int, ...] | None = None  # millicores by pod
    readiness: tuple[bool, ...] = ()
    start: tuple[float, ...] = ()
    phase: tuple[str, ...] = ()
    deleting: tuple[bool, ...] = ()
    metrics: tuple[ResourceMetric, ...] = ()  # besides the cpu target
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None
    recommendations: tuple[Recommendation, ...] | None = None
    conditions: tuple[tuple[str, str, str], ...] | None = None  # None: statusOk
    cpu_current: int | None = None  # the cpu utilization status upstream checks
    failing: tuple[MetricQuery, ...] = ()  # the API fails for these
    update_fails: bool = False
    config: ControllerConfig = CONFIG
    error: bool = False


STATUS_OK = (
    ("AbleToScale", "True", "SucceededRescale"),
    ("ScalingActive", "True", "ValidMetricFound"),
    ("ScalingLimited", "False", "DesiredWithinRange"),
)


def status_ok(*overrides: tuple[str, str, str]) -> tuple[tuple[str, str, str], ...]:
    """statusOkWithOverrides: each override replaces the condition of its type."""
    conditions = list(STATUS_OK)
    for override in overrides:
        index = next(i for i, c in enumerate(conditions) if c[0] == override[0])
        conditions[index] = override
    return tuple(conditions)


def autoscaler_of(case: Case) -> HorizontalPodAutoscaler:
    metrics = ((cpu(case.cpu_target),) if case.cpu_target else ()) + case.metrics
    behavior = None
    if case.scale_up is not None or case.scale_down is not None:  # SetDefaults_...Behavior
        behavior = Behavior(
            case.scale_up or DEFAULT_SCALE_UP, case.scale_down or DEFAULT_SCALE_DOWN
        )
    return HorizontalPodAutoscaler(
        name="test-hpa",
        target=ScaleTargetRef("v1", "ReplicationController", "test-rc"),
        min_replicas=case.min,
        max_replicas=case.max,
        metrics=metrics or (cpu(80),),
        behavior=behavior,
        namespace="test-namespace",
    )


def pods_of(case: Case) -> list[PodInfo]:
    requests = case.requests if case.requests is not None else (1000,) * case.status
    pods = []
    for i, request in enumerate(requests):
        start = case.start[i] if case.start else GO_ZERO
        halves = {"cpu": request // 2}
        pods.append(
            PodInfo(
                name=f"test-pod-{i}",
                containers=(
                    ContainerInfo("container1", halves),
                    ContainerInfo("container2", halves),
                ),
                phase=case.phase[i] if case.phase else RUNNING,
                deleting=bool(case.deleting) and case.deleting[i],
                ready=case.readiness[i] if case.readiness else True,
                ready_transition=start,
                start_time=start,
            )
        )
    return pods


def metrics_of(case: Case, hpa: HorizontalPodAutoscaler) -> dict:
    """The resource metrics API's answer to each of the HPA's metrics (the fake PodMetrics list
    through the metrics client)."""
    answers = {}
    for metric in hpa.metrics:
        query = MetricQuery(metric.resource, metric.container)
        if query in case.failing:
            answers[query] = MetricsUnavailable("something went wrong")
        elif not case.levels:
            answers[query] = MetricsUnavailable("no metrics returned from resource metrics API")
        else:
            per_container = (lambda level: level // 2) if metric.resource == "cpu" else None
            answers[query] = {
                f"test-pod-{i}": PodMetric(
                    (per_container(level) if per_container else MEMORY_PER_CONTAINER)
                    * (1 if metric.container else 2),
                    NOW,
                    60,
                )
                for i, level in enumerate(case.levels)
            }
    return answers


@dataclass
class Updates:
    fails: bool
    written: list[int] = field(default_factory=list)

    def __call__(self, replicas: int) -> None:
        if self.fails:
            raise ScaleUpdateFailed("something went wrong")
        self.written.append(replicas)


def sync(case: Case):
    hpa = autoscaler_of(case)
    recommendations = case.recommendations
    state = AutoscalerState(
        recommendations=None if recommendations is None else list(recommendations),
        current_replicas=case.spec,
        desired_replicas=case.spec,
    )
    updates = Updates(case.update_fails)
    result = reconcile(
        hpa,
        state,
        Scale(case.spec, case.status),
        pods_of(case),
        metrics_of(case, hpa),
        NOW,
        updates,
        case.config,
    )
    return result, state, updates


CASES = {
    "TestScaleUp": Case(2, 6, 3, 3, 5, 30, (300, 500, 700), (1000,) * 3),
    "TestScaleUpContainer": Case(
        2, 6, 3, 3, 5, 0, (300, 500, 700), (1000,) * 3, metrics=(cpu(30, "container1"),)
    ),
    "TestScaleUpUnreadyLessScale": Case(
        2, 6, 3, 3, 4, 30, (300, 500, 700), (1000,) * 3, readiness=(False, True, True)
    ),
    "TestScaleUpHotCpuLessScale": Case(
        2, 6, 3, 3, 4, 30, (300, 500, 700), (1000,) * 3, start=(HOT, COOL, COOL)
    ),
    "TestScaleUpUnreadyNoScale": Case(
        2, 6, 3, 3, 3, 30, (400, 500, 700), (1000,) * 3, readiness=(True, False, False),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")), cpu_current=40,
    ),
    "TestScaleUpHotCpuNoScale": Case(
        2, 6, 3, 3, 3, 30, (400, 500, 700), (1000,) * 3, readiness=(True, False, False),
        start=(COOL, HOT, HOT),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")), cpu_current=40,
    ),
    "TestScaleUpIgnoresFailedPods": Case(
        2, 6, 2, 2, 4, 30, (500, 700), (1000,) * 4, readiness=(True, True, False, False),
        phase=(RUNNING, RUNNING, FAILED, FAILED),
    ),
    "TestScaleUpIgnoresDeletionPods": Case(
        2, 6, 2, 2, 4, 30, (500, 700), (1000,) * 4, readiness=(True, True, False, False),
        deleting=(False, False, True, True),
    ),
    "TestScaleDown": Case(
        2, 6, 5, 5, 3, 50, (100, 300, 500, 250, 250), (1000,) * 5, recommendations=()
    ),
    "TestScaleDownContainerResource": Case(
        2, 6, 5, 5, 3, 0, (100, 300, 500, 250, 250), (1000,) * 5,
        metrics=(cpu(50, "container2"),), recommendations=(),
    ),
    "TestScaleDownWithScalingRules": Case(
        2, 6, 5, 5, 3, 50, (100, 300, 500, 250, 250), (1000,) * 5,
        scale_up=scaling_rules(0, 0, 100, 15, 30), recommendations=(),
    ),
    "TestScaleDownStabilizeInitialSize": Case(
        2, 6, 5, 5, 5, 50, (100, 300, 500, 250, 250), (1000,) * 5,
        conditions=status_ok(("AbleToScale", "True", "ScaleDownStabilized")),
    ),
    "TestScaleDownIncludeUnreadyPods": Case(
        2, 6, 5, 5, 2, 50, (100, 300, 500, 250, 250), (1000,) * 5,
        readiness=(True, True, True, False, False), recommendations=(), cpu_current=30,
    ),
    "TestScaleDownIgnoreHotCpuPods": Case(
        2, 6, 5, 5, 2, 50, (100, 300, 500, 250, 250), (1000,) * 5,
        start=(COOL, COOL, COOL, HOT, HOT), recommendations=(), cpu_current=30,
    ),
    "TestScaleDownIgnoresFailedPods": Case(
        2, 6, 5, 5, 3, 50, (100, 300, 500, 250, 250), (1000,) * 7,
        readiness=(True,) * 5 + (False,) * 2, phase=(RUNNING,) * 5 + (FAILED,) * 2,
        recommendations=(), cpu_current=28,
    ),
    "TestScaleDownIgnoresDeletionPods": Case(
        2, 6, 5, 5, 3, 50, (100, 300, 500, 250, 250), (1000,) * 7,
        readiness=(True,) * 5 + (False,) * 2, deleting=(False,) * 5 + (True,) * 2,
        recommendations=(), cpu_current=28,
    ),
    "TestTolerance": Case(
        1, 5, 3, 3, 3, 100, (1010, 1030, 1020), (900, 1000, 1100),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestConfigurableTolerance/Scaling up because of a 1% configurable tolerance": Case(
        1, 5, 3, 3, 4, 100, (1010, 1030, 1020), (900, 1000, 1100),
        scale_up=generate_rules(DEFAULT_SCALE_UP, tolerance=0.01),
    ),
    "TestConfigurableTolerance/No scale-down because of a 90% configurable tolerance": Case(
        1, 5, 3, 3, 3, 100, (300, 300, 300), (1000,) * 3,
        scale_down=generate_rules(DEFAULT_SCALE_DOWN, tolerance=0.9),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestConfigurableTolerance/No scaling because of the large default tolerance": Case(
        1, 5, 3, 3, 3, 100, (1010, 1030, 1020), (900, 1000, 1100),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestConfigurableTolerance/... ignored as the feature gate is disabled": Case(
        1, 5, 3, 3, 3, 100, (1010, 1030, 1020), (900, 1000, 1100),
        scale_up=generate_rules(DEFAULT_SCALE_UP, tolerance=0.01),
        config=ControllerConfig(
            horizontal_pod_autoscaler_cpu_initialization_period=120,
            horizontal_pod_autoscaler_initial_readiness_delay=10,
            scale_up_limit_factor=8,
            hpa_configurable_tolerance=False,
        ),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestMinReplicas": Case(
        2, 5, 3, 3, 2, 90, (10, 95, 10), (900, 1000, 1100), recommendations=(),
        conditions=status_ok(("ScalingLimited", "True", "TooFewReplicas")),
    ),
    "TestZeroMinReplicasDesiredZero": Case(
        0, 5, 3, 3, 0, 90, (0, 0, 0), (900, 1000, 1100), recommendations=()
    ),
    "TestMinReplicasDesiredZero": Case(
        2, 5, 3, 3, 2, 90, (0, 0, 0), (900, 1000, 1100), recommendations=(),
        conditions=status_ok(("ScalingLimited", "True", "TooFewReplicas")),
    ),
    "TestZeroReplicas": Case(
        3, 5, 0, 0, 0, 90, (), (),
        conditions=(("AbleToScale", "True", "SucceededGetScale"),
                    ("ScalingActive", "False", "ScalingDisabled")),
    ),
    "TestTooFewReplicas": Case(
        3, 5, 2, 2, 3, 90, (), (), conditions=(("AbleToScale", "True", "SucceededRescale"),)
    ),
    "TestTooManyReplicas": Case(
        3, 5, 10, 10, 5, 90, (), (), conditions=(("AbleToScale", "True", "SucceededRescale"),)
    ),
    "TestMaxReplicas": Case(
        2, 5, 3, 3, 5, 90, (8000, 9500, 1000), (900, 1000, 1100),
        conditions=status_ok(("ScalingLimited", "True", "TooManyReplicas")),
    ),
    "TestSuperfluousMetrics": Case(
        2, 6, 4, 4, 6, 100, (4000, 9500, 3000, 7000, 3200, 2000), (1000,) * 4,
        conditions=status_ok(("ScalingLimited", "True", "TooManyReplicas")),
    ),
    "TestMissingMetrics": Case(2, 6, 4, 4, 3, 100, (400, 95), (1000,) * 4, recommendations=()),
    "TestEmptyMetrics": Case(
        2, 6, 4, 4, 4, 100, (), (1000,) * 4, error=True,
        conditions=(("AbleToScale", "True", "SucceededGetScale"),
                    ("ScalingActive", "False", "FailedGetResourceMetric")),
    ),
    "TestEmptyCPURequest": Case(
        1, 5, 1, 1, 1, 100, (200,), (), error=True,
        conditions=(("AbleToScale", "True", "SucceededGetScale"),
                    ("ScalingActive", "False", "FailedGetResourceMetric")),
    ),
    "TestEventCreated": Case(1, 5, 1, 1, 2, 50, (200,), (200,)),
    "TestEventNotCreated": Case(
        1, 5, 2, 2, 2, 50, (200, 200), (400, 400),
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestMissingReports": Case(1, 5, 4, 4, 2, 50, (200,), (200,), recommendations=()),
    "TestUpscaleCap": Case(
        1, 100, 3, 3, 24, 10, (100, 200, 300), (100,) * 3,
        scale_up=scaling_rules(0, 0, 700, 60, 0),
        conditions=status_ok(("ScalingLimited", "True", "ScaleUpLimit")),
    ),
    "TestUpscaleCapGreaterThanMaxReplicas": Case(
        1, 20, 3, 3, 20, 10, (100, 200, 300), (100,) * 3,
        scale_up=scaling_rules(0, 0, 700, 60, 0),
        conditions=status_ok(("ScalingLimited", "True", "TooManyReplicas")),
    ),
    "TestMoreReplicasThanSpecNoScale": Case(
        1, 8, 4, 5, 4, 50, (500,) * 5, (1000,) * 5,
        conditions=status_ok(("AbleToScale", "True", "ReadyForNewScale")),
    ),
    "TestConditionFailedGetMetrics/FailedGetResourceMetric": Case(
        1, 100, 3, 3, 3, 10, (100, 200, 300), (100,) * 3, failing=(MetricQuery("cpu"),),
        error=True,
        conditions=(("AbleToScale", "True", "SucceededGetScale"),
                    ("ScalingActive", "False", "FailedGetResourceMetric")),
    ),
    "TestConditionFailedUpdateScale": Case(
        1, 5, 3, 3, 3, 100, (150, 150, 150), (100,) * 3, update_fails=True, error=True,
        conditions=status_ok(("AbleToScale", "False", "FailedUpdateScale")),
    ),
    "TestStabilizeDownscale": Case(
        1, 5, 4, 4, 4, 100, (50, 50, 50), (100,) * 3,
        recommendations=(Recommendation(10, NOW - 600), Recommendation(4, NOW - 60)),
        conditions=status_ok(("AbleToScale", "True", "ScaleDownStabilized")),
    ),
    "TestScaleUpRCImmediately": Case(
        2, 6, 1, 1, 2, 0, (0, 0, 0, 0), (1000,) * 4,
        conditions=(("AbleToScale", "True", "SucceededRescale"),),
    ),
    "TestScaleDownRCImmediately": Case(
        2, 5, 6, 6, 5, 50, (8000, 9500, 1000), (900, 1000, 1100),
        conditions=(("AbleToScale", "True", "SucceededRescale"),),
    ),
    "TestScaleUpOneMetricEmpty": Case(
        2, 6, 3, 3, 4, 30, (300, 400, 500), (1000,) * 3, metrics=(FAILING_MEMORY,),
        failing=(MetricQuery("memory"),), error=True,
    ),
    "TestNoScaleDownOneMetricEmpty": Case(
        2, 6, 5, 5, 5, 50, (100, 300, 500, 250, 250), (1000,) * 5, metrics=(FAILING_MEMORY,),
        failing=(MetricQuery("memory"),), recommendations=(), error=True,
        conditions=(("AbleToScale", "True", "SucceededGetScale"),
                    ("ScalingActive", "False", "FailedGetResourceMetric")),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_a_sync_is_upstreams(name):
    case = CASES[name]
    result, state, updates = sync(case)
    expected_update = [] if case.spec == case.desired or case.update_fails else [case.desired]
    assert updates.written == expected_update
    assert state.desired_replicas == result.desired_replicas == case.desired
    conditions = tuple((c.type, c.status, c.reason) for c in state.conditions)
    assert conditions == (STATUS_OK if case.conditions is None else case.conditions)
    assert (result.error is not None) == case.error
    if case.cpu_current is not None:
        assert state.current_metrics[0].average_utilization == case.cpu_current


def test_computed_tolerance_alg_implementation():
    """TestComputedToleranceAlgImplementation: 10 pods at 50% of their requests scale down to 9
    for a target just past the tolerance, and stay for one just within it."""
    spread = (100, -100, 10, -10, 2, -2, 1, -1, 0, 0)
    requests = tuple(300 + jitter for jitter in spread)
    for target, expected, able in ((56, 9, "SucceededRescale"), (55, 10, "ReadyForNewScale")):
        case = Case(0, 1000, 10, 10, expected, target, (150,) * 10, requests, recommendations=())
        result, state, _ = sync(case)
        assert result.desired_replicas == expected
        assert state.conditions[0].reason == able


def test_rescale_events_and_messages_are_upstreams():
    """TestEventCreated's message; a failed update's FailedRescale; the failed metric's event
    and FailedComputeMetricsReplicas, with upstream's wrapping."""
    result, state, _ = sync(CASES["TestEventCreated"])
    assert [(e.type, e.reason, e.message) for e in result.events] == [
        (
            "Normal",
            "SuccessfulRescale",
            "New size: 2; reason: cpu resource utilization (percentage of request) above target",
        )
    ]
    assert state.last_scale_time == NOW
    assert (
        state.conditions[0].message == "the HPA controller was able to update the target scale to 2"
    )
    assert state.conditions[1].message == (
        "the HPA was able to successfully calculate a replica count from cpu resource utilization"
        " (percentage of request)"
    )

    result, _, _ = sync(CASES["TestConditionFailedUpdateScale"])
    assert [(e.reason, e.message) for e in result.events] == [
        (
            "FailedRescale",
            "New size: 5; reason: cpu resource utilization (percentage of request) above target;"
            " error: something went wrong",
        )
    ]
    assert result.error == (
        "failed to rescale ReplicationController/test-namespace/test-rc: something went wrong"
    )

    result, state, _ = sync(CASES["TestEmptyMetrics"])
    cause = (
        "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics"
        " returned from resource metrics API"
    )
    invalid = (
        "invalid metrics (1 invalid out of 1), first error is:"
        f" failed to get cpu resource metric value: {cause}"
    )
    assert [(e.type, e.reason, e.message) for e in result.events] == [
        ("Warning", "FailedGetResourceMetric", cause),
        ("Warning", "FailedComputeMetricsReplicas", invalid),
    ]
    assert (
        state.conditions[1].message == f"the HPA was unable to compute the replica count: {cause}"
    )
    assert result.error == (
        "failed to compute desired number of replicas based on listed metrics for"
        f" ReplicationController/test-namespace/test-rc: {invalid}"
    )


def test_a_container_resource_metric_is_named_as_upstream_names_it():
    result, state, _ = sync(CASES["TestScaleUpContainer"])
    assert result.reason == (
        "cpu container resource utilization (percentage of request) above target"
    )
    assert state.current_metrics[0].average_utilization == 50


def test_one_failed_metric_does_not_stop_a_scale_up():
    """TestScaleUpOneMetricEmpty: the sync scales up on the metric that works and still returns
    the other's error."""
    result, state, _ = sync(CASES["TestScaleUpOneMetricEmpty"])
    assert result.rescaled and result.error.startswith("invalid metrics (1 invalid out of 2)")
    assert state.current_metrics[1] is None


# TestConvertDesiredReplicasWithRules, with upstream's test factor (8).
CONVERSIONS = {
    "prenormalized desired replicas within range": (5, 7, 3, 8, 7, "DesiredWithinRange"),
    "prenormalized desired replicas < minReplicas": (3, 1, 2, 8, 2, "TooFewReplicas"),
    "prenormalized desired zeroed replicas within range": (1, 0, 0, 10, 0, "DesiredWithinRange"),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": (
        20, 1000, 1, 10, 10, "TooManyReplicas"
    ),
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas": (
        3, 1000, 1, 2000, rates.calculate_scale_up_limit(3, 8), "ScaleUpLimit"
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", CONVERSIONS)
def test_convert_desired_replicas_with_rules(name):
    current, desired, low, high, replicas, reason = CONVERSIONS[name]
    limited = rates.convert_desired_replicas_with_rules(current, desired, low, high, factor=8)
    assert (limited.replicas, limited.reason) == (replicas, reason)


def test_the_default_scale_up_cap_doubles_or_adds_four():
    assert rates.calculate_scale_up_limit(3) == 6 and rates.calculate_scale_up_limit(1) == 4


def test_calculate_scale_up_and_down_limits_with_a_min_policy():
    """TestCalculateScaleUpLimitWithScalingRules and TestCalculateScaleDownLimitWithBehaviors."""
    rules = ScalingRules(
        300, "Min", (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60))
    )
    assert rates.scale_up_limit_with_scaling_rules(1, [], [], rules, NOW) == 2
    assert rates.scale_down_limit_with_behaviors(5, [], [], rules, NOW) == 3


def recommendations(*pairs: tuple[int, float]) -> list[Recommendation]:
    return [Recommendation(replicas, NOW - age) for replicas, age in pairs]


# TestNormalizeDesiredReplicas (stabilizeRecommendation, 5-minute window):
# recommendations (replicas, age), desired, stabilized, recommendations kept.
STABILIZATIONS = {
    "empty log": ((), 5, 5, 1),
    "stabilize": (((4, 120), (5, 60)), 3, 5, 3),
    "no stabilize": (((1, 120), (2, 60)), 3, 3, 3),
    "no stabilize - old recommendations": (((10, 600), (9, 540)), 3, 3, 2),
    "stabilize - old recommendations": (((10, 600), (4, 60), (5, 120), (9, 540)), 3, 5, 4),
}


@pytest.mark.parametrize("name", STABILIZATIONS)
def test_normalize_desired_replicas(name):
    pairs, desired, expected, kept = STABILIZATIONS[name]
    log = recommendations(*pairs)
    assert rates.stabilize_recommendation(log, desired, NOW, 300) == expected
    assert len(log) == kept


# TestNormalizeDesiredReplicasWithBehavior: recommendations (replicas, age), current, desired,
# stabilized, recommendations after (None: not checked), up window, down window.
BEHAVIOR_STABILIZATIONS = {
    "empty recommendations for scaling down": ((), 100, 5, 5, (5,), 0, 0),
    "simple scale down stabilization": (((4, 120), (5, 60)), 100, 3, 5, (4, 5, 3), 0, 180),
    "simple scale up stabilization": (((4, 120), (5, 60)), 1, 7, 4, (4, 5, 7), 300, 0),
    "no scale down stabilization": (((1, 120), (2, 60)), 100, 3, 3, (1, 2, 3), 300, 0),
    "no scale up stabilization": (((4, 120), (5, 60)), 1, 3, 3, (4, 5, 3), 0, 300),
    "no scale down stabilization, reuse recommendation element": (
        ((10, 600), (9, 540)), 100, 3, 3, (10, 3), 0, 0
    ),
    "no scale up stabilization, reuse recommendation element": (
        ((10, 600), (9, 540)), 1, 100, 100, (10, 100), 0, 0
    ),
    "scale down stabilization, reuse one of obsolete recommendation element": (
        ((10, 600), (4, 60), (5, 120), (9, 540)), 100, 3, 5, (10, 4, 5, 3), 0, 180
    ),
    "scale up stabilization, reuse one of obsolete recommendation element": (
        ((10, 6000), (6, 60), (5, 120), (9, 180)), 1, 100, 5, (100, 6, 5, 9), 300, 0
    ),
    "scale up and down stabilization, do not scale up when prenormalized rec goes down": (
        ((2, 6000), (3, 180)), 2, 1, 2, None, 300, 300
    ),
    "scale up and down stabilization, do not scale down when prenormalized rec goes up": (
        ((2, 6000), (1, 180)), 2, 3, 2, None, 300, 300
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", BEHAVIOR_STABILIZATIONS)
def test_normalize_desired_replicas_with_behavior(name):
    pairs, current, desired, expected, after, up, down = BEHAVIOR_STABILIZATIONS[name]
    log = recommendations(*pairs)
    stabilized = rates.stabilize_recommendation_with_behaviors(log, current, desired, NOW, up, down)
    assert stabilized.replicas == expected
    if after is not None:
        assert [r.replicas for r in log] == list(after)


def uniform_events(changes: tuple[int, ...], period: int) -> list[ScaleEvent]:
    """generateEventsUniformDistribution: the events in the middles of equal segments of the
    last `period` seconds, oldest first (whole seconds, as upstream's Duration truncates)."""
    segment = period / len(changes)
    return [
        ScaleEvent(change, NOW - int(period - segment * (i + 1) + segment / 2))
        for i, change in enumerate(changes)
    ]


# TestScalingWithRules (convertDesiredReplicasWithBehaviorRate): up events, down events, min,
# max, scale-up rules, scale-down rules (None: the defaults), current, desired, expected
# replicas and condition.
R = scaling_rules
IN_RANGE, TOO_FEW, TOO_MANY = "DesiredWithinRange", "TooFewReplicas", "TooManyReplicas"
UP_LIMIT, DOWN_LIMIT = "ScaleUpLimit", "ScaleDownLimit"
RATE_CASES = {
    "prenormalized desired replicas within range": (
        (), (), 3, 8, None, None, 5, 7, 7, IN_RANGE
    ),
    "prenormalized desired replicas < minReplicas": (
        (), (), 2, 8, None, None, 3, 1, 2, TOO_FEW
    ),
    "prenormalized desired replicas within range when minReplicas is 0": (
        (), (), 0, 10, None, None, 1, 0, 0, IN_RANGE
    ),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": (
        (), (), 1, 10, None, None, 20, 1000, 10, TOO_MANY
    ),
    "desired replica count is more than the maximum replica count": (
        (), (), 100, 150, None, None, 100, 1000, 150, TOO_MANY
    ),
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies": (
        (), (), 1, 2000, R(0, 0, 1, 60, 0), None, 3, 1000, 4, UP_LIMIT
    ),
    "scaleUp with default behavior": (
        (), (), 1, 1000, None, None, 10, 50, 20, UP_LIMIT
    ),
    "scaleUp with pods policy larger than percent policy": (
        (), (), 1, 1000, R(100, 60, 100, 60, 0), None, 10, 500, 110, UP_LIMIT
    ),
    "scaleUp with percent policy larger than pods policy": (
        (), (), 1, 1000, R(2, 60, 100, 60, 0), None, 10, 500, 20, UP_LIMIT
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy": (
        (), (), 1, 1000, R(100, 60, 0, 0, 0), None, 10, 50, 50, IN_RANGE
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy": (
        (), (), 1, 1000, R(10000, 60, 0, 0, 0), None, 10, 50, 50, IN_RANGE
    ),
    "scaleUp with pod policy limitation": (
        (), (), 1, 1000, R(30, 60, 0, 0, 0), None, 10, 50, 40, UP_LIMIT
    ),
    "scaleUp with percent policy limitation": (
        (), (), 1, 1000, R(0, 0, 200, 60, 0), None, 10, 50, 30, UP_LIMIT
    ),
    "scaleDown with percent policy larger than pod policy": (
        (), (), 1, 1000, None, R(20, 60, 1, 60, 300), 100, 2, 80, DOWN_LIMIT
    ),
    "scaleDown with pod policy larger than percent policy": (
        (), (), 1, 1000, None, R(2, 60, 1, 60, 300), 100, 2, 98, DOWN_LIMIT
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy": (
        (), (), 1, 1000, None, R(100, 60, 0, 0, 300), 10, 0, 1, TOO_FEW
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy": (
        (), (), 5, 1000, None, R(0, 0, 100, 60, 300), 10, 2, 5, TOO_FEW
    ),
    "scaleDown with pod policy limitation": (
        (), (), 1, 1000, None, R(5, 60, 0, 0, 300), 10, 2, 5, DOWN_LIMIT
    ),
    "scaleDown with percent policy limitation": (
        (), (), 1, 1000, None, R(0, 0, 50, 60, 300), 10, 5, 5, IN_RANGE
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy and events": (
        (1, 5, 9), (), 1, 200, R(300, 60, 0, 0, 0), None, 100, 500, 200, TOO_MANY
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy and events": (
        (1, 5, 9), (), 1, 200, R(0, 0, 10000, 60, 0), None, 100, 500, 200, TOO_MANY
    ),
    "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent"
    " scale up events": (
        (1, 5, 9), (), 1, 1000, R(5, 120, 0, 0, 0), None, 100, 500, 100, UP_LIMIT
    ),
    "scaleUp with pod policy and previous scale up events": (
        (1, 5, 9), (), 1, 1000, R(150, 120, 0, 0, 0), None, 100, 500, 235, UP_LIMIT
    ),
    "scaleUp with percent policy and previous scale up events": (
        (1, 5, 9), (), 1, 1000, R(0, 0, 200, 120, 0), None, 100, 500, 255, UP_LIMIT
    ),
    "scaleUp with percent policy and previous scale up and down events": (
        (4,), (2,), 1, 1000, R(0, 0, 300, 300, 0), None, 6, 24, 16, UP_LIMIT
    ),
    "scaleDown with default policy and previous events": (
        (), (1, 5, 9), 1, 1000, None, None, 10, 5, 5, IN_RANGE
    ),
    "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events": (
        (), (1, 5, 9), 1, 1000, None, R(115, 120, 0, 0, 300), 100, 0, 1, TOO_FEW
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy and previous events": (
        (), (1, 5, 9), 5, 1000, None, R(130, 120, 0, 0, 300), 100, 0, 5, TOO_FEW
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy and previous events": (
        (), (1, 5, 9), 5, 1000, None, R(0, 0, 100, 120, 300), 100, 2, 5, TOO_FEW
    ),
    "scaleDown with pod policy limitation and previous events": (
        (), (1, 5, 9), 1, 1000, None, R(5, 120, 0, 0, 300), 100, 2, 100, DOWN_LIMIT
    ),
    "scaleDown with percent policy limitation and previous events": (
        (), (2, 4, 6), 1, 1000, None, R(0, 0, 50, 120, 300), 100, 0, 56, DOWN_LIMIT
    ),
    "scaleDown with percent policy and previous scale up and down events": (
        (2,), (4,), 1, 1000, None, R(0, 0, 50, 180, 0), 10, 1, 6, DOWN_LIMIT
    ),
    "scaleDown with previous events preventing further scale down": (
        (), (10, 10, 10), 1, 1000, None, R(0, 0, 10, 120, 300), 100, 0, 100, DOWN_LIMIT
    ),
    "scaleDown with with previous events still allowing more scale down": (
        (), (10, 10, 10), 1, 1000, None, R(0, 0, 1000, 120, 300), 10, 5, 5, IN_RANGE
    ),
    "check 'outdated' flag for events for one behavior for up": (
        (8, 12, 9, 11), (), 1, 1000, R(1000, 60, 0, 0, 0), None, 100, 200, 200, IN_RANGE
    ),
    "check that events were not marked 'outdated' for two different policies in the behavior"
    " for up": (
        (8, 12, 9, 11), (), 1, 1000, R(1000, 120, 100, 60, 0), None, 100, 200, 200, IN_RANGE
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for up": (
        (8, 12, 9, 11), (), 1, 1000, R(1000, 30, 100, 60, 0), None, 100, 200, 200, IN_RANGE
    ),
    "check 'outdated' flag for events for one behavior for down": (
        (), (8, 12, 9, 11), 1, 1000, None, R(1000, 60, 0, 0, 300), 100, 5, 5, IN_RANGE
    ),
    "check that events were not marked 'outdated' for two different policies in the behavior"
    " for down": (
        (), (8, 12, 9, 11), 1, 1000, None, R(1000, 120, 100, 60, 300), 100, 5, 5, IN_RANGE
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for"
    " down": (
        (), (8, 12, 9, 11), 1, 1000, None, R(1000, 30, 100, 60, 300), 100, 5, 5, IN_RANGE
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", RATE_CASES)
def test_scaling_with_rules(name):
    up, down, low, high, up_rules, down_rules, current, desired, expected, reason = RATE_CASES[name]
    behavior = Behavior(up_rules or DEFAULT_SCALE_UP, down_rules or DEFAULT_SCALE_DOWN)
    up_events = uniform_events(up, 120) if up else []
    down_events = uniform_events(down, 120) if down else []
    limited = rates.convert_desired_replicas_with_behavior_rate(
        current, desired, low, high, behavior, up_events, down_events, NOW
    )
    assert (limited.replicas, limited.reason) == (expected, reason)


# TestStoreScaleEvents: previous events (change, age), rules (None: no behavior), the change
# within the last 60 s before, and the events after (change, outdated).
STORE_CASES = {
    "empty entries with default behavior": ((), None, 0, ()),
    "empty entries with two-policy-behavior": ((), R(10, 60, 100, 60, 0), 0, ((5, False),)),
    "one outdated entry to be kept untouched without behavior": (
        ((7, 61),), None, 0, ((7, False),)
    ),
    "one outdated entry to be replaced with behavior": (
        ((7, 61),), R(10, 60, 100, 60, 0), 0, ((5, False),)
    ),
    "one actual entry to be not touched with behavior": (
        ((7, 58),), R(10, 60, 100, 60, 0), 7, ((7, False), (5, False))
    ),
    "two entries, one of them to be replaced": (
        ((7, 61), (6, 59)), R(10, 60, 0, 0, 0), 6, ((5, False), (6, False))
    ),
    "replace one entry, use policies with different periods": (
        ((8, 29), (6, 59), (7, 61), (9, 61)), R(10, 60, 100, 30, 0), 14,
        ((8, False), (6, False), (7, True), (5, False)),
    ),
    "two entries, both actual": (
        ((7, 58), (6, 59)), R(10, 120, 100, 30, 0), 13, ((7, False), (6, False), (5, False))
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", STORE_CASES)
@pytest.mark.parametrize("direction", ["up", "down"])
def test_store_scale_events(name, direction):
    previous, rules, change, after = STORE_CASES[name]
    events = [ScaleEvent(replicas, NOW - age) for replicas, age in previous]
    assert rates.replicas_change_per_period(60, events, NOW) == change
    behavior = None
    if rules is not None:
        behavior = Behavior(
            rules if direction == "up" else DEFAULT_SCALE_UP,
            rules if direction == "down" else DEFAULT_SCALE_DOWN,
        )
    up, down = (events, []) if direction == "up" else ([], events)
    new = 15 if direction == "up" else 5
    rates.store_scale_event(behavior, up, down, 10, new, NOW)
    assert [(e.replica_change, e.outdated) for e in events] == list(after)

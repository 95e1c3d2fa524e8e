"""The replica calculator against kubernetes
pkg/controller/podautoscaler/replica_calculator_test.go, case by case, each vector named after its
upstream test (the classic TestReplicaCalc* functions; current upstream gathers the resource ones
as subtests of TestReplicaCalcResourceScale).

Upstream's fake clients, translated: every pod is test-pod-<i> with two containers (container1,
container2) that each request the case's request, so a pod requests twice that; pods count
currentReplicas, or the length of podPhase when longer; Ready defaults to True with an unset
lastTransitionTime, phase to Running, and an unset podStartTime is Go's zero time, so both are
GO_ZERO here (long before any run), not None. A pod's metric is the sum of its containers' levels
(or one container's), timestamped with the case's zero timestamp and a one-minute window; a pod
whose levels miss a container has no metric, and no levels at all is the metrics client's "no
metrics returned from resource metrics API". hotCPUCreationTime is now, coolCPUCreationTime three
minutes earlier; the calculator runs with upstream's testing periods (cpu initialization 2 min,
initial readiness delay 10 s) and tolerance 0.1.

The custom-metric (Pods) cases run calcPlainMetricReplicas, which GetRawResourceReplicas shares:
they are ported through an AverageValue memory metric, which groups pods as a custom metric does
(no cpu readiness rule). Object and External cases are not ported: the rehearsal has only
resource metrics.
"""

import math
from dataclasses import dataclass

import pytest

from tools.rehearsal.cluster.autoscaling.replica_calculator import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ContainerInfo,
    PodInfo,
    ReplicaCalculationError,
    ReplicaCalculator,
    Tolerances,
    calculate_requests,
    group_pods,
)
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric

NOW = 10_000.0
GO_ZERO = -1e12  # Go's zero time.Time
HOT = NOW  # hotCPUCreationTime
COOL = NOW - 180  # coolCPUCreationTime
CALCULATOR = ReplicaCalculator(cpu_initialization_period=120, delay_of_initial_readiness_status=10)
CONTAINERS = ("container1", "container2")


def levels(*values: int) -> tuple[tuple[int, ...], ...]:
    """makePodMetricLevels: every container of pod i uses values[i]."""
    return tuple((value,) * len(CONTAINERS) for value in values)


@dataclass(frozen=True)
class Case:
    current: int
    requests: tuple[int, ...]  # millicores per container, by pod
    levels: tuple[tuple[int, ...], ...]  # millicores by pod and container
    target: int
    replicas: int = 0
    utilization: int = 0
    raw: int = 0
    readiness: tuple[bool, ...] = ()
    start: tuple[float, ...] = ()
    phase: tuple[str, ...] = ()
    deleting: tuple[bool, ...] = ()
    container: str | None = None
    pod_names: tuple[str, ...] = ()  # the names the metrics API reports, by index
    tolerances: Tolerances = Tolerances()
    error: str | None = None


def pods_of(case: Case) -> list[PodInfo]:
    count = max(case.current, len(case.phase))
    pods = []
    for i in range(count):
        request = {"cpu": case.requests[i]} if i < len(case.requests) else {}
        pods.append(
            PodInfo(
                name=f"test-pod-{i}",
                containers=tuple(ContainerInfo(name, request) for name in CONTAINERS),
                phase=case.phase[i] if case.phase else RUNNING,
                deleting=bool(case.deleting) and case.deleting[i],
                ready=case.readiness[i] if i < len(case.readiness) else True,
                ready_transition=GO_ZERO,
                start_time=case.start[i] if case.start else GO_ZERO,
            )
        )
    return pods


def resource_metrics(case: Case) -> dict[str, PodMetric] | MetricsUnavailable:
    """What the metrics client makes of the fake PodMetrics list (getPodMetrics,
    getContainerMetrics)."""
    if not case.levels:
        return MetricsUnavailable("no metrics returned from resource metrics API")
    found = {}
    for i, values in enumerate(case.levels):
        name = case.pod_names[i] if i < len(case.pod_names) else f"test-pod-{i}"
        usage = dict(zip(CONTAINERS, values, strict=False))
        if case.container is not None:
            if case.container in usage:
                found[name] = PodMetric(usage[case.container], GO_ZERO, 60)
        elif len(usage) == len(CONTAINERS):
            found[name] = PodMetric(sum(usage.values()), GO_ZERO, 60)
    return found


# TestReplicaCalcResourceScale and the classic tests it gathered, with the tolerance, missing
# metrics and rolling-update cases.
RESOURCE_CASES = {
    "TestReplicaCalcScaleUp": Case(3, (1000,) * 3, levels(300, 500, 700), 30, 5, 50, 2 * 500),
    "TestReplicaCalcContainerScaleUp": Case(
        3, (1000,) * 3, ((1000, 300), (1000, 500), (1000, 700)), 30, 5, 50, 500,
        container="container2",
    ),
    "TestReplicaCalcScaleUpUnreadyLessScale": Case(
        3, (1000,) * 3, levels(300, 500, 700), 30, 4, 60, 2 * 600,
        readiness=(False, True, True),
    ),
    "TestReplicaCalcScaleUpContainerHotCpuLessScale": Case(
        3, (1000,) * 3, ((0, 300), (0, 500), (0, 700)), 30, 4, 60, 600,
        start=(HOT, COOL, COOL), container="container2",
    ),
    "TestReplicaCalcScaleUpHotCpuLessScale": Case(
        3, (1000,) * 3, levels(300, 500, 700), 30, 4, 60, 2 * 600, start=(HOT, COOL, COOL)
    ),
    "TestReplicaCalcScaleUpUnreadyNoScale": Case(
        3, (1000,) * 3, levels(400, 500, 700), 30, 3, 40, 2 * 400,
        readiness=(True, False, False),
    ),
    "TestReplicaCalcScaleHotCpuNoScale": Case(
        3, (1000,) * 3, levels(400, 500, 700), 30, 3, 40, 2 * 400,
        readiness=(True, False, False), start=(COOL, HOT, HOT),
    ),
    "TestReplicaCalcScaleUpIgnoresFailedPods": Case(
        2, (1000,) * 4, levels(500, 700), 30, 4, 60, 2 * 600,
        readiness=(True, True, False, False), phase=(RUNNING, RUNNING, FAILED, FAILED),
    ),
    "TestReplicaCalcMissingContainerMetricScaleUpIgnoresFailedPods": Case(
        2, (1000,) * 4, ((1000, 500), (9000, 700), (1000,), (9000,)), 30, 4, 60, 600,
        readiness=(True, True, False, False), phase=(RUNNING, RUNNING, FAILED, FAILED),
        container="container2",
    ),
    "TestReplicaCalcScaleUpContainerIgnoresFailedPods": Case(
        2, (1000,) * 4, ((1000, 500), (9000, 700)), 30, 4, 60, 600,
        readiness=(True, True, False, False), phase=(RUNNING, RUNNING, FAILED, FAILED),
        container="container2",
    ),
    "TestReplicaCalcScaleUpIgnoresDeletionPods": Case(
        2, (1000,) * 4, levels(500, 700), 30, 4, 60, 2 * 600,
        readiness=(True, True, False, False), deleting=(False, False, True, True),
    ),
    "TestReplicaCalcScaleUpContainerIgnoresDeletionPods": Case(
        2, (1000,) * 4, levels(500, 700), 30, 4, 60, 600,
        readiness=(True, True, False, False), deleting=(False, False, True, True),
        container="container1",
    ),
    "TestReplicaCalcScaleDown": Case(
        5, (1000,) * 5, levels(100, 300, 500, 250, 250), 50, 3, 28, 2 * 280
    ),
    "TestReplicaCalcContainerScaleDown": Case(
        5, (1000,) * 5, ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50, 3, 28, 280, container="container2",
    ),
    "TestReplicaCalcScaleDownExcludeUnreadyPods": Case(
        5, (1000,) * 5, levels(100, 300, 500, 250, 250), 50, 2, 30, 2 * 300,
        readiness=(True, True, True, False, False),
    ),
    "TestReplicaCalcScaleDownContainerExcludeUnreadyPods": Case(
        5, (1000,) * 5, ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50, 2, 30, 300, readiness=(True, True, True, False, False), container="container2",
    ),
    "TestReplicaCalcScaleDownExcludeUnscheduledPods": Case(
        5, (1000,) * 5, levels(100), 50, 1, 10, 2 * 100,
        readiness=(True, False, False, False, False), phase=(RUNNING,) + (PENDING,) * 4,
    ),
    "TestReplicaCalcScaleDownIgnoreHotCpuPods": Case(
        5, (1000,) * 5, levels(100, 300, 500, 250, 250), 50, 2, 30, 2 * 300,
        start=(COOL, COOL, COOL, HOT, HOT),
    ),
    "TestReplicaCalcScaleDownContainerIgnoreHotCpuPods": Case(
        5, (1000,) * 5, ((1000, 100), (1000, 300), (1000, 500), (1000, 1000), (1000, 1000)),
        50, 2, 30, 300, start=(COOL, COOL, COOL, HOT, HOT), container="container2",
    ),
    "TestReplicaCalcScaleDownIgnoresFailedPods": Case(
        5, (1000,) * 7, levels(100, 300, 500, 250, 250), 50, 3, 28, 2 * 280,
        readiness=(True,) * 5 + (False,) * 2, phase=(RUNNING,) * 5 + (FAILED,) * 2,
    ),
    "TestReplicaCalcScaleDownIgnoresDeletionPods": Case(
        5, (1000,) * 7, levels(100, 300, 500, 250, 250), 50, 3, 28, 2 * 280,
        readiness=(True,) * 5 + (False,) * 2, phase=(RUNNING,) * 7,
        deleting=(False,) * 5 + (True,) * 2,
    ),
    # Regression test for kubernetes/kubernetes#83561.
    "TestReplicaCalcScaleDownContainerIgnoresDeletionPods": Case(
        5, (1000,) * 7, ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
        50, 3, 28, 280, readiness=(True,) * 5 + (False,) * 2, phase=(RUNNING,) * 7,
        deleting=(False,) * 5 + (True,) * 2, container="container2",
    ),
    "TestReplicaCalcTolerance": Case(
        3, (900, 1000, 1100), levels(1010, 1030, 1020), 100, 3, 102, 2 * 1020
    ),
    "TestReplicaCalcConfigurableTolerance/Outside of a 0% tolerance": Case(
        3, (900, 1000, 1100), levels(909, 1010, 1111), 100, 4, 101, 2 * 1010,
        tolerances=Tolerances(0.0, 0.0),
    ),
    "TestReplicaCalcConfigurableTolerance/Within a 200% scale-up tolerance": Case(
        3, (900, 1000, 1100), levels(1890, 1910, 1900), 100, 3, 190, 2 * 1900,
        tolerances=Tolerances(0.1, 2.0),
    ),
    "TestReplicaCalcConfigurableTolerance/Outside 8% scale-up tolerance": Case(
        3, (900, 1000, 1100), levels(1100, 1080, 1090), 100, 4, 109, 2 * 1090,
        tolerances=Tolerances(2.0, 0.08),
    ),
    "TestReplicaCalcConfigurableTolerance/Within a 36% scale-down tolerance": Case(
        3, (900, 1000, 1100), levels(660, 640, 650), 100, 3, 65, 2 * 650,
        tolerances=Tolerances(0.36, 0.1),
    ),
    "TestReplicaCalcConfigurableTolerance/Outside a 34% scale-down tolerance": Case(
        3, (900, 1000, 1100), levels(660, 640, 650), 100, 2, 65, 2 * 650,
        tolerances=Tolerances(0.34, 0.1),
    ),
    "TestReplicaCalcSuperfluousMetrics": Case(
        4, (1000,) * 4, levels(4000, 9500, 3000, 7000, 3200, 2000), 100, 24, 587, 2 * 5875
    ),
    "TestReplicaCalcMissingMetrics": Case(4, (1000,) * 4, levels(400, 95), 100, 3, 24, 495),
    "TestReplicaCalcMissingMetricsNoChangeEq": Case(
        2, (1000,) * 2, levels(1000), 100, 2, 100, 2 * 1000
    ),
    "TestReplicaCalcMissingMetricsNoChangeGt": Case(
        2, (1000,) * 2, levels(1900), 100, 2, 190, 2 * 1900
    ),
    "TestReplicaCalcMissingMetricsNoChangeLt": Case(
        2, (1000,) * 2, levels(600), 100, 2, 60, 2 * 600
    ),
    "TestReplicaCalcMissingMetricsUnreadyChange": Case(
        3, (1000,) * 3, levels(100, 450), 50, 3, 45, 2 * 450, readiness=(False, True, True)
    ),
    "TestReplicaCalcMissingMetricsHotCpuNoChange": Case(
        3, (1000,) * 3, levels(100, 450), 50, 3, 45, 2 * 450, start=(HOT, COOL, COOL)
    ),
    "TestReplicaCalcMissingMetricsUnreadyScaleUp": Case(
        3, (1000,) * 3, levels(100, 2000), 50, 4, 200, 2 * 2000, readiness=(False, True, True)
    ),
    "TestReplicaCalcMissingMetricsHotCpuScaleUp": Case(
        3, (1000,) * 3, levels(100, 2000), 50, 4, 200, 2 * 2000,
        readiness=(False, True, True), start=(HOT, COOL, COOL),
    ),
    "TestReplicaCalcMissingMetricsUnreadyScaleDown": Case(
        4, (1000,) * 4, levels(100, 100, 100), 50, 3, 10, 2 * 100,
        readiness=(False, True, True, True),
    ),
    "TestReplicaCalcMissingMetricsScaleDownTargetOver100": Case(
        4, (1000, 1000, 2000, 2000), levels(200, 100, 100), 300, 2, 6, 2 * 100,
        readiness=(False, True, True, True),
    ),
    "TestReplicaCalcDuringRollingUpdateWithMaxSurge": Case(
        2, (1000,) * 3, levels(100, 100), 50, 2, 10, 2 * 100, phase=(RUNNING,) * 3
    ),
    "TestReplicaCalcDisjointResourcesMetrics": Case(
        1, (1000,), levels(100), 100, pod_names=("an-older-pod-name",),
        error="no metrics returned matched known pods",
    ),
    "TestReplicaCalcEmptyMetrics": Case(
        4, (1000,) * 3, (), 100,
        error="unable to get metrics for resource cpu: no metrics returned from resource"
        " metrics API",
    ),
    "TestReplicaCalcEmptyCPURequest": Case(1, (), levels(200), 100, error="missing request for"),
}  # fmt: skip


@pytest.mark.parametrize("name", RESOURCE_CASES)
def test_resource_replicas_are_upstreams(name):
    case = RESOURCE_CASES[name]
    calculate = CALCULATOR.resource_replicas
    args = (
        case.current,
        case.target,
        "cpu",
        case.tolerances,
        pods_of(case),
        resource_metrics(case),
    )
    if case.error is not None:
        with pytest.raises(ReplicaCalculationError, match=f"^{case.error}"):
            calculate(*args, NOW, case.container)
        return
    answer = calculate(*args, NOW, case.container)
    assert (answer.replicas, answer.utilization, answer.raw_utilization) == (
        case.replicas,
        case.utilization,
        case.raw,
    )
    assert answer.timestamp == GO_ZERO


def test_computed_tolerance_alg_implementation():
    """TestReplicaCalcComputedToleranceAlgImplementation, with upstream's arithmetic: a target
    just past the tolerance scales 10 pods at 50% down to 9, one just within keeps 10."""
    start_pods, used = 10, 10 * 150
    requested = 2 * used
    requested_to_used = float(requested // used)
    per_pod = requested // start_pods
    spread = (100, -100, 10, -10, 2, -2, 1, -1, 0, 0)
    for offset, expected in ((0.01, None), (0.004, start_pods)):
        target = abs(1 / (requested_to_used * (1 - 0.1))) + offset
        if expected is None:
            expected = math.ceil(used / (requested * target) * start_pods)
        case = Case(
            start_pods,
            tuple(per_pod + jitter for jitter in spread),
            levels(*(used // 10,) * 10),
            int(target * 100),
        )
        answer = CALCULATOR.resource_replicas(
            case.current,
            case.target,
            "cpu",
            Tolerances(),
            pods_of(case),
            resource_metrics(case),
            NOW,
        )
        assert (answer.replicas, answer.utilization, answer.raw_utilization) == (
            expected,
            used * 100 // requested,
            2 * used // 10,
        )
    assert expected == start_pods


@dataclass(frozen=True)
class PlainCase:
    current: int
    levels: tuple[int, ...]  # the metric by pod
    target: int
    replicas: int
    usage: int
    readiness: tuple[bool, ...] = ()
    start: tuple[float, ...] = ()
    phase: tuple[str, ...] = ()
    tolerances: Tolerances = Tolerances()


# calcPlainMetricReplicas cases (custom metrics upstream, "qps" in milli-units).
PLAIN_CASES = {
    "TestReplicaCalcScaleUpCM": PlainCase(3, (20000, 10000, 30000), 15000, 4, 20000),
    "TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale": PlainCase(
        3, (50000, 10000, 30000), 15000, 6, 30000,
        readiness=(True, True, False), start=(COOL, COOL, HOT),
    ),
    "TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown": PlainCase(
        3, (50000, 15000, 30000), 15000, 7, 31666,
        readiness=(False, True, False), start=(HOT, COOL, HOT),
    ),
    "TestReplicaCalcScaleDownCM": PlainCase(5, (12000,) * 5, 20000, 3, 12000),
    "TestReplicaCalcToleranceCM": PlainCase(3, (20000, 21000, 21000), 20000, 3, 20666),
    "TestReplicaCalcConfigurableToleranceCM": PlainCase(
        3, (20000, 21000, 21000), 20000, 4, 20666, tolerances=Tolerances(0.1, 0.01)
    ),
    "TestPlainMetricReplicaCalcMissingMetricsNoChangeEq": PlainCase(
        5, (20000, 19000, 21000), 20000, 5, 20000
    ),
    "TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM": PlainCase(
        2, (10000, 10000), 17000, 2, 10000, phase=(RUNNING,) * 3
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", PLAIN_CASES)
def test_raw_resource_replicas_are_upstreams_plain_metric_replicas(name):
    case = PLAIN_CASES[name]
    pods = pods_of(
        Case(case.current, (), (), 0, readiness=case.readiness, start=case.start, phase=case.phase)
    )
    metrics = {f"test-pod-{i}": PodMetric(v, GO_ZERO, 60) for i, v in enumerate(case.levels)}
    answer = CALCULATOR.raw_resource_replicas(
        case.current, case.target, "memory", case.tolerances, pods, metrics, NOW
    )
    assert (answer.replicas, answer.usage) == (case.replicas, case.usage)


def pod(name: str, phase: str = SUCCEEDED, **status) -> PodInfo:
    return PodInfo(name, (ContainerInfo("app"),), phase=phase, **status)


# TestGroupPods: (pods, metrics, resource) -> (ready count, unready, missing, ignored).
GROUP_CASES = {
    "void": ([], {}, "cpu", (0, set(), set(), set())),
    "count in a ready pod - memory": (
        [pod("bentham")], {"bentham": PodMetric(1, NOW, 60)}, "memory", (1, set(), set(), set())
    ),
    "unready a pod without ready condition - CPU": (
        [pod("lucretius", ready=None, start_time=NOW)],
        {"lucretius": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (0, {"lucretius"}, set(), set()),
    ),
    "count in a ready pod with fresh metrics during initialization period - CPU": (
        [pod("bentham", start_time=NOW - 60, ready_transition=NOW - 30)],
        {"bentham": PodMetric(1, NOW, 30)},
        "cpu",
        (1, set(), set(), set()),
    ),
    "unready a ready pod without fresh metrics during initialization period - CPU": (
        [pod("bentham", start_time=NOW - 60, ready_transition=NOW - 30)],
        {"bentham": PodMetric(1, NOW, 60)},
        "cpu",
        (0, {"bentham"}, set(), set()),
    ),
    "unready an unready pod during initialization period - CPU": (
        [pod("lucretius", ready=False, start_time=NOW - 600, ready_transition=NOW - 594)],
        {"lucretius": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (0, {"lucretius"}, set(), set()),
    ),
    "count in a ready pod without fresh metrics after initialization period - CPU": (
        [pod("bentham", start_time=NOW - 180, ready_transition=NOW - 180)],
        {"bentham": PodMetric(1, NOW - 120, 60)},
        "cpu",
        (1, set(), set(), set()),
    ),
    "count in an unready pod that was ready after initialization period - CPU": (
        [pod("lucretius", ready=False, start_time=NOW - 600, ready_transition=NOW - 540)],
        {"lucretius": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (1, set(), set(), set()),
    ),
    "unready pod that has never been ready after initialization period - CPU": (
        [pod("lucretius", ready=False, start_time=NOW - 600, ready_transition=NOW - 590)],
        {"lucretius": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (1, set(), set(), set()),
    ),
    "a missing pod": (
        [pod("epicurus", ready=None, start_time=NOW - 180)],
        {},
        "cpu",
        (0, set(), {"epicurus"}, set()),
    ),
    "several pods": (
        [
            pod("lucretius", ready=None, start_time=NOW),
            pod("niccolo", start_time=NOW - 180, ready_transition=NOW - 180),
            pod("epicurus", ready=None, start_time=NOW - 180),
        ],
        {"lucretius": PodMetric(1, GO_ZERO, 0), "niccolo": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (1, {"lucretius"}, {"epicurus"}, set()),
    ),
    "pending pods are unreadied": (
        [pod("unscheduled", PENDING, ready=None)], {}, "cpu", (0, {"unscheduled"}, set(), set())
    ),
    "ignore pods with deletion timestamps": (
        [pod("deleted", PENDING, ready=None, deleting=True)],
        {"deleted": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (0, set(), set(), {"deleted"}),
    ),
    "ignore pods in a failed state": (
        [pod("failed", FAILED, ready=None)],
        {"failed": PodMetric(1, GO_ZERO, 0)},
        "cpu",
        (0, set(), set(), {"failed"}),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", GROUP_CASES)
def test_group_pods_is_upstreams(name):
    """TestGroupPods, case by case (a pod without a start time upstream has none here either)."""
    pods, metrics, resource, expected = GROUP_CASES[name]
    groups = group_pods(pods, metrics, resource, 120, 10, NOW)
    assert (groups.ready_count, groups.unready, groups.missing, groups.ignored) == expected


def test_a_stale_sample_of_a_pod_that_became_ready_is_set_aside_for_a_window():
    """groupPods: within the cpu initialization period, a ready pod's sample counts only once it
    covers a whole window after the pod turned ready (the start-up burst stays out)."""
    ready = pod("app-1", RUNNING, start_time=NOW - 60, ready_transition=NOW - 20)
    groups = group_pods([ready], {"app-1": PodMetric(100, NOW - 5, 30)}, "cpu", 300, 30, NOW)
    assert groups.unready == {"app-1"}
    groups = group_pods([ready], {"app-1": PodMetric(100, NOW + 15, 30)}, "cpu", 300, 30, NOW)
    assert groups.ready_count == 1


TWO_CONTAINERS = (
    ContainerInfo("container1", {"cpu": 100}),
    ContainerInfo("container2", {"cpu": 50}),
)


def requests_pod(*containers: ContainerInfo) -> PodInfo:
    return PodInfo("test-pod", containers)


# TestCalculateRequests (without pod-level resources, which the rehearsal does not model) and
# TestCalculatePodRequestsFromContainers_NonExistentContainer.
REQUEST_CASES = {
    "void": ([], None, {}),
    "Sum container requests if pod-level feature is disabled": (
        [requests_pod(TWO_CONTAINERS[0], TWO_CONTAINERS[1])],
        None,
        {"test-pod": 150},
    ),
    "Fail if at least one of the containers is missing requests": (
        [requests_pod(ContainerInfo("container1"), ContainerInfo("container2", {"cpu": 50}))],
        None,
        "missing request for cpu in container container1 of Pod test-pod",
    ),
    "Container: if a container name is specified, calculate requests only for that container": (
        [requests_pod(TWO_CONTAINERS[0], TWO_CONTAINERS[1])],
        "container1",
        {"test-pod": 100},
    ),
    "TestCalculatePodRequestsFromContainers_NonExistentContainer": (
        [requests_pod(ContainerInfo("container1", {"cpu": 100}))],
        "non-existent-container",
        "container non-existent-container not found in Pod test-pod",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", REQUEST_CASES)
def test_calculate_requests_is_upstreams(name):
    pods, container, expected = REQUEST_CASES[name]
    if isinstance(expected, str):
        with pytest.raises(ReplicaCalculationError) as raised:
            calculate_requests(pods, container, "cpu")
        assert str(raised.value) == expected
    else:
        assert calculate_requests(pods, container, "cpu") == expected


def test_no_pods_and_no_ready_metrics_are_upstreams_errors():
    metrics = {"test-pod-0": PodMetric(100, GO_ZERO, 60)}
    with pytest.raises(ReplicaCalculationError) as raised:
        CALCULATOR.resource_replicas(1, 50, "cpu", Tolerances(), [], metrics, NOW)
    assert str(raised.value) == "no pods returned by selector while calculating replica count"
    unready = [pod("test-pod-0", RUNNING, ready=False, start_time=NOW, ready_transition=NOW)]
    with pytest.raises(ReplicaCalculationError) as raised:
        CALCULATOR.resource_replicas(1, 50, "cpu", Tolerances(), unready, metrics, NOW)
    assert str(raised.value) == "did not receive metrics for targeted pods (pods might be unready)"


def test_tolerances_bound_the_ratio_inclusively():
    tolerances = Tolerances(scale_down=0.1, scale_up=0.2)
    assert tolerances.within(0.9) and tolerances.within(1.2)
    assert not tolerances.within(0.89) and not tolerances.within(1.21)


def test_a_pod_sums_its_containers_requests():
    two = PodInfo(
        "p", (ContainerInfo("a", {"cpu": 100, "memory": 5}), ContainerInfo("b", {"cpu": 50}))
    )
    assert two.requests == {"cpu": 150}


def test_a_surge_pod_counts_among_the_ready_pods_and_a_terminating_one_does_not():
    """During a rolling update (maxSurge 1) of 3 replicas, the ready surge pod is measured and
    multiplies the ratio (kubernetes/kubernetes#72775: the HPA asks for 5 where 3 pods would
    ask for 4), the old pod being deleted is ignored; within tolerance the answer stays the
    scale's spec.replicas, not the 4 pods."""
    busy = Case(3, (250,) * 4, levels(200, 200, 200, 200), 70, phase=(RUNNING,) * 4)
    answer = CALCULATOR.resource_replicas(
        3, 70, "cpu", Tolerances(), pods_of(busy), resource_metrics(busy), NOW
    )
    assert (answer.utilization, answer.replicas) == (80, 5)
    three = Case(3, (250,) * 3, levels(200, 200, 200), 70)
    answer = CALCULATOR.resource_replicas(
        3, 70, "cpu", Tolerances(), pods_of(three), resource_metrics(three), NOW
    )
    assert answer.replicas == 4
    calm = Case(3, (250,) * 5, levels(187, 187, 187, 187, 500), 70, deleting=(False,) * 4 + (True,))
    answer = CALCULATOR.resource_replicas(
        3, 70, "cpu", Tolerances(), pods_of(calm), resource_metrics(calm), NOW
    )
    assert (answer.utilization, answer.replicas) == (74, 3)

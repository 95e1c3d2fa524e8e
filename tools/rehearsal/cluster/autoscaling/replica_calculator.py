"""How many replicas a resource metric asks for: kubernetes
pkg/controller/podautoscaler/replica_calculator.go (GetResourceReplicas, GetRawResourceReplicas,
calcPlainMetricReplicas, groupPods, calculateRequests, removeMetricsForPods) and
pkg/controller/podautoscaler/metrics/utilization.go (GetResourceUtilizationRatio,
GetMetricUsageRatio), for Resource and ContainerResource metrics.

Times are seconds on one clock (the rehearsal's run time), passed in as `now`; quantities are
milli-units as the HPA reads them (millicores; bytes x 1000). Pod-level requests (KEP-2837) and
restartable init containers are not modelled: the rehearsal's pods have one container.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"

PodMetrics = Mapping[str, PodMetric]  # by pod name


class ReplicaCalculationError(Exception):
    """The replica count could not be computed; the message is upstream's."""


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    requests: Mapping[str, int] = field(default_factory=dict)  # milli-units by resource


@dataclass(frozen=True)
class PodInfo:
    """What the HPA reads of a pod (its status and its containers' requests)."""

    name: str
    containers: tuple[ContainerInfo, ...]
    phase: str = RUNNING  # status.phase
    deleting: bool = False  # metadata.deletionTimestamp is set
    ready: bool | None = True  # the Ready condition's status; None: no Ready condition
    # The Ready condition's lastTransitionTime; None: not recorded (as Go's zero time, long ago).
    ready_transition: float | None = None
    start_time: float | None = None  # status.startTime; None: not started (no startTime)

    @property
    def requests(self) -> dict[str, int]:
        """The pod's requests by resource, summed over its containers (a resource some
        container does not request is left out)."""
        names = {name for c in self.containers for name in c.requests}
        return {
            name: sum(c.requests[name] for c in self.containers)
            for name in names
            if all(name in c.requests for c in self.containers)
        }


@dataclass(frozen=True)
class Tolerances:
    """replica_calculator.go Tolerances: no scaling while the usage ratio stays within
    [1 - scale_down, 1 + scale_up]."""

    scale_down: float = 0.1
    scale_up: float = 0.1

    def within(self, usage_ratio: float) -> bool:
        return 1.0 - self.scale_down <= usage_ratio <= 1.0 + self.scale_up


@dataclass(frozen=True)
class PodGroups:
    """groupPods' answer: the ready pods' count, and the pods set aside by name."""

    ready_count: int
    unready: frozenset[str]  # pending, or (cpu) not ready or still starting
    missing: frozenset[str]  # no metric
    ignored: frozenset[str]  # deleting or failed


@dataclass(frozen=True)
class Grouped:
    """The samples of the pods that count (removeMetricsForPods done), their timestamp, and the
    pods' groups."""

    samples: dict[str, PodMetric]
    timestamp: float
    groups: PodGroups


@dataclass(frozen=True)
class ResourceReplicas:
    """GetResourceReplicas' answer for a Utilization target."""

    replicas: int
    utilization: int  # percent of the requests, over the pods with a metric
    raw_utilization: int  # their average usage in milli-units
    timestamp: float  # of the metrics


@dataclass(frozen=True)
class RawResourceReplicas:
    """GetRawResourceReplicas' answer for an AverageValue target."""

    replicas: int
    usage: int  # average usage in milli-units
    timestamp: float


def group_pods(
    pods: Sequence[PodInfo],
    metrics: PodMetrics,
    resource: str,
    cpu_initialization_period: float,
    delay_of_initial_readiness_status: float,
    now: float,
) -> PodGroups:
    """replica_calculator.go groupPods. For cpu only, a pod's sample is set aside while the pod
    is unready, or within cpu_initialization_period of its start when its sample does not yet
    cover a whole window since it turned ready (a starting JVM's burst); after that period an
    unready pod still counts if it was ever ready (it turned unready later than
    delay_of_initial_readiness_status after its start)."""
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == FAILED:
            ignored.add(pod.name)
            continue
        if pod.phase == PENDING:
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if resource == "cpu":
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            else:
                transition = -math.inf if pod.ready_transition is None else pod.ready_transition
                if pod.start_time + cpu_initialization_period > now:
                    is_unready = not pod.ready or metric.timestamp < transition + metric.window
                else:
                    is_unready = (
                        not pod.ready
                        and pod.start_time + delay_of_initial_readiness_status > transition
                    )
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return PodGroups(ready_count, frozenset(unready), frozenset(missing), frozenset(ignored))


def calculate_requests(
    pods: Sequence[PodInfo], container: str | None, resource: str
) -> dict[str, int]:
    """replica_calculator.go calculateRequests / calculatePodRequestsFromContainers: each pod's
    request of the resource, of one container or summed over all."""
    requests = {}
    for pod in pods:
        request = 0
        for c in pod.containers:
            if container is None or container == c.name:
                if resource not in c.requests:
                    raise ReplicaCalculationError(
                        f"missing request for {resource} in container {c.name} of Pod {pod.name}"
                    )
                request += c.requests[resource]
            if container == c.name:
                break
        else:
            if container is not None:
                raise ReplicaCalculationError(f"container {container} not found in Pod {pod.name}")
        requests[pod.name] = request
    return requests


def resource_utilization_ratio(
    metrics: PodMetrics, requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """utilization.go GetResourceUtilizationRatio: (usage ratio, utilization in percent of the
    requests, average usage), over the pods that have both a metric and a request."""
    metrics_total = requests_total = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue  # a metric of a pod the HPA does not count
        metrics_total += metric.value
        requests_total += requests[name]
        entries += 1
    if requests_total == 0:
        raise ReplicaCalculationError("no metrics returned matched known pods")
    utilization = metrics_total * 100 // requests_total
    return utilization / target_utilization, utilization, metrics_total // entries


def metric_usage_ratio(metrics: PodMetrics, target_usage: int) -> tuple[float, int]:
    """utilization.go GetMetricUsageRatio: (usage ratio, average usage)."""
    usage = sum(metric.value for metric in metrics.values()) // len(metrics)
    return usage / target_usage, usage


@dataclass(frozen=True)
class ReplicaCalculator:
    """replica_calculator.go ReplicaCalculator, with the controller's timing flags (seconds)."""

    cpu_initialization_period: float = 300.0
    delay_of_initial_readiness_status: float = 30.0

    def _grouped(
        self,
        pods: Sequence[PodInfo],
        metrics: PodMetrics | MetricsUnavailable,
        resource: str,
        now: float,
    ) -> Grouped:
        """The samples of the pods that count, their timestamp and the pods' groups; the errors
        both calculations raise before they compute anything."""
        samples, timestamp = fetched(metrics, resource)
        if not pods:
            raise ReplicaCalculationError(
                "no pods returned by selector while calculating replica count"
            )
        groups = self._groups(pods, samples, resource, now)
        if not samples:
            raise ReplicaCalculationError(
                "did not receive metrics for targeted pods (pods might be unready)"
            )
        return Grouped(samples, timestamp, groups)

    def resource_replicas(
        self,
        current_replicas: int,
        target_utilization: int,
        resource: str,
        tolerances: Tolerances,
        pods: Sequence[PodInfo],
        metrics: PodMetrics | MetricsUnavailable,
        now: float,
        container: str | None = None,
    ) -> ResourceReplicas:
        """GetResourceReplicas: the replicas for a target utilization (percent of requests)."""
        grouped = self._grouped(pods, metrics, resource, now)
        samples, timestamp, groups = grouped.samples, grouped.timestamp, grouped.groups
        requests = calculate_requests(pods, container, resource)
        ratio, utilization, raw = resource_utilization_ratio(samples, requests, target_utilization)
        answer = ResourceReplicas(current_replicas, utilization, raw, timestamp)

        scale_up_with_unready = bool(groups.unready) and ratio > 1.0
        if not scale_up_with_unready and not groups.missing:
            if tolerances.within(ratio):
                return answer
            return ResourceReplicas(
                math.ceil(ratio * groups.ready_count), utilization, raw, timestamp
            )

        if groups.missing:
            if ratio < 1.0:
                # Scaling down, a pod without a metric counts as using its whole request (or the
                # target, when the target is above 100%); scaling up, as using nothing.
                fallback = max(100, target_utilization)
                for name in groups.missing:
                    samples[name] = PodMetric(requests[name] * fallback // 100, 0, 0)
            elif ratio > 1.0:
                for name in groups.missing:
                    samples[name] = PodMetric(0, 0, 0)
        if scale_up_with_unready:
            for name in groups.unready:
                samples[name] = PodMetric(0, 0, 0)

        new_ratio, _, _ = resource_utilization_ratio(samples, requests, target_utilization)
        replicas = rescaled(current_replicas, ratio, new_ratio, len(samples), tolerances)
        return dataclasses.replace(answer, replicas=replicas)

    def raw_resource_replicas(
        self,
        current_replicas: int,
        target_usage: int,
        resource: str,
        tolerances: Tolerances,
        pods: Sequence[PodInfo],
        metrics: PodMetrics | MetricsUnavailable,
        now: float,
    ) -> RawResourceReplicas:
        """GetRawResourceReplicas and calcPlainMetricReplicas: the replicas for a target average
        usage (milli-units per pod)."""
        grouped = self._grouped(pods, metrics, resource, now)
        samples, timestamp, groups = grouped.samples, grouped.timestamp, grouped.groups
        ratio, usage = metric_usage_ratio(samples, target_usage)
        answer = RawResourceReplicas(current_replicas, usage, timestamp)

        scale_up_with_unready = bool(groups.unready) and ratio > 1.0
        if not scale_up_with_unready and not groups.missing:
            if tolerances.within(ratio):
                return answer
            return RawResourceReplicas(math.ceil(ratio * groups.ready_count), usage, timestamp)

        if groups.missing:
            # Scaling down, a pod without a metric counts as using exactly the target; scaling
            # up, as using nothing.
            fill = target_usage if ratio < 1.0 else 0
            if ratio != 1.0:
                for name in groups.missing:
                    samples[name] = PodMetric(fill, 0, 0)
        if scale_up_with_unready:
            for name in groups.unready:
                samples[name] = PodMetric(0, 0, 0)

        new_ratio, _ = metric_usage_ratio(samples, target_usage)
        replicas = rescaled(current_replicas, ratio, new_ratio, len(samples), tolerances)
        return dataclasses.replace(answer, replicas=replicas)

    def _groups(
        self, pods: Sequence[PodInfo], samples: dict[str, PodMetric], resource: str, now: float
    ) -> PodGroups:
        """groupPods, then the metrics of ignored and unready pods dropped
        (removeMetricsForPods)."""
        groups = group_pods(
            pods,
            samples,
            resource,
            self.cpu_initialization_period,
            self.delay_of_initial_readiness_status,
            now,
        )
        for name in groups.ignored | groups.unready:
            samples.pop(name, None)
        return groups


def rescaled(
    current: int, ratio: float, new_ratio: float, counted: int, tolerances: Tolerances
) -> int:
    """The replicas once missing and unready pods were filled in (`counted`: the pods then
    measured): the current count when the change is within tolerance, or when filling them in
    turned the direction of scaling around."""
    if (
        tolerances.within(new_ratio)
        or (ratio < 1.0 and new_ratio > 1.0)
        or (ratio > 1.0 and new_ratio < 1.0)
    ):
        return current
    replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def fetched(metrics: PodMetrics | MetricsUnavailable, resource: str) -> tuple[dict, float]:
    """The metrics as a copy the calculation may change, and their timestamp (the first
    pod's, as the metrics client takes it); MetricsUnavailable as upstream's error."""
    if isinstance(metrics, MetricsUnavailable):
        raise ReplicaCalculationError(f"unable to get metrics for resource {resource}: {metrics}")
    samples = dict(metrics)
    timestamp = next(iter(samples.values())).timestamp if samples else 0.0
    return samples, timestamp

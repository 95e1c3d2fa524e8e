"""The resource metrics API (metrics.k8s.io/v1beta1 PodMetrics) as the HPA's metrics client
reads it (kubernetes pkg/controller/podautoscaler/metrics: PodMetric, PodMetricsInfo)."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage of one resource, summed over its containers."""

    value: int  # milli-units, as the HPA reads a quantity: millicores, or bytes x 1000
    timestamp: float  # run seconds: the end of the window the usage was measured over
    window: float  # seconds


class MetricsUnavailable(Exception):
    """The API has no metrics for the pods asked about (the message says why)."""


class MetricsSource(Protocol):
    def pod_metrics(
        self, resource: str, pods: Collection[str], container: str | None = None
    ) -> dict[str, PodMetric]:
        """The metrics of those of `pods` that the API has, by pod name (`container`: that
        container's only, for a ContainerResource metric). Raises MetricsUnavailable when it
        has none."""
        ...

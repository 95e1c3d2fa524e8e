"""The status of an HPA as its controller keeps it between syncs, and what one sync reports
(kubernetes pkg/controller/podautoscaler/horizontal.go: the recommendations and scale events the
controller keeps by HPA, the object's status with its conditions, setCondition, setStatus)."""

from dataclasses import dataclass, field

from tools.rehearsal.cluster.autoscaling.behavior import Recommendation, ScaleEvent
from tools.rehearsal.manifests.autoscaler import ResourceMetric

ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED = "AbleToScale", "ScalingActive", "ScalingLimited"
NORMAL, WARNING = "Normal", "Warning"
COMPONENT = "horizontal-pod-autoscaler"  # the events' source, as upstream's recorder names it


@dataclass(frozen=True)
class Condition:
    type: str  # AbleToScale, ScalingActive or ScalingLimited
    status: str  # "True" or "False"
    reason: str
    message: str
    last_transition: float


@dataclass(frozen=True)
class MetricStatus:
    """A resource metric's status.currentMetrics entry."""

    metric: ResourceMetric
    average_value: int  # milli-units per pod
    average_utilization: int | None = None  # percent of the requests (a Utilization target)


@dataclass(frozen=True)
class HpaEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class AutoscalerState:
    """What outlives a sync, as upstream keeps it for one HPA object (by namespace/name): the
    controller's recommendations and scale events, and the object's status."""

    recommendations: list[Recommendation] | None = None  # None until the first sync records one
    scale_up_events: list[ScaleEvent] = field(default_factory=list)
    scale_down_events: list[ScaleEvent] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    current_replicas: int = 0
    desired_replicas: int = 0
    current_metrics: tuple[MetricStatus | None, ...] = ()  # None: that metric failed
    last_scale_time: float | None = None


@dataclass(frozen=True)
class Reconcile:
    """What one sync saw and did."""

    t: float
    current_replicas: int  # the scale's spec.replicas
    desired_replicas: int  # status.desiredReplicas after the sync
    recommended: int | None  # what the metrics asked for, before stabilization and limits
    metric_statuses: tuple[MetricStatus | None, ...]
    rescaled: bool
    reason: str  # the rescale's reason ("" when it did not rescale)
    conditions: tuple[Condition, ...]
    events: tuple[HpaEvent, ...]
    error: str | None = None  # the error reconcileAutoscaler returns

    @property
    def utilization(self) -> str:
        """What the first metric it read came to, "cpu 148%" ("" when it read none)."""
        read = next((m for m in self.metric_statuses if m is not None), None)
        if read is None or read.average_utilization is None:
            return ""
        return f"{read.metric.resource} {read.average_utilization}%"


class Sync:
    """A sync in progress: its clock, the state it updates and the events it emits."""

    def __init__(self, state: AutoscalerState, now: float) -> None:
        self.state, self.now = state, now
        self.events: list[HpaEvent] = []

    def condition(self, kind: str, status: bool, reason: str, message: str) -> None:
        """horizontal.go setCondition: set (or add) the condition; its transition time moves
        only when its status changes."""
        text = "True" if status else "False"
        conditions = self.state.conditions
        index = next((i for i, c in enumerate(conditions) if c.type == kind), None)
        if index is None:
            conditions.append(Condition(kind, text, reason, message, self.now))
            return
        old = conditions[index]
        moved = self.now if old.status != text else old.last_transition
        conditions[index] = Condition(kind, text, reason, message, moved)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append(HpaEvent(kind, reason, message))


def set_status(
    state: AutoscalerState,
    current: int,
    desired: int,
    statuses: tuple[MetricStatus | None, ...],
    rescaled: bool,
    now: float,
) -> None:
    """horizontal.go setStatus."""
    state.current_replicas, state.desired_replicas = current, desired
    state.current_metrics = statuses
    if rescaled:
        state.last_scale_time = now

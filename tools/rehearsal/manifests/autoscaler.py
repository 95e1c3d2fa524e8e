"""A HorizontalPodAutoscaler (autoscaling/v2) as the rehearsal reads it, with the API's defaults
filled in as kubernetes pkg/apis/autoscaling/v2/defaults.go fills them, and everything the emulated
controller cannot act on rejected with one error naming the field (the checks of
pkg/apis/autoscaling/validation/validation.go, and the rehearsal's own limits: resource metrics
only)."""

import dataclasses
import math
import re
from dataclasses import dataclass

from tools.kustomize import find
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.fields import Fields

API_VERSION = "autoscaling/v2"
RESOURCES = ("cpu", "memory")
# pkg/apis/autoscaling/types.go DefaultCPUUtilization: the metric of an HPA that lists none.
DEFAULT_CPU_UTILIZATION = 80
# pkg/apis/autoscaling/validation/validation.go MaxPeriodSeconds, MaxStabilizationWindowSeconds.
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
SELECT_POLICIES = ("Max", "Min", "Disabled")
POLICY_TYPES = ("Pods", "Percent")
# The apiVersion of the scale subresource's owner, by kind.
TARGET_API_VERSIONS = {"Deployment": "apps/v1", "Rollout": "argoproj.io/v1alpha1"}
QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m?)")


@dataclass(frozen=True)
class MetricTarget:
    type: str  # Utilization or AverageValue
    average_utilization: int | None = None  # percent of the pods' requests
    average_value: int | None = None  # milli-units per pod: millicores, or bytes x 1000


@dataclass(frozen=True)
class ResourceMetric:
    """A Resource metric, or a ContainerResource one when `container` is set."""

    resource: str  # cpu or memory
    target: MetricTarget
    container: str | None = None

    @property
    def type(self) -> str:
        return "Resource" if self.container is None else "ContainerResource"


@dataclass(frozen=True)
class ScalingPolicy:
    type: str  # Pods or Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """HPAScalingRules once defaulted (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules)."""

    # None only for scale-down: the controller's --horizontal-pod-autoscaler-downscale-
    # stabilization applies (horizontal.go maybeInitScaleDownStabilizationWindow).
    stabilization_window_seconds: int | None
    select_policy: str  # Max, Min or Disabled
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None  # None: the controller's --horizontal-pod-autoscaler-tolerance


# defaults.go defaultHPAScaleUpRules and defaultHPAScaleDownRules: the behavior of an HPA
# without one (at most 4 pods or 100% more per 15 s up; 100% per 15 s down).
DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    select_policy="Max",
    policies=(ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)),
)
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=None,
    select_policy="Max",
    policies=(ScalingPolicy("Percent", 100, 15),),
)


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


@dataclass(frozen=True)
class ScaleTargetRef:
    api_version: str
    kind: str
    name: str


@dataclass(frozen=True)
class HorizontalPodAutoscaler:
    name: str
    target: ScaleTargetRef
    min_replicas: int
    max_replicas: int
    metrics: tuple[ResourceMetric, ...]
    behavior: Behavior | None = None  # None: the controller's behavior-less path
    namespace: str = "default"


def generate_rules(
    defaults: ScalingRules,
    stabilization_window_seconds: int | None = None,
    select_policy: str | None = None,
    policies: tuple[ScalingPolicy, ...] | None = None,
    tolerance: float | None = None,
) -> ScalingRules:
    """The given fields over the defaults (defaults.go copyHPAScalingRules: what is set wins)."""
    given = {
        "stabilization_window_seconds": stabilization_window_seconds,
        "select_policy": select_policy,
        "policies": policies,
        "tolerance": tolerance,
    }
    return dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})


def read_autoscaler(
    resources: list[dict], source: str, owner_kind: str, owner_name: str
) -> HorizontalPodAutoscaler | None:
    """The HorizontalPodAutoscaler whose scaleTargetRef names the owner of the pods (kind and
    name), or None when none does."""
    found = [
        hpa
        for hpa in find(resources, "HorizontalPodAutoscaler")
        if (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == owner_kind
        and (hpa.get("spec") or {}).get("scaleTargetRef", {}).get("name") == owner_name
    ]
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(hpa.get("metadata", {}).get("name", "?") for hpa in found)
        raise RehearsalError(
            f"{source}: several HorizontalPodAutoscalers ({names}) target {owner_kind}"
            f" {owner_name}: one can be rehearsed"
        )
    resource = found[0]
    metadata = resource.get("metadata") or {}
    name = metadata.get("name", "?")
    where = f"{source}: HorizontalPodAutoscaler {name}"
    top = Fields(resource, where, "")
    api_version = resource.get("apiVersion")
    if api_version != API_VERSION:
        raise top.error(
            "apiVersion",
            f"{api_version!r} is not supported: the rehearsal reads {API_VERSION}",
        )
    spec = top.child("spec")
    target = read_target(spec.child("scaleTargetRef"), owner_kind, owner_name)
    if spec.data.get("selectionStrategy", "LabelSelector") != "LabelSelector":
        raise spec.error(
            "selectionStrategy",
            f"{spec.data['selectionStrategy']!r} is not supported: the rehearsal counts the pods"
            " the target's selector selects (LabelSelector)",
        )
    min_replicas = spec.integer("minReplicas", 1, minimum=0)
    if min_replicas < 1:
        raise spec.error(
            "minReplicas", "is 0, must be at least 1 (scaling to zero needs Object or External"
            " metrics, which the rehearsal does not have)"
        )  # fmt: skip
    max_replicas = spec.integer("maxReplicas", minimum=0)
    if max_replicas < 1:
        raise spec.error("maxReplicas", "must be greater than 0")
    if max_replicas < min_replicas:
        raise spec.error(
            "maxReplicas",
            f"is {max_replicas}, must be greater than or equal to minReplicas ({min_replicas})",
        )
    containers = container_names(resources, owner_kind, owner_name)
    metrics = tuple(read_metric(metric, containers) for metric in spec.items("metrics"))
    if not metrics:
        metrics = (ResourceMetric("cpu", MetricTarget("Utilization", DEFAULT_CPU_UTILIZATION)),)
    return HorizontalPodAutoscaler(
        name=name,
        target=target,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        behavior=read_behavior(spec.child("behavior")) if "behavior" in spec.data else None,
        namespace=metadata.get("namespace", "default"),
    )


def read_target(ref: Fields, kind: str, name: str) -> ScaleTargetRef:
    expected = TARGET_API_VERSIONS.get(kind)
    api_version = ref.data.get("apiVersion")
    if expected is not None and api_version != expected:
        raise ref.error("apiVersion", f"is {api_version!r}, not {expected!r} of {kind} {name}")
    return ScaleTargetRef(api_version=api_version or "", kind=kind, name=name)


def container_names(resources: list[dict], kind: str, name: str) -> tuple[str, ...]:
    """The containers of the owner's pod template (a Rollout's workloadRef'd Deployment's)."""
    owners = [r for r in find(resources, kind) if r.get("metadata", {}).get("name") == name]
    if not owners:
        return ()
    spec = owners[0].get("spec") or {}
    ref = spec.get("workloadRef") or {}
    if ref.get("kind") == "Deployment":
        for deployment in find(resources, "Deployment"):
            if deployment.get("metadata", {}).get("name") == ref.get("name"):
                spec = deployment.get("spec") or {}
    containers = (spec.get("template") or {}).get("spec", {}).get("containers") or []
    return tuple(c.get("name", "") for c in containers if isinstance(c, dict))


def read_metric(metric: Fields, containers: tuple[str, ...]) -> ResourceMetric:
    """One of spec.metrics (validation.go validateMetricSpec, validateResourceSource,
    validateContainerResourceSource, validateMetricTarget)."""
    kind = metric.data.get("type")
    if kind in ("Pods", "Object", "External"):
        raise metric.error(
            "type",
            f"{kind!r} is not supported: the rehearsal has only resource metrics"
            " (Resource, ContainerResource)",
        )
    if kind not in ("Resource", "ContainerResource"):
        raise metric.error(
            "type",
            f"{kind!r} is not a metric source type"
            " (Resource, ContainerResource, Pods, Object, External)",
        )
    key = "resource" if kind == "Resource" else "containerResource"
    if not metric.has(key):
        raise metric.error(key, "must populate information for the given metric source")
    source = metric.child(key)
    resource = source.text("name")
    if resource not in RESOURCES:
        raise source.error(
            "name", f"{resource!r} is not supported: the rehearsal measures cpu and memory"
        )
    container = None
    if kind == "ContainerResource":
        container = source.text("container")
        if containers and container not in containers:
            raise source.error(
                "container", f"{container!r} is not the pod's container {containers[0]!r}"
            )
    return ResourceMetric(resource, read_metric_target(source.child("target"), resource), container)


def read_metric_target(target: Fields, resource: str) -> MetricTarget:
    kind = target.data.get("type")
    if kind not in ("Utilization", "AverageValue"):
        raise target.error(
            "type",
            f"{kind!r} is not supported for a resource metric: Utilization or AverageValue",
        )
    has_utilization, has_value = target.has("averageUtilization"), target.has("averageValue")
    if has_utilization and has_value:
        raise target.error(
            "averageValue", "may not set both a target raw value and a target utilization"
        )
    if kind == "Utilization":
        if not has_utilization:
            raise target.error("averageUtilization", "a Utilization target needs it")
        utilization = target.integer("averageUtilization", minimum=0)
        if utilization < 1:
            raise target.error("averageUtilization", "must be greater than 0")
        return MetricTarget(kind, average_utilization=utilization)
    if not has_value:
        raise target.error("averageValue", "an AverageValue target needs it")
    value = milli_value(target, "averageValue", resource)
    if value <= 0:
        raise target.error("averageValue", "must be positive")
    return MetricTarget(kind, average_value=value)


def milli_value(fields: Fields, key: str, resource: str) -> int:
    """A quantity in milli-units, as the HPA reads it (resource.Quantity MilliValue, rounded
    up): millicores for cpu, bytes x 1000 for memory."""
    if resource == "cpu":
        return math.ceil(round(fields.cpu(key) * 1000, 6))
    return fields.memory(key) * 1000


def read_behavior(behavior: Fields) -> Behavior:
    """spec.behavior: each direction's rules over the defaults (defaults.go
    SetDefaults_HorizontalPodAutoscalerBehavior)."""
    return Behavior(
        scale_up=read_rules(behavior, "scaleUp", DEFAULT_SCALE_UP),
        scale_down=read_rules(behavior, "scaleDown", DEFAULT_SCALE_DOWN),
    )


def read_rules(behavior: Fields, key: str, defaults: ScalingRules) -> ScalingRules:
    """One direction's HPAScalingRules (validation.go validateScalingRules)."""
    if not behavior.has(key):
        return defaults
    rules = behavior.child(key)
    window = None
    if rules.has("stabilizationWindowSeconds"):
        window = rules.integer("stabilizationWindowSeconds")
        if window > MAX_STABILIZATION_WINDOW_SECONDS:
            raise rules.error(
                "stabilizationWindowSeconds",
                f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}",
            )
    select = rules.data.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        raise rules.error("selectPolicy", f"{select!r} is not one of {', '.join(SELECT_POLICIES)}")
    policies = None
    if rules.data.get("policies") is not None:
        policies = tuple(read_policy(policy) for policy in rules.items("policies"))
        if not policies:
            raise rules.error("policies", "must specify at least one Policy")
    tolerance = read_tolerance(rules) if rules.has("tolerance") else None
    return generate_rules(defaults, window, select, policies, tolerance)


def read_policy(policy: Fields) -> ScalingPolicy:
    kind = policy.data.get("type")
    if kind not in POLICY_TYPES:
        raise policy.error("type", f"{kind!r} is not one of {', '.join(POLICY_TYPES)}")
    value = policy.integer("value", minimum=0)
    if value <= 0:
        raise policy.error("value", "must be greater than zero")
    period = policy.integer("periodSeconds", minimum=0)
    if period <= 0:
        raise policy.error("periodSeconds", "must be greater than zero")
    if period > MAX_PERIOD_SECONDS:
        raise policy.error("periodSeconds", f"must be less than or equal to {MAX_PERIOD_SECONDS}")
    return ScalingPolicy(kind, value, period)


def read_tolerance(rules: Fields) -> float:
    """A rule's tolerance, a quantity such as 0.05, "0.05" or "50m"."""
    value = rules.data["tolerance"]
    if isinstance(value, str):
        match = QUANTITY.fullmatch(value)
        if not match:
            raise rules.error("tolerance", f"not a quantity: {value!r}")
        return float(match[1]) / (1000 if match[2] else 1)
    return rules.number("tolerance")

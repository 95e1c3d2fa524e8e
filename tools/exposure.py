"""How a render exposes the app outside the cluster: the one reader of components/gateway-api and
components/aws-alb, for `zdt validate` and the rehearsal alike.

An exposure is the render's HTTPRoute and what the proxy behind it does with the pods:

- "gateway": a Gateway API proxy in the cluster (components/gateway-api). Gateway API has no
  field for the proxy's idle keep-alive to the pods, for how late it learns that a pod left the
  endpoints, or (in its standard channel) for retries, so the HTTPRoute carries them as the
  annotations zero-downtime-app/upstream-idle-timeout, zero-downtime-app/propagation-allowance
  and zero-downtime-app/retries.
- "aws-alb": an AWS ALB built by the AWS Load Balancer Controller (components/aws-alb): also a
  TargetGroupConfiguration for the route's Service. The idle timeout is then the
  LoadBalancerConfiguration's idle_timeout.timeout_seconds attribute (an annotation, if present,
  must agree), and fields left out take the controller's defaults (v3.5.0,
  pkg/gateway/model/model_build_target_group.go; deregistration delay: AWS's 300 s).
"""

import math
from dataclasses import dataclass

from tools import durations

ANNOTATION_PREFIX = "zero-downtime-app/"
PROPAGATION_ALLOWANCE = ANNOTATION_PREFIX + "propagation-allowance"
UPSTREAM_IDLE_TIMEOUT = ANNOTATION_PREFIX + "upstream-idle-timeout"
RETRIES = ANNOTATION_PREFIX + "retries"
RETRY_VALUES = {"off": False, "on": True}

GATEWAY_GROUP = "gateway.networking.k8s.io"
AWS_GROUP = "gateway.k8s.aws"
IDLE_TIMEOUT_ATTRIBUTE = "idle_timeout.timeout_seconds"
DEREGISTRATION_DELAY_ATTRIBUTE = "deregistration_delay.timeout_seconds"
# AWS's defaults for an ALB and its target groups.
ALB_DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_DEREGISTRATION_DELAY = 300.0
# The controller's own, where a TargetGroupConfiguration leaves a field out: the target type
# is its --default-target-type flag, instance unless set.
DEFAULT_TARGET_TYPE = "instance"
DEFAULT_HEALTH_CHECK = {
    "healthCheckPath": "/",
    "healthCheckPort": "traffic-port",
    "healthCheckInterval": 15,
    "healthCheckTimeout": 5,
    "healthyThresholdCount": 3,
    "unhealthyThresholdCount": 3,
}


@dataclass(frozen=True)
class HealthCheck:
    path: str
    port: str  # "traffic-port" or a number as text
    interval: float  # seconds
    timeout: float
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True)
class Exposure:
    kind: str  # "gateway" or "aws-alb"
    route: str  # HTTPRoute name
    service: str  # backendRef Service name
    service_port: int
    path_prefix: str  # the rule's PathPrefix
    request_timeout: float | None  # HTTPRoute timeouts.request, seconds
    upstream_idle_timeout: float  # the proxy's idle keep-alive to the pods, seconds
    propagation_allowance: float  # seconds
    retries: bool
    target_type: str | None  # aws-alb: "ip" or "instance"
    health_check: HealthCheck | None  # aws-alb
    deregistration_delay: float | None  # aws-alb, seconds


class ExposureError(ValueError):
    """A value the exposure cannot be read from; one line naming the resource and the field."""

    def __init__(self, resource: str, field: str, reason: str):
        super().__init__(f"{resource}: {field}: {reason}")
        self.resource, self.field, self.reason = resource, field, reason


def resource_id(resource: dict) -> str:
    return f"{resource.get('kind')}/{(resource.get('metadata') or {}).get('name')}"


def of_kind(resources: list[dict], group: str, kind: str) -> list[dict]:
    return [
        r
        for r in resources
        if r.get("kind") == kind and str(r.get("apiVersion", "")).rpartition("/")[0] == group
    ]


def annotation(route: dict, name: str) -> str | None:
    return ((route.get("metadata") or {}).get("annotations") or {}).get(name)


def annotation_seconds(route: dict, name: str) -> float | None:
    value = annotation(route, name)
    if value is None:
        return None
    try:
        return durations.seconds(value)
    except ValueError as error:
        raise ExposureError(
            resource_id(route), f"metadata.annotations[{name}]", str(error)
        ) from None


def required(value, route: dict, name: str):
    if value is None:
        raise ExposureError(
            resource_id(route), f"metadata.annotations[{name}]", "missing: the design's number"
        )
    return value


def read_route(route: dict) -> tuple[str, int, str, float | None]:
    """(Service, port, path prefix, request timeout) of the route's one rule and backend."""
    name, spec = resource_id(route), route.get("spec") or {}
    rules = spec.get("rules") or []
    if len(rules) != 1:
        raise ExposureError(name, "spec.rules", f"expected 1 rule, found {len(rules)}")
    rule = rules[0]
    matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
    paths = [m.get("path") or {} for m in matches]
    if len(paths) != 1 or paths[0].get("type", "PathPrefix") != "PathPrefix":
        raise ExposureError(name, "spec.rules[0].matches", "expected one PathPrefix match")
    backends = rule.get("backendRefs") or []
    if len(backends) != 1:
        raise ExposureError(
            name, "spec.rules[0].backendRefs", f"expected 1 backend, found {len(backends)}"
        )
    backend = backends[0]
    if backend.get("group", "") != "" or backend.get("kind", "Service") != "Service":
        raise ExposureError(name, "spec.rules[0].backendRefs[0]", "is not a Service")
    port = backend.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        raise ExposureError(name, "spec.rules[0].backendRefs[0].port", f"{port!r} is not a port")
    timeout = (rule.get("timeouts") or {}).get("request")
    if timeout is not None:
        try:
            timeout = durations.gateway_seconds(timeout)
        except ValueError as error:
            raise ExposureError(name, "spec.rules[0].timeouts.request", str(error)) from None
        # Gateway API: a zero duration switches the timeout off.
        timeout = timeout or math.inf
    return backend["name"], port, paths[0].get("value", "/"), timeout


def number(value, resource: dict, field: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExposureError(resource_id(resource), field, f"{value!r} is not a number") from None


def attribute(resource: dict, field: str, key: str) -> float | None:
    """The numeric value of `key` in the list of {key, value} at spec.`field`, if listed."""
    node = resource.get("spec") or {}
    for part in field.split("."):
        node = node.get(part) or {}
    for attr in node or []:
        if attr.get("key") == key:
            return number(attr.get("value"), resource, f"spec.{field}[{key}]")
    return None


def gateway_of(resources: list[dict], route: dict) -> dict | None:
    """The first Gateway of the route's parentRefs that the render holds."""
    namespace = (route.get("metadata") or {}).get("namespace")
    for parent in (route.get("spec") or {}).get("parentRefs") or []:
        if parent.get("kind", "Gateway") != "Gateway":
            continue
        for gateway in of_kind(resources, GATEWAY_GROUP, "Gateway"):
            metadata = gateway.get("metadata") or {}
            if metadata.get("name") == parent.get("name") and metadata.get(
                "namespace"
            ) == parent.get("namespace", namespace):
                return gateway
    return None


def alb_idle_timeout(resources: list[dict], route: dict) -> float | None:
    """idle_timeout.timeout_seconds of the LoadBalancerConfiguration of the route's Gateway
    (AWS's default when it does not set it); None when the render holds neither."""
    gateway = gateway_of(resources, route)
    reference = ((gateway or {}).get("spec") or {}).get("infrastructure", {}).get("parametersRef")
    if not reference or reference.get("kind") != "LoadBalancerConfiguration":
        return None
    for config in of_kind(resources, AWS_GROUP, "LoadBalancerConfiguration"):
        if (config.get("metadata") or {}).get("name") == reference.get("name"):
            found = attribute(config, "loadBalancerAttributes", IDLE_TIMEOUT_ATTRIBUTE)
            return ALB_DEFAULT_IDLE_TIMEOUT if found is None else found
    raise ExposureError(
        resource_id(gateway),
        "spec.infrastructure.parametersRef",
        f"no LoadBalancerConfiguration {reference.get('name')!r} in the render",
    )


def target_group_configuration(resources: list[dict], service: str) -> dict | None:
    for config in of_kind(resources, AWS_GROUP, "TargetGroupConfiguration"):
        reference = (config.get("spec") or {}).get("targetReference") or {}
        if reference.get("kind", "Service") == "Service" and reference.get("name") == service:
            return config
    return None


def read_health_check(config: dict, props: dict) -> HealthCheck:
    given = props.get("healthCheckConfig") or {}
    values = {**DEFAULT_HEALTH_CHECK, **given}
    field = "spec.defaultConfiguration.healthCheckConfig"
    return HealthCheck(
        path=str(values["healthCheckPath"]),
        port=str(values["healthCheckPort"]),
        interval=number(values["healthCheckInterval"], config, f"{field}.healthCheckInterval"),
        timeout=number(values["healthCheckTimeout"], config, f"{field}.healthCheckTimeout"),
        healthy_threshold=int(
            number(values["healthyThresholdCount"], config, f"{field}.healthyThresholdCount")
        ),
        unhealthy_threshold=int(
            number(values["unhealthyThresholdCount"], config, f"{field}.unhealthyThresholdCount")
        ),
    )


def read_exposure(resources: list[dict]) -> Exposure | None:
    """None when the render exposes nothing beyond the Service."""
    routes = of_kind(resources, GATEWAY_GROUP, "HTTPRoute")
    if not routes:
        return None
    if len(routes) > 1:
        names = ", ".join(resource_id(r) for r in routes)
        raise ExposureError("HTTPRoute", "kind", f"expected 1 HTTPRoute, found {names}")
    route = routes[0]
    service, port, prefix, request_timeout = read_route(route)
    allowance = required(
        annotation_seconds(route, PROPAGATION_ALLOWANCE), route, PROPAGATION_ALLOWANCE
    )
    retries_value = required(annotation(route, RETRIES), route, RETRIES)
    if retries_value not in RETRY_VALUES:
        raise ExposureError(
            resource_id(route),
            f"metadata.annotations[{RETRIES}]",
            f"is {retries_value!r}, must be 'off' or 'on'",
        )
    idle = annotation_seconds(route, UPSTREAM_IDLE_TIMEOUT)
    config = target_group_configuration(resources, service)
    common = {
        "route": route["metadata"]["name"],
        "service": service,
        "service_port": port,
        "path_prefix": prefix,
        "request_timeout": request_timeout,
        "propagation_allowance": allowance,
        "retries": RETRY_VALUES[retries_value],
    }
    if config is None:
        return Exposure(
            kind="gateway",
            upstream_idle_timeout=required(idle, route, UPSTREAM_IDLE_TIMEOUT),
            target_type=None,
            health_check=None,
            deregistration_delay=None,
            **common,
        )
    alb_idle = alb_idle_timeout(resources, route)
    if alb_idle is None:
        alb_idle = required(idle, route, UPSTREAM_IDLE_TIMEOUT)
    elif idle is not None and idle != alb_idle:
        raise ExposureError(
            resource_id(route),
            f"metadata.annotations[{UPSTREAM_IDLE_TIMEOUT}]",
            f"is {idle:g} s, but the ALB's {IDLE_TIMEOUT_ATTRIBUTE} is {alb_idle:g} s:"
            " they must agree",
        )
    spec = config.get("spec") or {}
    if spec.get("routeConfigurations"):
        raise ExposureError(
            resource_id(config),
            "spec.routeConfigurations",
            "not read here: put the target group's settings in spec.defaultConfiguration",
        )
    props = spec.get("defaultConfiguration") or {}
    delay = attribute(
        config, "defaultConfiguration.targetGroupAttributes", DEREGISTRATION_DELAY_ATTRIBUTE
    )
    return Exposure(
        kind="aws-alb",
        upstream_idle_timeout=alb_idle,
        target_type=props.get("targetType", DEFAULT_TARGET_TYPE),
        health_check=read_health_check(config, props),
        deregistration_delay=DEFAULT_DEREGISTRATION_DELAY if delay is None else delay,
        **common,
    )

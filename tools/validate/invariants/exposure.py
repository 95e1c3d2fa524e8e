"""Exposure outside the cluster (components/gateway-api, components/aws-alb)."""

from tools.exposure import (
    DEREGISTRATION_DELAY_ATTRIBUTE,
    PROPAGATION_ALLOWANCE,
    Exposure,
    ExposureError,
    read_exposure,
)
from tools.validate.invariants.common import (
    READINESS_GATE_LABEL,
    READINESS_GATE_VALUE,
    REFUSAL_REASONS,
    Problems,
    served_template,
)
from tools.validate.overlays import (
    REFUSED,
    REQUIRES,
    Overlay,
)
from tools.validate.workload import (
    container_field,
    env_seconds,
    prestop_timing,
)

# Exposure outside the cluster (components/gateway-api, components/aws-alb; docs/exposure.md):
# the pods' numbers against the proxy's, read by tools/exposure.py. The grace period needs no
# rule of its own: check_grace_period holds it to preStop + DRAIN_SECONDS + GRACEFUL_TIMEOUT +
# margin, and check_exposure_timing holds the preStop to the exposure's allowance.


def exposure_or_none(overlay: Overlay) -> Exposure | None:
    """The render's exposure; None when it has none or it cannot be read (check_exposure
    reports that)."""
    try:
        return read_exposure(overlay.resources)
    except ExposureError:
        return None


def check_component_combination(overlay: Overlay) -> Problems:
    """A component that needs another has it listed before it; a refused pair is not on."""
    components = overlay.components
    for index, component in enumerate(components):
        for needed in REQUIRES.get(component, ()):
            if needed not in components[:index]:
                yield overlay.problem(
                    "kustomization.yaml",
                    "components",
                    f"{component} needs {needed} listed before it: it points that component's"
                    " HTTPRoute at its ALB",
                )
    for pair in REFUSED:
        if set(pair) <= set(components):
            yield overlay.problem(
                "kustomization.yaml",
                "components",
                f"{' with '.join(pair)} is refused: {REFUSAL_REASONS[pair]}",
            )


def check_exposure(overlay: Overlay) -> Problems:
    """The exposure can be read: its annotations and settings are well formed and agree."""
    try:
        read_exposure(overlay.resources)
    except ExposureError as error:
        yield overlay.problem(error.resource, error.field, error.reason)


def check_exposure_timing(overlay: Overlay) -> Problems:
    """Each hop closes an idle connection before the one behind it (proxy < app), the proxy
    waits for a request as long as the app lets it run, and the pod serves as long as the proxy
    may still send it new requests."""
    exposure = exposure_or_none(overlay)
    if not exposure or not (served := served_template(overlay)):
        return
    holder, container = served
    route = f"HTTPRoute/{exposure.route}"
    keepalive = env_seconds(container, "KEEPALIVE_SECONDS")
    if keepalive is not None and keepalive <= exposure.upstream_idle_timeout:
        yield overlay.problem(
            holder,
            container_field(container, "env"),
            f"KEEPALIVE_SECONDS {keepalive:g} s must be longer than the {exposure.kind}"
            f" exposure's idle timeout to the pods, {exposure.upstream_idle_timeout:g} s: the app"
            " would close connections the proxy is about to reuse",
        )
    graceful = env_seconds(container, "GRACEFUL_TIMEOUT")
    timeout = exposure.request_timeout
    if graceful is not None and timeout is not None and timeout < graceful:
        yield overlay.problem(
            route,
            "spec.rules[0].timeouts.request",
            f"{timeout:g} s is shorter than GRACEFUL_TIMEOUT {graceful:g} s: the gateway would"
            " cut a request the app would still finish",
        )
    timing = prestop_timing(container)  # check_prestop reports a missing one
    allowance = exposure.propagation_allowance
    if timing is not None and timing.floor < allowance:
        yield overlay.problem(
            holder,
            container_field(container, "lifecycle.preStop"),
            f"waits at least {timing.floor:g} s, less than the {exposure.kind} exposure's"
            f" propagation allowance of {allowance:g} s ({route} {PROPAGATION_ALLOWANCE}):"
            " the proxy may send new requests after SIGTERM",
        )


def check_alb_target_group(overlay: Overlay) -> Problems:
    """aws-alb: pod IPs as targets, the ALB's health check on the readiness path, and a
    deregistration delay that outlasts the pod's serving life after it left the endpoints."""
    exposure = exposure_or_none(overlay)
    if not exposure or exposure.kind != "aws-alb" or not (served := served_template(overlay)):
        return
    holder, container = served
    config = f"TargetGroupConfiguration/{named_target_group(overlay, exposure.service)}"
    field = "spec.defaultConfiguration"
    if exposure.target_type != "ip":
        yield overlay.problem(
            config,
            f"{field}.targetType",
            f"is {exposure.target_type!r}, must be 'ip': instance mode goes through a node port"
            " and kube-proxy, and the controller injects no readiness gate for it",
        )
    readiness = (container.get("readinessProbe") or {}).get("httpGet", {}).get("path")
    if exposure.health_check and exposure.health_check.path != readiness:
        yield overlay.problem(
            config,
            f"{field}.healthCheckConfig.healthCheckPath",
            f"is {exposure.health_check.path!r}, must be {readiness!r}, the path of the"
            " container's readinessProbe: the ALB must see a draining pod leave as the Service"
            " does",
        )
    timing = prestop_timing(container)
    prestop = timing.ceiling if timing else 0
    drain = env_seconds(container, "DRAIN_SECONDS")
    graceful = env_seconds(container, "GRACEFUL_TIMEOUT")
    delay = exposure.deregistration_delay
    if drain is None or graceful is None or delay is None:
        return  # check_env reports the missing values
    needed = prestop + drain + graceful
    if delay < needed:
        yield overlay.problem(
            config,
            f"{field}.targetGroupAttributes[{DEREGISTRATION_DELAY_ATTRIBUTE}]",
            f"{delay:g} s is shorter than preStop up to {prestop:g} s + DRAIN_SECONDS {drain:g} s +"
            f" GRACEFUL_TIMEOUT {graceful:g} s = {needed:g} s: the ALB would cut requests the"
            " pod would still finish",
        )


def named_target_group(overlay: Overlay, service: str) -> str:
    for config in overlay.of_kind("TargetGroupConfiguration"):
        if (config.get("spec", {}).get("targetReference") or {}).get("name") == service:
            return config["metadata"]["name"]
    return "?"


def check_alb_readiness_gate(overlay: Overlay) -> Problems:
    """aws-alb: every Application of argocd/ that deploys the overlay labels the namespace so
    that the controller injects its readiness gate (pkg/inject/pod_readiness, v3.5.0): without
    it a new pod counts as ready before the ALB sends it traffic, and a rollout may take the
    old pods away first. An overlay no Application deploys is not checked."""
    exposure = exposure_or_none(overlay)
    if not exposure or exposure.kind != "aws-alb":
        return
    for application in overlay.applications:
        metadata = application.get("spec", {}).get("syncPolicy", {}).get("managedNamespaceMetadata")
        labels = (metadata or {}).get("labels") or {}
        if labels.get(READINESS_GATE_LABEL) != READINESS_GATE_VALUE:
            yield overlay.problem(
                application,
                "spec.syncPolicy.managedNamespaceMetadata.labels",
                f"lacks {READINESS_GATE_LABEL}: {READINESS_GATE_VALUE}: without it the AWS Load"
                " Balancer Controller injects no readiness gate, and a rollout may stop old pods"
                " before the ALB sends the new ones traffic",
            )

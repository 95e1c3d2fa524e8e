"""A few lines per overlay: its resources, image and the values of the timing chain."""

from tools.exposure import Exposure
from tools.validate.invariants.common import (
    DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS,
    DEFAULT_SCALE_DOWN_DELAY_SECONDS,
    only,
    pod_owner,
    served_template,
)
from tools.validate.invariants.exposure import exposure_or_none
from tools.validate.overlays import Overlay, resource_id
from tools.validate.workload import (
    analysis_references,
    env_value,
    pod_spec,
    prestop_timing,
    rollout_services,
    rollout_strategy,
)


def describe_probe(name: str, probe: dict | None) -> str:
    if not probe:
        return f"{name} none"
    target = probe.get("httpGet", {}).get("path") or next(iter(probe), "?")
    period, failures = probe.get("periodSeconds", "?"), probe.get("failureThreshold", "?")
    return f"{name} {target} every {period}s, {failures} failures"


def describe_resources(resources: dict) -> str:
    return "; ".join(
        f"{kind} " + ", ".join(f"{name} {value}" for name, value in resources.get(kind, {}).items())
        for kind in ("requests", "limits")
    )


def describe_step(step: dict) -> str:
    if "analysis" in step:
        names = [t.get("templateName") for t in step["analysis"].get("templates") or []]
        return "analysis " + "+".join(map(str, names))
    if "pause" in step:
        return f"pause {(step['pause'] or {}).get('duration', 'until promoted')}"
    return ", ".join(f"{key} {value}" for key, value in step.items())


def describe_rollout(rollout: dict) -> str:
    """One line: the Rollout's strategy, the Services it drives, its analyses or steps."""
    name, strategy = rollout_strategy(rollout)
    services = ", ".join(f"{f.rpartition('.')[2]} {s}" for f, s in rollout_services(rollout))
    if name == "canary":
        steps = "; ".join(describe_step(step) for step in strategy.get("steps") or [])
        return f"  delivery:  Rollout canary ({services}), steps: {steps}"
    analyses = ", ".join(
        f"{field.rpartition('.')[2]} "
        + "+".join(str(t.get("templateName")) for t in analysis.get("templates") or [])
        for field, analysis in analysis_references(rollout)
    )
    return (
        f"  delivery:  Rollout {name} ({services}), {analyses or 'no analysis'},"
        f" scaleDownDelaySeconds"
        f" {strategy.get('scaleDownDelaySeconds', DEFAULT_SCALE_DOWN_DELAY_SECONDS)},"
        f" abortScaleDownDelaySeconds"
        f" {strategy.get('abortScaleDownDelaySeconds', DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS)}"
    )


def seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"


def describe_exposure(exposure: Exposure, keepalive: str | None) -> list[str]:
    """The exposure's hop: its route and the numbers the pods are held to."""
    lines = [
        f"  exposure:  {exposure.kind}, HTTPRoute {exposure.route} {exposure.path_prefix} ->"
        f" Service {exposure.service}:{exposure.service_port}, request timeout"
        f" {seconds(exposure.request_timeout)}, retries {'on' if exposure.retries else 'off'};"
        f" propagation allowance {seconds(exposure.propagation_allowance)}; idle: proxy"
        f" {seconds(exposure.upstream_idle_timeout)} < app KEEPALIVE_SECONDS {keepalive}s",
    ]
    if check := exposure.health_check:
        lines.append(
            f"  alb:       target type {exposure.target_type}, health check {check.path} on"
            f" {check.port} every {check.interval:g}s (timeout {check.timeout:g}s,"
            f" {check.healthy_threshold} up, {check.unhealthy_threshold} down), deregistration"
            f" delay {seconds(exposure.deregistration_delay)}"
        )
    return lines


def describe(overlay: Overlay) -> list[str]:
    lines = [overlay.name, "  resources: " + ", ".join(resource_id(r) for r in overlay.resources)]
    if not (served := served_template(overlay)):
        return [*lines, "  no pod template with an http port"]
    holder, container = served
    owner = pod_owner(overlay)
    spec = owner["spec"]
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    if owner["kind"] == "Rollout":
        name, strategy = rollout_strategy(owner)
        rolling = strategy if name == "canary" else {}
    replicas = f"replicas {spec.get('replicas', '-')}"
    if hpa := only(overlay, "HorizontalPodAutoscaler"):
        limits = hpa["spec"]
        replicas += f" (HPA {limits.get('minReplicas', 1)}-{limits.get('maxReplicas')})"
    probes = [
        describe_probe(name, container.get(f"{name}Probe"))
        for name in ("startup", "readiness", "liveness")
    ]
    timing = prestop_timing(container)
    prestop = "none" if timing is None else timing.describe()
    if owner["kind"] == "Rollout":
        lines.append(describe_rollout(owner))
    if exposure := exposure_or_none(overlay):
        lines += describe_exposure(exposure, env_value(container, "KEEPALIVE_SECONDS"))
    return [
        *lines,
        f"  image:     {container.get('image')}",
        f"  rollout:   {replicas}, maxSurge {rolling.get('maxSurge')},"
        f" maxUnavailable {rolling.get('maxUnavailable')},"
        f" minReadySeconds {spec.get('minReadySeconds')},"
        f" progressDeadlineSeconds {spec.get('progressDeadlineSeconds')}",
        f"  probes:    {'; '.join(probes)}",
        f"  shutdown:  preStop {prestop} -> SIGTERM -> drain"
        f" {env_value(container, 'DRAIN_SECONDS')}s -> graceful stop up to"
        f" {env_value(container, 'GRACEFUL_TIMEOUT')}s -> SIGKILL at"
        f" {pod_spec(holder).get('terminationGracePeriodSeconds')}s",
        f"  resources: {describe_resources(container.get('resources', {}))}",
    ]

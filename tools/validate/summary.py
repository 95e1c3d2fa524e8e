"""A few lines per overlay: its resources, image and the values of the timing chain."""

from tools.validate.invariants import only, served_deployment
from tools.validate.overlays import Overlay, resource_id
from tools.validate.workload import env_value, pod_spec, prestop_seconds


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


def describe(overlay: Overlay) -> list[str]:
    lines = [overlay.name, "  resources: " + ", ".join(resource_id(r) for r in overlay.resources)]
    if not (served := served_deployment(overlay)):
        return [*lines, "  no Deployment with an http port"]
    deployment, container = served
    spec = deployment["spec"]
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    replicas = f"replicas {spec.get('replicas', '-')}"
    if hpa := only(overlay, "HorizontalPodAutoscaler"):
        limits = hpa["spec"]
        replicas += f" (HPA {limits.get('minReplicas', 1)}-{limits.get('maxReplicas')})"
    probes = [
        describe_probe(name, container.get(f"{name}Probe"))
        for name in ("startup", "readiness", "liveness")
    ]
    prestop = prestop_seconds(container)
    return [
        *lines,
        f"  image:     {container.get('image')}",
        f"  rollout:   {replicas}, maxSurge {rolling.get('maxSurge')},"
        f" maxUnavailable {rolling.get('maxUnavailable')},"
        f" minReadySeconds {spec.get('minReadySeconds')},"
        f" progressDeadlineSeconds {spec.get('progressDeadlineSeconds')}",
        f"  probes:    {'; '.join(probes)}",
        f"  shutdown:  preStop {'none' if prestop is None else f'{prestop:g}s'} -> SIGTERM -> drain"
        f" {env_value(container, 'DRAIN_SECONDS')}s -> graceful stop up to"
        f" {env_value(container, 'GRACEFUL_TIMEOUT')}s -> SIGKILL at"
        f" {pod_spec(deployment).get('terminationGracePeriodSeconds')}s",
        f"  resources: {describe_resources(container.get('resources', {}))}",
    ]

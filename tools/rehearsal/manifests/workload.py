"""The workload to rehearse, read from one render: what owns the pods (a Deployment, or a Rollout),
the Services that select them, the PodDisruptionBudget over them and the way in from outside."""

from dataclasses import dataclass, field

from tools import rollingupdate
from tools.exposure import Exposure, ExposureError, read_exposure
from tools.kustomize import find
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler, read_autoscaler
from tools.rehearsal.manifests.deployment import Deployment, read_deployment
from tools.rehearsal.manifests.fields import Fields, resolve_port
from tools.rehearsal.manifests.rollout import BlueGreen, Rollout, read_rollout
from tools.selectors import selects, service_selects


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    target_port: int


@dataclass(frozen=True)
class DisruptionBudget:
    """A PodDisruptionBudget over the Deployment's pods, for evictions (a node drain)."""

    name: str
    max_unavailable: int | str | None
    min_available: int | str | None
    always_allow_unhealthy: bool  # unhealthyPodEvictionPolicy: AlwaysAllow

    def status(self, expected: int, healthy: int) -> "BudgetStatus":
        """The status the disruption controller writes (pkg/controller/disruption/disruption.go:
        percentages of the expected pods rounded up, desiredHealthy at least 0, nothing allowed
        when no pod is expected)."""
        if self.max_unavailable is not None:
            unavailable = rollingupdate.scaled(self.max_unavailable, expected, round_up=True)
            desired = max(0, expected - unavailable)
        else:
            desired = rollingupdate.scaled(self.min_available or 0, expected, round_up=True)
        allowed = max(0, healthy - desired) if expected > 0 else 0
        return BudgetStatus(allowed, healthy, desired)

    def allows_eviction(self, ready: bool, status: "BudgetStatus") -> bool:
        """Whether the eviction subresource lets a running pod go
        (pkg/registry/core/pod/storage/eviction.go): one that is not ready goes at once under
        AlwaysAllow, and under IfHealthyBudget (the default) only while the budget is met
        without it (currentHealthy >= desiredHealthy > 0); any other pod takes one of
        disruptionsAllowed."""
        if not ready and (
            self.always_allow_unhealthy or status.current_healthy >= status.desired_healthy > 0
        ):
            return True
        return status.disruptions_allowed > 0


@dataclass(frozen=True)
class BudgetStatus:
    """What the eviction subresource reads of a PodDisruptionBudget's status."""

    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int


@dataclass(frozen=True)
class Workload:
    source: str
    deployment: Deployment
    service: Service  # the Service the users' requests go through
    notes: tuple[str, ...] = field(default=())
    disruption_budget: DisruptionBudget | None = None
    rollout: Rollout | None = None
    services: tuple[Service, ...] = ()  # every Service over the pods, the users' one included
    exposure: Exposure | None = None  # the way in from outside (components/gateway-api, aws-alb)
    autoscaler: HorizontalPodAutoscaler | None = None  # the HPA whose target owns the pods


def read_services(resources: list[dict], source: str, deployment: dict) -> list[Service]:
    """Every Service whose selector selects the pods."""
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if p.get("name")}
    services = []
    for resource in find(resources, "Service"):
        if not service_selects(resource.get("spec", {}).get("selector"), labels):
            continue
        name = resource.get("metadata", {}).get("name", "?")
        spec = Fields(resource.get("spec"), f"{source}: Service {name}", "spec")
        service_ports = spec.items("ports")
        if not service_ports:
            raise spec.error("ports", "the Service declares no port")
        port = service_ports[0]
        number = port.integer("port", minimum=1)
        target = resolve_port(port.data.get("targetPort", number), ports, port, "targetPort")
        services.append(Service(name=name, port=number, target_port=target))
    if not services:
        raise RehearsalError(
            f"{source}: no Service selects the pods of {deployment['kind']}"
            f" {deployment['metadata']['name']}"
        )
    return services


def read_workload(
    resources: list[dict], source: str, deployment_name: str | None = None
) -> Workload:
    """The workload to roll out: an Argo Rollouts Rollout when the render has one (it owns the
    pods, with its workloadRef'd Deployment's template), else the Deployment."""
    config_maps = {c["metadata"]["name"]: c.get("data") or {} for c in find(resources, "ConfigMap")}
    rollouts = find(resources, "Rollout")
    if len(rollouts) > 1:
        raise RehearsalError(f"{source}: several Rollouts: one can be rehearsed")
    rollout = None
    if rollouts:
        deployment, rollout, holder = read_rollout(rollouts[0], resources, source, config_maps)
        owner = rollouts[0]
    else:
        deployments = find(resources, "Deployment")
        if deployment_name:
            deployments = [
                d for d in deployments if d.get("metadata", {}).get("name") == deployment_name
            ]
        if not deployments:
            named = f" named {deployment_name!r}" if deployment_name else ""
            raise RehearsalError(f"{source}: no Deployment{named} in the rendered manifests")
        if len(deployments) > 1:
            names = ", ".join(d["metadata"]["name"] for d in deployments)
            raise RehearsalError(
                f"{source}: several Deployments ({names}): choose one with --deployment"
            )
        holder = owner = deployments[0]
    autoscaler = read_autoscaler(resources, source, owner["kind"], owner["metadata"]["name"])
    # Without replicas of its own, the Deployment starts at the HPA's minimum.
    hpa_min = None if autoscaler is None else autoscaler.min_replicas
    if rollout is None:
        deployment = read_deployment(owner, source, config_maps, hpa_min)
    services = read_services(resources, source, holder)
    for service in services:
        if service.target_port != deployment.template.container_port:
            raise RehearsalError(
                f"{source}: Service {service.name}: targetPort {service.target_port} is not the "
                f"container port {deployment.template.container_port}"
            )
    managed = set()
    if rollout is not None:
        strategy = rollout.strategy
        if isinstance(strategy, BlueGreen):
            managed = {strategy.preview_service}
        else:
            managed = {strategy.canary_service, strategy.stable_service}
        names = {service.name for service in services}
        for name in managed - {None}:
            if name not in names:
                raise RehearsalError(
                    f"{source}: Rollout {rollout.name}: no Service {name!r} selects its pods"
                )
    users = [service for service in services if service.name not in managed]
    if rollout is not None and isinstance(rollout.strategy, BlueGreen):
        users = [s for s in services if s.name == rollout.strategy.active_service]
    if not users:
        raise RehearsalError(f"{source}: no Service for the users' requests selects the pods")
    try:
        exposure = read_exposure(resources)
    except ExposureError as error:
        raise RehearsalError(f"{source}: {error}") from None
    if exposure is not None and exposure.service != users[0].name:
        raise RehearsalError(
            f"{source}: HTTPRoute {exposure.route}: backendRefs names Service "
            f"{exposure.service!r}, not the users' Service {users[0].name!r}"
        )
    return Workload(
        source=source,
        deployment=deployment,
        service=users[0],
        exposure=exposure,
        disruption_budget=read_disruption_budget(resources, source, holder),
        rollout=rollout,
        services=tuple(services),
        autoscaler=autoscaler,
    )


def read_disruption_budget(
    resources: list[dict], source: str, deployment: dict
) -> DisruptionBudget | None:
    labels = deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    for resource in find(resources, "PodDisruptionBudget"):
        name = resource.get("metadata", {}).get("name", "?")
        spec = Fields(resource.get("spec"), f"{source}: PodDisruptionBudget {name}", "spec")
        if not selects(spec.data.get("selector"), labels):
            continue
        values = {}
        for key in ("maxUnavailable", "minAvailable"):
            if spec.has(key):
                try:
                    values[key] = rollingupdate.parse_int_or_percent(
                        spec.data[key], f"{spec.where}: spec.{key}"
                    )
                except rollingupdate.RollingUpdateError as error:
                    raise RehearsalError(str(error)) from None
        return DisruptionBudget(
            name=name,
            max_unavailable=values.get("maxUnavailable"),
            min_available=values.get("minAvailable"),
            always_allow_unhealthy=spec.data.get("unhealthyPodEvictionPolicy") == "AlwaysAllow",
        )
    return None


def adopts(source: Workload, target: Workload) -> bool:
    """The target's Rollout takes over the source's running Deployment through workloadRef
    (argo-rollouts docs/migrating.md "Reference Deployment From Rollout")."""
    if source.rollout is not None or target.rollout is None:
        return False
    ref = target.rollout.workload_ref
    if ref is None:
        return False
    if ref.deployment.name != source.deployment.name:
        raise RehearsalError(
            f"{target.source}: Rollout {target.rollout.name}: workloadRef names Deployment "
            f"{ref.deployment.name!r}, but {source.source} runs {source.deployment.name!r}"
        )
    return True

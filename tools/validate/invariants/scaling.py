"""Replicas and their changes: the rolling update, the HPA, the disruption budget, the Service."""

from tools import rollingupdate
from tools.selectors import selects, service_selects
from tools.validate.invariants.common import (
    MIN_REPLICAS,
    ROLLOUT_FIELDS,
    Problems,
    only,
    pod_owner,
    served_template,
    template_holder,
)
from tools.validate.overlays import (
    Overlay,
    resource_id,
)
from tools.validate.workload import (
    pod_labels,
    probe_port_matches,
    serving_port,
)


def replica_counts(overlay: Overlay, workload: dict) -> list[int]:
    """Every replica count the workload can run at: its own, and the HPA's range when it owns
    the pods (a Deployment that a Rollout took over runs no pods of its own)."""
    counts = set()
    hpa = only(overlay, "HorizontalPodAutoscaler") if workload is pod_owner(overlay) else None
    if hpa:
        spec = hpa.get("spec", {})
        counts.update(range(spec.get("minReplicas", 1), spec.get("maxReplicas", 1) + 1))
    if "replicas" in workload["spec"] or not hpa:
        counts.add(workload["spec"].get("replicas", 1))
    return sorted(counts)


def fencepost_problems(overlay: Overlay, workload: dict, values: dict, field: str) -> Problems:
    """maxSurge and maxUnavailable (under `field`) set explicitly, and resolving to no pod
    unavailable and at least one extra pod at every replica count the workload can run at.
    Argo Rollouts' canary resolves them as the Deployment controller does, with the same
    defaults (replicaset.resolveFenceposts)."""
    for name in ("maxSurge", "maxUnavailable"):
        if name not in values:
            yield overlay.problem(workload, f"{field}.{name}", "must be set explicitly")
    try:
        max_surge = rollingupdate.parse_int_or_percent(
            values.get("maxSurge", rollingupdate.DEFAULT_MAX_SURGE), f"{field}.maxSurge"
        )
        max_unavailable = rollingupdate.parse_int_or_percent(
            values.get("maxUnavailable", rollingupdate.DEFAULT_MAX_UNAVAILABLE),
            f"{field}.maxUnavailable",
        )
    except rollingupdate.RollingUpdateError as error:
        yield overlay.problem(workload, error.field, error.reason)
        return
    for replicas in replica_counts(overlay, workload):
        fenceposts = rollingupdate.resolve(max_surge, max_unavailable, replicas)
        surge, unavailable = fenceposts.max_surge, fenceposts.max_unavailable
        if unavailable != 0:
            yield overlay.problem(
                workload,
                f"{field}.maxUnavailable",
                f"allows {unavailable} unavailable pod(s) at {replicas} replicas, must be 0",
            )
            break
        if surge < 1:
            yield overlay.problem(
                workload,
                f"{field}.maxSurge",
                f"allows no extra pod at {replicas} replicas, must be at least 1",
            )
            break


def check_rolling_update(overlay: Overlay) -> Problems:
    if not (deployment := only(overlay, "Deployment")):
        return
    spec = deployment["spec"]
    strategy = spec.get("strategy") or {}
    if strategy.get("type") != "RollingUpdate":
        yield overlay.problem(
            deployment, "spec.strategy.type", f"is {strategy.get('type')!r}, must be RollingUpdate"
        )
        return
    yield from fencepost_problems(
        overlay,
        deployment,
        strategy.get("rollingUpdate") or {},
        "spec.strategy.rollingUpdate",
    )
    for field in ROLLOUT_FIELDS:
        if field not in spec:
            yield overlay.problem(deployment, f"spec.{field}", "must be set explicitly")


def check_replicas(overlay: Overlay) -> Problems:
    if not (owner := pod_owner(overlay)):
        return
    hpa = only(overlay, "HorizontalPodAutoscaler")
    # Without an HPA a Deployment (or a Rollout) that does not say runs one pod.
    replicas = owner["spec"].get("replicas", None if hpa else 1)
    if replicas is not None and replicas < MIN_REPLICAS:
        yield overlay.problem(
            owner, "spec.replicas", f"is {replicas}, must be at least {MIN_REPLICAS}"
        )
    if hpa:
        minimum = hpa.get("spec", {}).get("minReplicas", 1)
        if minimum < MIN_REPLICAS:
            yield overlay.problem(
                hpa, "spec.minReplicas", f"is {minimum}, must be at least {MIN_REPLICAS}"
            )


def check_autoscaler(overlay: Overlay) -> Problems:
    """The HPA scales whatever owns the pods: the Deployment, or the Rollout when there is one
    (a Deployment taken over by a Rollout is kept at 0 pods by Argo Rollouts)."""
    owner = pod_owner(overlay)
    if not owner or not (hpa := only(overlay, "HorizontalPodAutoscaler")):
        return
    spec = hpa.get("spec", {})
    target = spec.get("scaleTargetRef", {})
    if (target.get("kind"), target.get("name")) != (owner["kind"], owner["metadata"]["name"]):
        yield overlay.problem(
            hpa,
            "spec.scaleTargetRef",
            f"targets {target.get('kind')}/{target.get('name')}, not {resource_id(owner)}",
        )
    elif target.get("apiVersion") != owner["apiVersion"]:
        yield overlay.problem(
            hpa,
            "spec.scaleTargetRef.apiVersion",
            f"is {target.get('apiVersion')!r}, not {owner['apiVersion']!r} of {resource_id(owner)}",
        )
    scale_down = spec.get("behavior", {}).get("scaleDown", {})
    if "stabilizationWindowSeconds" not in scale_down:
        yield overlay.problem(
            hpa,
            "spec.behavior.scaleDown.stabilizationWindowSeconds",
            "must be set so scaling down does not fight a rollout",
        )


def check_disruption_budget(overlay: Overlay) -> Problems:
    owner, holder = pod_owner(overlay), template_holder(overlay)
    if not owner or not holder:
        return
    budgets = overlay.of_kind("PodDisruptionBudget")
    if not budgets:
        yield overlay.problem("PodDisruptionBudget", "kind", "missing")
    for budget in budgets:
        spec = budget.get("spec", {})
        if not selects(spec.get("selector"), pod_labels(holder)):
            yield overlay.problem(
                budget, "spec.selector", f"does not select the pods of {resource_id(owner)}"
            )
        if spec.get("maxUnavailable") != 1:
            yield overlay.problem(
                budget,
                "spec.maxUnavailable",
                f"is {spec.get('maxUnavailable')!r}, must be 1 (one voluntary disruption at once)",
            )
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            yield overlay.problem(
                budget,
                "spec.unhealthyPodEvictionPolicy",
                "is AlwaysAllow: a drain could evict the last pod serving while its readiness"
                " probe fails under load; use IfHealthyBudget (the default)",
            )


def check_service(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    owner = pod_owner(overlay)
    services = overlay.of_kind("Service")
    if not services:
        yield overlay.problem("Service", "kind", "missing")
    for service in services:
        spec = service.get("spec", {})
        if not service_selects(spec.get("selector"), pod_labels(holder)):
            yield overlay.problem(
                service, "spec.selector", f"does not select the pods of {resource_id(owner)}"
            )
        for index, port in enumerate(spec.get("ports", [])):
            target = port.get("targetPort", port.get("port"))
            if not probe_port_matches(target, serving_port(container)):
                yield overlay.problem(
                    service,
                    f"spec.ports[{index}].targetPort",
                    f"{target!r} is not the container port {serving_port(container)['name']!r}",
                )

"""What every check shares: the overlay's pod owner, its served template, the repository's
constants."""

from collections.abc import Iterator

from tools.validate.overlays import (
    AWS_ALB,
    BLUE_GREEN,
    Overlay,
    Problem,
)
from tools.validate.workload import (
    serving_container,
)

# Time the process needs to exit once gunicorn's graceful stop is over.
SHUTDOWN_MARGIN_SECONDS = 5
MIN_REPLICAS = 2
READINESS_PATH = "/ready"
# Set explicitly so the pod runs with the values the timing chain was designed with.
REQUIRED_ENV = ("PORT", "WEB_CONCURRENCY", "DRAIN_SECONDS", "GRACEFUL_TIMEOUT", "KEEPALIVE_SECONDS")
ROLLOUT_FIELDS = ("minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit")
# Argo Rollouts' defaults (utils/defaults/defaults.go).
DEFAULT_SCALE_DOWN_DELAY_SECONDS = 30
DEFAULT_ABORT_SCALE_DOWN_DELAY_SECONDS = 30
FULL_WEIGHT = 100
# How late kube-proxy (or a proxy in the cluster that watches EndpointSlices as it does) may
# still send a pod new connections after it left the endpoints: the base's preStop sleep. An
# exposure whose propagation allowance is longer (an ALB) raises the preStop by the difference.
KUBE_PROXY_ALLOWANCE_SECONDS = 5
# The AWS Load Balancer Controller's label for the namespace of the pods whose readiness gates it
# injects (config/webhook/pod_mutator_patch.yaml, v3.5.0).
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
READINESS_GATE_VALUE = "enabled"
# Why a combination of components is refused (overlays.REFUSED).
REFUSAL_REASONS = {
    (BLUE_GREEN, AWS_ALB): (
        "Argo Rollouts' documentation (v1.9.1, docs/features/bluegreen.md) says \"ALB Ingress"
        ' with Rollouts blue-green strategy is not supported without a chance of downtime":'
        " the active Service's selector moves to pods created without the ALB's readiness gate;"
        " use components/rollout-canary, or components/gateway-api alone"
    ),
}

Problems = Iterator[Problem]


def only(overlay: Overlay, kind: str) -> dict | None:
    resources = overlay.of_kind(kind)
    return resources[0] if len(resources) == 1 else None


def named(overlay: Overlay, kind: str, name: str) -> dict | None:
    return next((r for r in overlay.of_kind(kind) if r["metadata"].get("name") == name), None)


def pod_owner(overlay: Overlay) -> dict | None:
    """What owns the pods: the Rollout when the overlay renders one, else the Deployment."""
    if overlay.of_kind("Rollout"):
        return only(overlay, "Rollout")
    return only(overlay, "Deployment")


def template_holder(overlay: Overlay) -> dict | None:
    """The resource whose spec.template the pods run: the Rollout's own template, or the
    Deployment its workloadRef names; without a Rollout, the Deployment."""
    owner = pod_owner(overlay)
    if not owner or owner["kind"] != "Rollout" or "template" in owner.get("spec", {}):
        return owner
    reference = owner["spec"].get("workloadRef") or {}
    if reference.get("kind") != "Deployment":
        return None
    return named(overlay, "Deployment", reference.get("name"))


def served_template(overlay: Overlay) -> tuple[dict, dict] | None:
    """The pod template's holder and its serving container, when both exist (see
    check_deployment and check_rollout)."""
    holder = template_holder(overlay)
    container = holder and serving_container(holder)
    return (holder, container) if container else None

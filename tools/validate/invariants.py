"""The zero-downtime contract of the rendered overlays, one check per rule.

Each check takes an overlay (or all of them) and returns the problems it found; a problem names
the overlay, the resource and the field.
"""

import json
from collections.abc import Callable, Iterator

from app.settings import Settings, SettingsError
from tools import rollingupdate
from tools.imageref import ImageRef
from tools.selectors import selects, service_selects
from tools.validate.overlays import Overlay, Problem, resource_id
from tools.validate.workload import (
    PROBE_TIMING_FIELDS,
    PROBES,
    container_field,
    env_seconds,
    env_value,
    literal_env,
    pod_labels,
    pod_spec,
    prestop_seconds,
    probe_port_matches,
    serving_container,
    serving_port,
)

# Time the process needs to exit once gunicorn's graceful stop is over.
SHUTDOWN_MARGIN_SECONDS = 5
MIN_REPLICAS = 2
READINESS_PATH = "/ready"
# Set explicitly so the pod runs with the values the timing chain was designed with.
REQUIRED_ENV = ("PORT", "WEB_CONCURRENCY", "DRAIN_SECONDS", "GRACEFUL_TIMEOUT")
ROLLOUT_FIELDS = ("minReadySeconds", "progressDeadlineSeconds", "revisionHistoryLimit")

Problems = Iterator[Problem]


def only(overlay: Overlay, kind: str) -> dict | None:
    resources = overlay.of_kind(kind)
    return resources[0] if len(resources) == 1 else None


def served_deployment(overlay: Overlay) -> tuple[dict, dict] | None:
    """The Deployment and its serving container, when both exist (see check_deployment)."""
    deployment = only(overlay, "Deployment")
    container = deployment and serving_container(deployment)
    return (deployment, container) if container else None


def check_deployment(overlay: Overlay) -> Problems:
    deployments = overlay.of_kind("Deployment")
    if len(deployments) != 1:
        yield overlay.problem(
            "Deployment", "kind", f"expected 1 Deployment, found {len(deployments)}"
        )
    elif not serving_container(deployments[0]):
        yield overlay.problem(
            deployments[0],
            "spec.template.spec.containers",
            'no container has a port named "http"',
        )


def check_readiness_on_ready(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    probe = container.get("readinessProbe")
    if not probe:
        yield overlay.problem(deployment, container_field(container, "readinessProbe"), "missing")
        return
    path = probe.get("httpGet", {}).get("path")
    if path != READINESS_PATH:
        yield overlay.problem(
            deployment,
            container_field(container, "readinessProbe.httpGet.path"),
            f"is {path!r}, must be '/ready' (the endpoint that turns 503 when draining starts)",
        )


def check_liveness_not_on_ready(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    probe = container.get("livenessProbe")
    if not probe:
        yield overlay.problem(deployment, container_field(container, "livenessProbe"), "missing")
        return
    if probe.get("httpGet", {}).get("path") == READINESS_PATH:
        yield overlay.problem(
            deployment,
            container_field(container, "livenessProbe.httpGet.path"),
            "must not be '/ready': a draining pod would be restarted; use '/healthz'",
        )


def check_probe_ports(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    port = serving_port(container)
    for probe_name in PROBES:
        probe_port = container.get(probe_name, {}).get("httpGet", {}).get("port")
        if probe_port is not None and not probe_port_matches(probe_port, port):
            yield overlay.problem(
                deployment,
                container_field(container, f"{probe_name}.httpGet.port"),
                f"{probe_port!r} is not the container port "
                f"({port.get('name')!r}, {port.get('containerPort')})",
            )


def check_probe_timings_explicit(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    for probe_name in PROBES:
        probe = container.get(probe_name)
        if probe is None:
            continue
        missing = [field for field in PROBE_TIMING_FIELDS if field not in probe]
        if missing:
            yield overlay.problem(
                deployment,
                container_field(container, probe_name),
                f"timing left to defaults: set {', '.join(missing)}",
            )


def check_env(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    field = container_field(container, "env")
    for name in REQUIRED_ENV:
        if env_value(container, name) is None:
            yield overlay.problem(deployment, field, f"{name} must be set to a value explicitly")
    if env_value(container, "APP_VERSION") is not None:
        yield overlay.problem(
            deployment, field, "APP_VERSION must not be set: the image carries its version"
        )
    port = serving_port(container).get("containerPort")
    if env_value(container, "PORT") not in (None, str(port)):
        yield overlay.problem(
            deployment,
            field,
            f"PORT is {env_value(container, 'PORT')!r} but the container port is {port}",
        )


def check_settings(overlay: Overlay) -> Problems:
    """Every literal env value passes the checks the server itself runs before it starts."""
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    field = container_field(container, "env")
    # One variable at a time, so that every bad value is reported, not only the first.
    for name, value in literal_env(container).items():
        try:
            Settings.from_env({name: value})
        except SettingsError as error:
            yield overlay.problem(
                deployment, field, f"{name} {value!r} would stop the server at start: {error}"
            )


def check_prestop(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    seconds = prestop_seconds(container)
    if not seconds:
        yield overlay.problem(
            deployment,
            container_field(container, "lifecycle.preStop"),
            "missing: a sleep must cover endpoint propagation before SIGTERM",
        )


def check_grace_period(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    prestop = prestop_seconds(container) or 0
    drain = env_seconds(container, "DRAIN_SECONDS")
    graceful = env_seconds(container, "GRACEFUL_TIMEOUT")
    if drain is None or graceful is None:
        return  # check_env reports the missing values
    needed = prestop + drain + graceful + SHUTDOWN_MARGIN_SECONDS
    grace = pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
    if grace < needed:
        yield overlay.problem(
            deployment,
            "spec.template.spec.terminationGracePeriodSeconds",
            f"{grace:g} s does not cover preStop {prestop:g} s + DRAIN_SECONDS {drain:g} s"
            f" + GRACEFUL_TIMEOUT {graceful:g} s + {SHUTDOWN_MARGIN_SECONDS} s margin"
            f" = {needed:g} s",
        )


def replica_counts(overlay: Overlay, deployment: dict) -> list[int]:
    """Every replica count the Deployment can run at: its own, and the HPA's range."""
    counts = set()
    if hpa := only(overlay, "HorizontalPodAutoscaler"):
        spec = hpa.get("spec", {})
        counts.update(range(spec.get("minReplicas", 1), spec.get("maxReplicas", 1) + 1))
    if "replicas" in deployment["spec"] or not hpa:
        counts.add(deployment["spec"].get("replicas", 1))
    return sorted(counts)


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
    rolling = strategy.get("rollingUpdate") or {}
    for field in ("maxSurge", "maxUnavailable"):
        if field not in rolling:
            yield overlay.problem(
                deployment, f"spec.strategy.rollingUpdate.{field}", "must be set explicitly"
            )
    try:
        max_surge = rollingupdate.parse_int_or_percent(
            rolling.get("maxSurge", rollingupdate.DEFAULT_MAX_SURGE),
            "spec.strategy.rollingUpdate.maxSurge",
        )
        max_unavailable = rollingupdate.parse_int_or_percent(
            rolling.get("maxUnavailable", rollingupdate.DEFAULT_MAX_UNAVAILABLE),
            "spec.strategy.rollingUpdate.maxUnavailable",
        )
    except rollingupdate.RollingUpdateError as error:
        yield overlay.problem(deployment, error.field, error.reason)
        return
    for replicas in replica_counts(overlay, deployment):
        fenceposts = rollingupdate.resolve(max_surge, max_unavailable, replicas)
        surge, unavailable = fenceposts.max_surge, fenceposts.max_unavailable
        if unavailable != 0:
            yield overlay.problem(
                deployment,
                "spec.strategy.rollingUpdate.maxUnavailable",
                f"allows {unavailable} unavailable pod(s) at {replicas} replicas, must be 0",
            )
            break
        if surge < 1:
            yield overlay.problem(
                deployment,
                "spec.strategy.rollingUpdate.maxSurge",
                f"allows no extra pod at {replicas} replicas, must be at least 1",
            )
            break
    for field in ROLLOUT_FIELDS:
        if field not in spec:
            yield overlay.problem(deployment, f"spec.{field}", "must be set explicitly")


def check_replicas(overlay: Overlay) -> Problems:
    if not (deployment := only(overlay, "Deployment")):
        return
    hpa = only(overlay, "HorizontalPodAutoscaler")
    # Without an HPA a Deployment that does not say runs one pod.
    replicas = deployment["spec"].get("replicas", None if hpa else 1)
    if replicas is not None and replicas < MIN_REPLICAS:
        yield overlay.problem(
            deployment, "spec.replicas", f"is {replicas}, must be at least {MIN_REPLICAS}"
        )
    if hpa:
        minimum = hpa.get("spec", {}).get("minReplicas", 1)
        if minimum < MIN_REPLICAS:
            yield overlay.problem(
                hpa, "spec.minReplicas", f"is {minimum}, must be at least {MIN_REPLICAS}"
            )


def check_autoscaler(overlay: Overlay) -> Problems:
    deployment = only(overlay, "Deployment")
    if not deployment or not (hpa := only(overlay, "HorizontalPodAutoscaler")):
        return
    spec = hpa.get("spec", {})
    target = spec.get("scaleTargetRef", {})
    if (target.get("kind"), target.get("name")) != ("Deployment", deployment["metadata"]["name"]):
        yield overlay.problem(
            hpa,
            "spec.scaleTargetRef",
            f"targets {target.get('kind')}/{target.get('name')}, not {resource_id(deployment)}",
        )
    scale_down = spec.get("behavior", {}).get("scaleDown", {})
    if "stabilizationWindowSeconds" not in scale_down:
        yield overlay.problem(
            hpa,
            "spec.behavior.scaleDown.stabilizationWindowSeconds",
            "must be set so scaling down does not fight a rollout",
        )


def check_disruption_budget(overlay: Overlay) -> Problems:
    if not (deployment := only(overlay, "Deployment")):
        return
    budgets = overlay.of_kind("PodDisruptionBudget")
    if not budgets:
        yield overlay.problem("PodDisruptionBudget", "kind", "missing")
    for budget in budgets:
        spec = budget.get("spec", {})
        if not selects(spec.get("selector"), pod_labels(deployment)):
            yield overlay.problem(
                budget, "spec.selector", f"does not select the pods of {resource_id(deployment)}"
            )
        if spec.get("maxUnavailable") != 1:
            yield overlay.problem(
                budget,
                "spec.maxUnavailable",
                f"is {spec.get('maxUnavailable')!r}, must be 1 (one voluntary disruption at once)",
            )


def check_service(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    services = overlay.of_kind("Service")
    if not services:
        yield overlay.problem("Service", "kind", "missing")
    for service in services:
        spec = service.get("spec", {})
        if not service_selects(spec.get("selector"), pod_labels(deployment)):
            yield overlay.problem(
                service, "spec.selector", f"does not select the pods of {resource_id(deployment)}"
            )
        for index, port in enumerate(spec.get("ports", [])):
            target = port.get("targetPort", port.get("port"))
            if not probe_port_matches(target, serving_port(container)):
                yield overlay.problem(
                    service,
                    f"spec.ports[{index}].targetPort",
                    f"{target!r} is not the container port {serving_port(container)['name']!r}",
                )


def check_image_pinned(overlay: Overlay) -> Problems:
    if not (served := served_deployment(overlay)):
        return
    deployment, container = served
    image = container.get("image", "")
    reference = ImageRef.parse(image)
    if reference.tag in (None, "latest") and not reference.digest:
        yield overlay.problem(
            deployment,
            container_field(container, "image"),
            f"{image!r} must carry a release tag, not latest",
        )


def check_release_tags_differ(overlays: list[Overlay]) -> Problems:
    seen: dict[str, str] = {}
    for overlay in overlays:
        if not (served := served_deployment(overlay)):
            continue
        deployment, container = served
        image = container.get("image", "")
        if image in seen:
            yield overlay.problem(
                deployment,
                container_field(container, "image"),
                f"{image!r} is also the image of {seen[image]}: each overlay is another release",
            )
        seen.setdefault(image, overlay.name)


def without_images(resource: dict) -> dict:
    """A copy of the resource with every container image blanked out."""
    if resource.get("kind") != "Deployment":
        return resource
    copy = {**resource, "spec": {**resource["spec"]}}
    template = copy["spec"]["template"] = {**copy["spec"]["template"]}
    spec = template["spec"] = {**template["spec"]}
    spec["containers"] = [{**c, "image": None} for c in spec.get("containers", [])]
    return copy


def differences(left, right, path: str = "") -> Iterator[tuple[str, object, object]]:
    """The paths where two YAML values differ; list items with names are matched by name."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(left.keys() | right.keys()):
            yield from differences(left.get(key), right.get(key), f"{path}.{key}".lstrip("."))
    elif isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            label = a.get("name", index) if isinstance(a, dict) else index
            yield from differences(a, b, f"{path}[{label}]")
    elif left != right:
        yield path, left, right


def check_only_image_differs(overlays: list[Overlay]) -> Problems:
    if len(overlays) < 2:
        return
    reference = overlays[0]
    expected = {resource_id(r): without_images(r) for r in reference.resources}
    for overlay in overlays[1:]:
        actual = {resource_id(r): without_images(r) for r in overlay.resources}
        for name in sorted(expected.keys() - actual.keys()):
            yield overlay.problem(name, "kind", f"missing, but rendered by {reference.name}")
        for name in sorted(actual.keys() - expected.keys()):
            yield overlay.problem(name, "kind", f"not rendered by {reference.name}")
        for name in sorted(expected.keys() & actual.keys()):
            for field, theirs, ours in differences(expected[name], actual[name]):
                yield overlay.problem(
                    name,
                    field,
                    f"is {json.dumps(ours)} here but {json.dumps(theirs)} in {reference.name}:"
                    " overlays may change only the image tag",
                )
        yield from check_same_repository(reference, overlay)


def check_same_repository(reference: Overlay, overlay: Overlay) -> Problems:
    if not (ours := served_deployment(overlay)) or not (theirs := served_deployment(reference)):
        return
    deployment, container = ours
    repository = ImageRef.parse(container.get("image", "")).repository
    expected = ImageRef.parse(theirs[1].get("image", "")).repository
    if repository != expected:
        yield overlay.problem(
            deployment,
            container_field(container, "image"),
            f"repository {repository!r} differs from {expected!r} in {reference.name}:"
            " overlays may change only the image tag",
        )


OVERLAY_CHECKS: tuple[Callable[[Overlay], Problems], ...] = (
    check_deployment,
    check_readiness_on_ready,
    check_liveness_not_on_ready,
    check_probe_ports,
    check_probe_timings_explicit,
    check_env,
    check_settings,
    check_prestop,
    check_grace_period,
    check_rolling_update,
    check_replicas,
    check_autoscaler,
    check_disruption_budget,
    check_service,
    check_image_pinned,
)
CROSS_OVERLAY_CHECKS: tuple[Callable[[list[Overlay]], Problems], ...] = (
    check_release_tags_differ,
    check_only_image_differs,
)


def check_overlays(overlays: list[Overlay]) -> list[Problem]:
    """Every problem of every overlay, then those between overlays."""
    problems = [
        problem for overlay in overlays for check in OVERLAY_CHECKS for problem in check(overlay)
    ]
    problems += [problem for check in CROSS_OVERLAY_CHECKS for problem in check(overlays)]
    return problems

"""The zero-downtime contract of the rendered overlays, one check per rule.

Each check takes an overlay (or all of them) and returns the problems it found; a problem names
the overlay, the resource and the field.

The pods are owned by the Deployment, or, when an overlay renders an Argo Rollouts Rollout
(components/rollout-*), by the Rollout. The timing contract is checked on the pod template the
pods run: the Rollout's own, or the Deployment its workloadRef names.
"""

import json
import math
from collections.abc import Callable, Iterator

from app.settings import Settings, SettingsError
from tools import durations, rollingupdate
from tools.exposure import (
    DEREGISTRATION_DELAY_ATTRIBUTE,
    PROPAGATION_ALLOWANCE,
    Exposure,
    ExposureError,
    read_exposure,
)
from tools.imageref import ImageRef
from tools.selectors import selects, service_selects
from tools.validate.overlays import (
    AWS_ALB,
    BLUE_GREEN,
    REFUSED,
    REQUIRES,
    Overlay,
    Problem,
    resource_id,
)
from tools.validate.workload import (
    PROBE_TIMING_FIELDS,
    PROBES,
    analysis_references,
    container_field,
    env_seconds,
    env_value,
    literal_env,
    pod_labels,
    pod_spec,
    prestop_seconds,
    probe_port_matches,
    rollout_services,
    rollout_strategy,
    serving_container,
    serving_port,
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


def check_deployment(overlay: Overlay) -> Problems:
    if overlay.of_kind("Rollout"):
        return  # check_rollout: the Rollout owns the pods and names its template
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
    if not (served := served_template(overlay)):
        return
    holder, container = served
    probe = container.get("readinessProbe")
    if not probe:
        yield overlay.problem(holder, container_field(container, "readinessProbe"), "missing")
        return
    path = probe.get("httpGet", {}).get("path")
    if path != READINESS_PATH:
        yield overlay.problem(
            holder,
            container_field(container, "readinessProbe.httpGet.path"),
            f"is {path!r}, must be '/ready' (the endpoint that turns 503 when draining starts)",
        )


def check_liveness_not_on_ready(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    probe = container.get("livenessProbe")
    if not probe:
        yield overlay.problem(holder, container_field(container, "livenessProbe"), "missing")
        return
    if probe.get("httpGet", {}).get("path") == READINESS_PATH:
        yield overlay.problem(
            holder,
            container_field(container, "livenessProbe.httpGet.path"),
            "must not be '/ready': a draining pod would be restarted; use '/healthz'",
        )


def check_probe_ports(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    port = serving_port(container)
    for probe_name in PROBES:
        probe_port = container.get(probe_name, {}).get("httpGet", {}).get("port")
        if probe_port is not None and not probe_port_matches(probe_port, port):
            yield overlay.problem(
                holder,
                container_field(container, f"{probe_name}.httpGet.port"),
                f"{probe_port!r} is not the container port "
                f"({port.get('name')!r}, {port.get('containerPort')})",
            )


def check_probe_timings_explicit(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    for probe_name in PROBES:
        probe = container.get(probe_name)
        if probe is None:
            continue
        missing = [field for field in PROBE_TIMING_FIELDS if field not in probe]
        if missing:
            yield overlay.problem(
                holder,
                container_field(container, probe_name),
                f"timing left to defaults: set {', '.join(missing)}",
            )


def check_env(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    field = container_field(container, "env")
    for name in REQUIRED_ENV:
        if env_value(container, name) is None:
            yield overlay.problem(holder, field, f"{name} must be set to a value explicitly")
    if env_value(container, "APP_VERSION") is not None:
        yield overlay.problem(
            holder, field, "APP_VERSION must not be set: the image carries its version"
        )
    port = serving_port(container).get("containerPort")
    if env_value(container, "PORT") not in (None, str(port)):
        yield overlay.problem(
            holder,
            field,
            f"PORT is {env_value(container, 'PORT')!r} but the container port is {port}",
        )


def check_settings(overlay: Overlay) -> Problems:
    """Every literal env value passes the checks the server itself runs before it starts."""
    if not (served := served_template(overlay)):
        return
    holder, container = served
    field = container_field(container, "env")
    # One variable at a time, so that every bad value is reported, not only the first.
    for name, value in literal_env(container).items():
        try:
            Settings.from_env({name: value})
        except SettingsError as error:
            yield overlay.problem(
                holder, field, f"{name} {value!r} would stop the server at start: {error}"
            )


def check_prestop(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    seconds = prestop_seconds(container)
    if not seconds:
        yield overlay.problem(
            holder,
            container_field(container, "lifecycle.preStop"),
            "missing: a sleep must cover endpoint propagation before SIGTERM",
        )


def check_grace_period(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    prestop = prestop_seconds(container) or 0
    drain = env_seconds(container, "DRAIN_SECONDS")
    graceful = env_seconds(container, "GRACEFUL_TIMEOUT")
    if drain is None or graceful is None:
        return  # check_env reports the missing values
    needed = prestop + drain + graceful + SHUTDOWN_MARGIN_SECONDS
    grace = pod_spec(holder).get("terminationGracePeriodSeconds", 30)
    if grace < needed:
        yield overlay.problem(
            holder,
            "spec.template.spec.terminationGracePeriodSeconds",
            f"{grace:g} s does not cover preStop {prestop:g} s + DRAIN_SECONDS {drain:g} s"
            f" + GRACEFUL_TIMEOUT {graceful:g} s + {SHUTDOWN_MARGIN_SECONDS} s margin"
            f" = {needed:g} s",
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


# Argo Rollouts (components/rollout-blue-green, components/rollout-canary): the Rollout owns the
# pods; each Service it names must exist (check_service checks that every Service selects the
# pods), every analysis it runs must find its template, the template's Job its scripts.


def check_rollout(overlay: Overlay) -> Problems:
    rollouts = overlay.of_kind("Rollout")
    if len(rollouts) > 1:
        yield overlay.problem(
            "Rollout", "kind", f"expected at most 1 Rollout, found {len(rollouts)}"
        )
    if len(rollouts) != 1:
        return
    rollout = rollouts[0]
    spec = rollout.get("spec", {})
    if not (holder := template_holder(overlay)):
        reference = spec.get("workloadRef") or {}
        yield overlay.problem(
            rollout,
            "spec.workloadRef",
            f"names {reference.get('kind')}/{reference.get('name')}, not a Deployment in the"
            " render (and the Rollout has no template of its own)",
        )
        return
    if not serving_container(holder):
        yield overlay.problem(
            holder, "spec.template.spec.containers", 'no container has a port named "http"'
        )
    if not selects(spec.get("selector"), pod_labels(holder)):
        yield overlay.problem(
            rollout,
            "spec.selector",
            f"does not select the pods of its template in {resource_id(holder)}",
        )
    for field in ROLLOUT_FIELDS:
        if field not in spec:
            yield overlay.problem(rollout, f"spec.{field}", "must be set explicitly")


def check_rollout_services(overlay: Overlay) -> Problems:
    if not (rollout := only(overlay, "Rollout")):
        return
    for field, name in rollout_services(rollout):
        if not named(overlay, "Service", name):
            yield overlay.problem(rollout, field, f"no Service {name!r} in the render")


def check_analysis_templates(overlay: Overlay) -> Problems:
    """Every template an analysis of the Rollout names exists, and gets every arg it needs."""
    if not (rollout := only(overlay, "Rollout")):
        return
    for field, analysis in analysis_references(rollout):
        given = {arg.get("name") for arg in analysis.get("args") or []}
        if not analysis.get("templates"):
            yield overlay.problem(rollout, f"{field}.templates", "names no template")
        for index, reference in enumerate(analysis.get("templates") or []):
            kind = (
                "ClusterAnalysisTemplate" if reference.get("clusterScope") else "AnalysisTemplate"
            )
            name = reference.get("templateName")
            if not (template := named(overlay, kind, name)):
                yield overlay.problem(
                    rollout,
                    f"{field}.templates[{index}].templateName",
                    f"no {kind} {name!r} in the render",
                )
                continue
            for arg in template.get("spec", {}).get("args") or []:
                if not ({"value", "valueFrom"} & arg.keys() or arg.get("name") in given):
                    yield overlay.problem(
                        rollout,
                        f"{field}.args",
                        f"gives no value for {arg.get('name')!r}, which {kind} {name!r} needs",
                    )


def analysis_jobs(overlay: Overlay) -> Iterator[tuple[dict, str, dict]]:
    """(template, field of its Job's pod spec, pod spec) of every job metric of every analysis
    template in the overlay."""
    for template in overlay.of_kind("AnalysisTemplate") + overlay.of_kind(
        "ClusterAnalysisTemplate"
    ):
        for metric in template.get("spec", {}).get("metrics") or []:
            job = (metric.get("provider") or {}).get("job")
            if job:
                field = f"spec.metrics[{metric.get('name')}].provider.job.spec.template.spec"
                yield template, field, job.get("spec", {}).get("template", {}).get("spec", {})


def check_analysis_volumes(overlay: Overlay) -> Problems:
    """The ConfigMaps an analysis Job mounts are rendered beside it. kustomize does not rewrite
    the name of a generated ConfigMap in an AnalysisTemplate (a kind it does not know), so a
    hash suffix would leave the Job mounting a ConfigMap that does not exist."""
    for template, field, pod in analysis_jobs(overlay):
        for volume in pod.get("volumes") or []:
            config_map = volume.get("configMap") or {}
            name = config_map.get("name")
            if name and not config_map.get("optional") and not named(overlay, "ConfigMap", name):
                yield overlay.problem(
                    template,
                    f"{field}.volumes[{volume.get('name')}].configMap.name",
                    f"no ConfigMap {name!r} in the render: the analysis Job could not start",
                )


def check_analysis_images(overlay: Overlay) -> Problems:
    for template, field, pod in analysis_jobs(overlay):
        for container in pod.get("containers") or []:
            image = container.get("image", "")
            reference = ImageRef.parse(image)
            if reference.tag in (None, "latest") and not reference.digest:
                yield overlay.problem(
                    template,
                    f"{field}.containers[{container.get('name')}].image",
                    f"{image!r} must carry a tag, not latest (no images: entry for it?)",
                )


def check_blue_green_scale_down(overlay: Overlay) -> Problems:
    """Old pods outlive the switch of the active Service by the propagation allowance, and an
    abort says how long it leaves the new pods up."""
    if not (rollout := only(overlay, "Rollout")) or not (served := served_template(overlay)):
        return
    name, strategy = rollout_strategy(rollout)
    if name != "blueGreen":
        return
    field = "spec.strategy.blueGreen"
    allowance = prestop_seconds(served[1])  # check_prestop reports a missing one
    delay = strategy.get("scaleDownDelaySeconds", DEFAULT_SCALE_DOWN_DELAY_SECONDS)
    exposure = exposure_or_none(overlay)
    if (
        exposure
        and exposure.propagation_allowance > (allowance or 0)
        and isinstance(delay, int)
        and delay < exposure.propagation_allowance
    ):
        yield overlay.problem(
            rollout,
            f"{field}.scaleDownDelaySeconds",
            f"{delay} s is shorter than the {exposure.kind} exposure's propagation allowance of"
            f" {exposure.propagation_allowance:g} s (HTTPRoute/{exposure.route}): old pods would"
            " stop while the proxy still sends them the active Service's traffic",
        )
    elif allowance and isinstance(delay, int) and delay < allowance:
        yield overlay.problem(
            rollout,
            f"{field}.scaleDownDelaySeconds",
            f"{delay} s is shorter than the pods' preStop sleep of {allowance:g} s, the"
            " repository's allowance for endpoint propagation: old pods would stop while nodes"
            " still send them the active Service's traffic",
        )
    if "abortScaleDownDelaySeconds" not in strategy:
        yield overlay.problem(
            rollout,
            f"{field}.abortScaleDownDelaySeconds",
            "must be set explicitly: how long an abort leaves the new pods up (0: until the"
            " next rollout)",
        )


def check_canary_steps(overlay: Overlay) -> Problems:
    """setWeight never decreases, and the last one is an explicit setWeight: 100."""
    if not (rollout := only(overlay, "Rollout")):
        return
    name, strategy = rollout_strategy(rollout)
    if name != "canary":
        return
    field = "spec.strategy.canary.steps"
    last = None  # (index, weight) of the latest setWeight
    for index, step in enumerate(strategy.get("steps") or []):
        if not isinstance(step, dict) or not isinstance(step.get("setWeight"), int):
            continue
        weight = step["setWeight"]
        if last and weight < last[1]:
            yield overlay.problem(
                rollout,
                f"{field}[{index}].setWeight",
                f"is {weight}, after {last[1]} at steps[{last[0]}]: weights must never decrease"
                " (users would be moved back and forth between versions)",
            )
        last = (index, weight)
    if last and last[1] != FULL_WEIGHT:
        yield overlay.problem(
            rollout,
            f"{field}[{last[0]}].setWeight",
            f"is {last[1]}, the last weight: the steps must end with an explicit setWeight:"
            f" {FULL_WEIGHT}",
        )


def check_canary_analysis_after_propagation(overlay: Overlay) -> Problems:
    """An analysis step waits, after the weight last changed, at least the propagation allowance
    (the preStop sleep): until every node's kube-proxy has moved the canary Service to the new
    pods, the analysis may be measuring the old ones (Argo Rollouts starts it as soon as the
    Service's selector changed, rollout/canary.go)."""
    if not (rollout := only(overlay, "Rollout")) or not (served := served_template(overlay)):
        return
    name, strategy = rollout_strategy(rollout)
    prestop = prestop_seconds(served[1])  # check_prestop reports a missing one
    if name != "canary" or not prestop:
        return
    # The analysis reaches the canary through its own Service, in the cluster: it waits for
    # kube-proxy, not for an exposure that learns later (an ALB), whose extra allowance the
    # preStop carries beside kube-proxy's.
    allowance, why = prestop, "the pods' preStop sleep of"
    exposure = exposure_or_none(overlay)
    extra = exposure.propagation_allowance - KUBE_PROXY_ALLOWANCE_SECONDS if exposure else 0
    if extra > 0:
        allowance = max(prestop - extra, 0)
        why = (
            f"the in-cluster allowance (preStop {prestop:g} s less the {exposure.kind}"
            f" exposure's extra {extra:g} s: the analysis goes through the canary Service) of"
        )
    field = "spec.strategy.canary.steps"
    paused = None  # seconds paused since the latest setWeight
    for index, step in enumerate(strategy.get("steps") or []):
        if not isinstance(step, dict):
            continue
        if "setWeight" in step:
            paused = 0.0
        elif "pause" in step and paused is not None:
            pause = step["pause"] if isinstance(step["pause"], dict) else {}
            try:
                # A pause without a duration waits for a promotion by hand.
                paused += durations.seconds(pause["duration"]) if "duration" in pause else math.inf
            except ValueError as error:
                yield overlay.problem(rollout, f"{field}[{index}].pause.duration", str(error))
                return
        elif "analysis" in step and paused is not None and paused < allowance:
            yield overlay.problem(
                rollout,
                f"{field}[{index}].analysis",
                f"starts {paused:g} s after the weight changed, less than {why}"
                f" {allowance:g} s, the repository's allowance for endpoint"
                " propagation: add a pause before it, or the analysis may measure the old pods",
            )


def check_canary_surge(overlay: Overlay) -> Problems:
    """As for the Deployment: no pod unavailable, at least one extra, at every replica count."""
    if not (rollout := only(overlay, "Rollout")):
        return
    name, strategy = rollout_strategy(rollout)
    if name == "canary":
        yield from fencepost_problems(
            overlay,
            rollout,
            strategy,
            "spec.strategy.canary",
        )


def check_image_pinned(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    image = container.get("image", "")
    reference = ImageRef.parse(image)
    if reference.tag in (None, "latest") and not reference.digest:
        yield overlay.problem(
            holder,
            container_field(container, "image"),
            f"{image!r} must carry a release tag, not latest",
        )


def check_release_tags_differ(overlays: list[Overlay]) -> Problems:
    seen: dict[str, str] = {}
    for overlay in overlays:
        if not (served := served_template(overlay)):
            continue
        holder, container = served
        image = container.get("image", "")
        if image in seen:
            yield overlay.problem(
                holder,
                container_field(container, "image"),
                f"{image!r} is also the image of {seen[image]}: each overlay is another release",
            )
        seen.setdefault(image, overlay.name)


def without_images(resource: dict) -> dict:
    """A copy of the resource with every container image of its pod template blanked out."""
    if resource.get("kind") not in ("Deployment", "Rollout") or not pod_spec(resource):
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
    if not (ours := served_template(overlay)) or not (theirs := served_template(reference)):
        return
    holder, container = ours
    repository = ImageRef.parse(container.get("image", "")).repository
    expected = ImageRef.parse(theirs[1].get("image", "")).repository
    if repository != expected:
        yield overlay.problem(
            holder,
            container_field(container, "image"),
            f"repository {repository!r} differs from {expected!r} in {reference.name}:"
            " overlays may change only the image tag",
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
    prestop = prestop_seconds(container)  # check_prestop reports a missing one
    allowance = exposure.propagation_allowance
    if prestop is not None and prestop < allowance:
        yield overlay.problem(
            holder,
            container_field(container, "lifecycle.preStop"),
            f"sleeps {prestop:g} s, less than the {exposure.kind} exposure's propagation"
            f" allowance of {allowance:g} s ({route} {PROPAGATION_ALLOWANCE}): the proxy may"
            " send new requests after SIGTERM",
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
    prestop = prestop_seconds(container) or 0
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
            f"{delay:g} s is shorter than preStop {prestop:g} s + DRAIN_SECONDS {drain:g} s +"
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
    check_rollout,
    check_rollout_services,
    check_analysis_templates,
    check_analysis_volumes,
    check_analysis_images,
    check_blue_green_scale_down,
    check_canary_steps,
    check_canary_analysis_after_propagation,
    check_canary_surge,
    check_component_combination,
    check_exposure,
    check_exposure_timing,
    check_alb_target_group,
    check_alb_readiness_gate,
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

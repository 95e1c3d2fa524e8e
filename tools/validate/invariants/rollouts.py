"""Argo Rollouts (components/rollout-blue-green, components/rollout-canary)."""

import math
from collections.abc import Iterator

from tools import durations
from tools.imageref import ImageRef
from tools.selectors import selects
from tools.validate.invariants.common import (
    DEFAULT_SCALE_DOWN_DELAY_SECONDS,
    FULL_WEIGHT,
    KUBE_PROXY_ALLOWANCE_SECONDS,
    ROLLOUT_FIELDS,
    Problems,
    named,
    only,
    served_template,
    template_holder,
)
from tools.validate.invariants.exposure import exposure_or_none
from tools.validate.invariants.scaling import fencepost_problems
from tools.validate.overlays import (
    Overlay,
    resource_id,
)
from tools.validate.workload import (
    analysis_references,
    pod_labels,
    prestop_timing,
    rollout_services,
    rollout_strategy,
    serving_container,
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
    timing = prestop_timing(served[1])  # check_prestop reports a missing one
    allowance = timing.floor if timing else None
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
            f"{delay} s is shorter than the pods' preStop of at least {allowance:g} s, the"
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
    timing = prestop_timing(served[1])  # check_prestop reports a missing one
    prestop = timing.floor if timing else None
    if name != "canary" or not prestop:
        return
    # The analysis reaches the canary through its own Service, in the cluster: it waits for
    # kube-proxy, not for an exposure that learns later (an ALB), whose extra allowance the
    # preStop carries beside kube-proxy's.
    allowance, why = prestop, "the pods' shortest preStop,"
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

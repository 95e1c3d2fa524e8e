"""An Argo Rollouts Rollout as the rehearsal reads it: its blueGreen or canary strategy, the
analyses it runs (AnalysisTemplates with a job provider) and its workloadRef."""

import math
from dataclasses import dataclass

from tools.kustomize import find
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.deployment import (
    Deployment,
    read_deployment,
    read_surge,
    workload_record,
)
from tools.rehearsal.manifests.fields import Fields, duration


@dataclass(frozen=True)
class AnalysisJob:
    """An AnalysisTemplate with the job provider: the command its Job runs, with {{args.X}}."""

    template: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    defaults: tuple[tuple[str, str], ...]  # (name, value) of the template's args with a value

    def argv(self, values: dict[str, str]) -> list[str]:
        """The command line with every {{args.X}} filled in (the Rollout's values win)."""
        known = dict(self.defaults) | values
        filled = []
        for part in (*self.command, *self.args):
            for name, value in known.items():
                part = part.replace(f"{{{{args.{name}}}}}", value)
            if "{{args." in part:
                raise RehearsalError(f"AnalysisTemplate {self.template}: {part!r}: no value")
            filled.append(part)
        return filled


@dataclass(frozen=True)
class Analysis:
    """An analysis a Rollout runs: its templates and the args it passes them."""

    jobs: tuple[AnalysisJob, ...]
    args: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BlueGreen:
    active_service: str
    preview_service: str
    auto_promotion: bool
    pre_promotion_analysis: Analysis | None
    scale_down_delay: float
    abort_scale_down_delay: float


@dataclass(frozen=True)
class CanaryStep:
    weight: int | None = None  # setWeight
    pause: float | None = None  # seconds; math.inf: until promoted by hand
    analysis: Analysis | None = None


@dataclass(frozen=True)
class Canary:
    canary_service: str | None
    stable_service: str | None
    steps: tuple[CanaryStep, ...]


# workloadRef.scaleDown (argo-rollouts pkg/apis/rollouts/v1alpha1/types.go ObjectRef); unset
# scales nothing, as never.
SCALE_DOWN_MODES = ("never", "onsuccess", "progressively")


@dataclass(frozen=True)
class WorkloadRef:
    """A Rollout's spec.workloadRef: the Deployment whose pod template it uses (as rendered),
    and how the Rollout scales that Deployment down while it adopts its traffic."""

    deployment: Deployment
    scale_down: str  # one of SCALE_DOWN_MODES


@dataclass(frozen=True)
class Rollout:
    """An Argo Rollouts Rollout over the pods (its replica and timing fields are in the
    Workload's Deployment record; the pod template is the workloadRef'd Deployment's)."""

    name: str
    strategy: BlueGreen | Canary
    workload_ref: WorkloadRef | None = None


def read_analysis_jobs(resources: list[dict], source: str) -> dict[str, AnalysisJob]:
    """The AnalysisTemplates whose metrics run a Job, by name."""
    jobs = {}
    for resource in find(resources, "AnalysisTemplate"):
        name = resource.get("metadata", {}).get("name", "?")
        spec = Fields(resource.get("spec"), f"{source}: AnalysisTemplate {name}", "spec")
        for metric in spec.items("metrics"):
            if not metric.child("provider").has("job"):
                continue
            pod = metric.child("provider").child("job").child("spec").child("template")
            (container, *_) = pod.child("spec").items("containers") or [None]
            if container is None:
                raise pod.error("spec.containers", "the Job has no container")
            defaults = tuple(
                (arg.text("name"), str(arg.data["value"]))
                for arg in spec.items("args")
                if arg.has("value")
            )
            jobs[name] = AnalysisJob(
                template=name,
                command=container.strings("command") if container.has("command") else (),
                args=container.strings("args") if container.has("args") else (),
                defaults=defaults,
            )
    return jobs


def read_analysis(fields: Fields, jobs: dict[str, AnalysisJob]) -> Analysis:
    found = []
    for reference in fields.items("templates"):
        name = reference.text("templateName")
        if name not in jobs:
            raise reference.error(
                "templateName", f"no AnalysisTemplate {name!r} with a job metric in the render"
            )
        found.append(jobs[name])
    if not found:
        raise fields.error("templates", "an analysis needs at least one template")
    args = tuple((arg.text("name"), str(arg.data.get("value", ""))) for arg in fields.items("args"))
    return Analysis(jobs=tuple(found), args=args)


# What argo-rollouts v1.9.1 rejects in a canary without trafficRouting
# (pkg/apis/rollouts/validation/validation.go ValidateRolloutStrategyCanary), with its messages.
BASIC_CANARY_ONLY_WITH_TRAFFIC_ROUTING = {
    "dynamicStableScale": "Canary dynamicStableScale can only be used with traffic routing",
    "scaleDownDelaySeconds": "Canary scaleDownDelaySeconds can only be used with traffic routing",
}


def validate_basic_canary(canary: Fields) -> None:
    """The rehearsal runs the basic canary (by replica weight), the repository's: a canary with
    trafficRouting is refused, and so is what Argo Rollouts refuses without it, as its
    validation words it (field.Invalid: `<path>: Invalid value: <value>: <detail>`).

    dynamicStableScale exists only with trafficRouting. There the traffic router, not the pod
    count, sets each version's share of the requests, so by default the stable ReplicaSet stays
    at spec.replicas throughout a release while the canary is scaled to the weight (up to twice
    the pods; utils/replicaset/canary.go CalculateReplicaCountsForTrafficRoutedCanary).
    dynamicStableScale: true scales the stable down as the canary's weight grows, to the larger
    of the desired and the actual stable weight (status.canary.weights, what the controller last
    set and verified in the router), and an abort must scale the stable back up before the
    router moves the traffic back (GetDesiredCanaryWeight walks the steps backwards), so aborts
    are slower and the canary is scaled down at once unless abortScaleDownDelaySeconds is set.

    The repository does not use it: its canary has no trafficRouting (no mesh or ingress
    controller to depend on); the Service spreads requests by pod count, so the stable is
    already scaled as the inverse of the canary's weight (CalculateReplicaCountsForBasicCanary),
    and Argo Rollouts would reject the Rollout (InvalidSpec). Nor would it suit an HPA:
    the stable pods go as soon as the router's weight is verified, and Istio's VerifyWeight
    checks only the VirtualService, not the proxies' data plane, so stable pods still receiving
    requests are removed and the HPA scales back up (argoproj/argo-rollouts#4347, open at
    v1.9.1, reported with 503s)."""
    if canary.has("trafficRouting"):
        raise canary.error(
            "trafficRouting", "only the basic canary (no trafficRouting) is rehearsed"
        )
    for key, detail in BASIC_CANARY_ONLY_WITH_TRAFFIC_ROUTING.items():
        value = canary.data.get(key)
        if value is not None and value is not False:
            shown = str(value).lower() if isinstance(value, bool) else value
            raise canary.error(key, f"Invalid value: {shown}: {detail}")


def read_strategy(spec: Fields, jobs: dict[str, AnalysisJob]) -> BlueGreen | Canary:
    strategy = spec.child("strategy")
    if strategy.has("blueGreen"):
        blue_green = strategy.child("blueGreen")
        return BlueGreen(
            active_service=blue_green.text("activeService"),
            preview_service=blue_green.text("previewService"),
            auto_promotion=blue_green.data.get("autoPromotionEnabled", True) is not False,
            pre_promotion_analysis=read_analysis(blue_green.child("prePromotionAnalysis"), jobs)
            if blue_green.has("prePromotionAnalysis")
            else None,
            scale_down_delay=blue_green.number("scaleDownDelaySeconds", 30),
            abort_scale_down_delay=blue_green.number("abortScaleDownDelaySeconds", 30),
        )
    if strategy.has("canary"):
        canary = strategy.child("canary")
        validate_basic_canary(canary)
        steps = []
        for step in canary.items("steps"):
            if step.has("setWeight"):
                steps.append(CanaryStep(weight=step.integer("setWeight")))
            elif "pause" in step.data:
                pause = step.child("pause")
                seconds = (
                    duration(pause.data["duration"], pause, "duration")
                    if pause.has("duration")
                    else math.inf
                )
                steps.append(CanaryStep(pause=seconds))
            elif step.has("analysis"):
                steps.append(CanaryStep(analysis=read_analysis(step.child("analysis"), jobs)))
            else:
                raise step.error(
                    "setWeight", "only setWeight, pause and analysis steps are rehearsed"
                )
        return Canary(
            canary_service=canary.data.get("canaryService"),
            stable_service=canary.data.get("stableService"),
            steps=tuple(steps),
        )
    raise strategy.error("blueGreen", "a Rollout needs a blueGreen or canary strategy")


def read_rollout(
    resource: dict, resources: list[dict], source: str, config_maps: dict[str, dict]
) -> tuple[Deployment, Rollout, dict]:
    """The Rollout as a Deployment record (replicas, timing, pod template) and its strategy;
    also the resource that holds the pod template (for the Services' selectors)."""
    name = resource.get("metadata", {}).get("name", "?")
    where = f"{source}: Rollout {name}"
    spec = Fields(resource.get("spec"), where, "spec")
    holder, holder_spec = resource, spec
    workload_ref = None
    if spec.has("workloadRef"):
        ref = spec.child("workloadRef")
        if ref.data.get("kind") != "Deployment":
            raise ref.error("kind", "only a Deployment can be the workloadRef here")
        target = ref.text("name")
        matches = [d for d in find(resources, "Deployment") if d["metadata"]["name"] == target]
        if not matches:
            raise ref.error("name", f"no Deployment {target!r} in the render")
        holder = matches[0]
        holder_spec = Fields(holder.get("spec"), f"{source}: Deployment {target}", "spec")
        scale_down = ref.data.get("scaleDown") or "never"
        if scale_down not in SCALE_DOWN_MODES:
            modes = ", ".join(SCALE_DOWN_MODES)
            raise ref.error("scaleDown", f"{scale_down!r} is not one of {modes}")
        workload_ref = WorkloadRef(read_deployment(holder, source, config_maps, None), scale_down)
    strategy = read_strategy(spec, read_analysis_jobs(resources, source))
    max_surge, max_unavailable = read_surge(spec.child("strategy").child("canary"), False)
    kind = "BlueGreen" if isinstance(strategy, BlueGreen) else "Canary"
    record = workload_record(
        resource, spec, holder_spec, kind, max_surge, max_unavailable, config_maps, None
    )
    return record, Rollout(name, strategy, workload_ref), holder

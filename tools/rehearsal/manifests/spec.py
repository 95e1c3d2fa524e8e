"""What the rehearsal reads from the rendered manifests: the Deployment and its Service.

Every field that shapes timing is read here, with Kubernetes' defaults where it is absent, and
every unusable value is reported naming the source, the object and the field.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from tools import durations, rollingupdate
from tools.exposure import Exposure, ExposureError, read_exposure
from tools.imageref import ImageRef
from tools.kustomize import find
from tools.rehearsal.errors import RehearsalError
from tools.selectors import selects, service_selects

PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
# Environment fieldRefs the emulated kubelet can fill in (the downward API).
POD_FIELDS = ("metadata.name", "metadata.namespace", "status.podIP", "spec.nodeName")


@dataclass(frozen=True)
class Probe:
    kind: str  # startup, readiness or liveness
    action: str  # http, tcp or exec
    port: int = 0
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace: float | None = None  # probe-level terminationGracePeriodSeconds


@dataclass(frozen=True)
class PreStop:
    action: str  # sleep, exec or http
    seconds: float = 0
    command: tuple[str, ...] = ()
    port: int = 0
    path: str = "/"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""
    field_path: str = ""  # a downward-API fieldRef, resolved per pod


@dataclass(frozen=True)
class PodTemplate:
    template_hash: str
    image: str
    version: str
    container_port: int
    env: tuple[EnvVar, ...]
    startup: Probe | None
    readiness: Probe | None
    liveness: Probe | None
    pre_stop: PreStop | None
    termination_grace: float
    namespace: str = "default"
    user: str | None = None  # "uid[:gid]" from securityContext; None: the image's own user
    read_only_root: bool = False  # securityContext.readOnlyRootFilesystem
    command: tuple[str, ...] = ()  # replaces the image's entrypoint (container runtimes only)
    args: tuple[str, ...] = ()  # replaces the image's CMD (container runtimes only)
    memory_limit: int | None = None  # bytes, resources.limits.memory
    cpu_limit: float | None = None  # cores, resources.limits.cpu
    readiness_gates: tuple[str, ...] = ()  # spec.readinessGates[].conditionType

    def environment(self, pod_name: str, pod_ip: str) -> dict[str, str]:
        fields = {
            "metadata.name": pod_name,
            "metadata.namespace": self.namespace,
            "status.podIP": pod_ip,
            "spec.nodeName": "rehearsal",
        }
        return {
            var.name: fields[var.field_path] if var.field_path else var.value for var in self.env
        }


@dataclass(frozen=True)
class Deployment:
    name: str
    replicas: int
    strategy_type: str
    max_surge: int | str
    max_unavailable: int | str
    min_ready_seconds: float
    progress_deadline_seconds: float
    template: PodTemplate

    @property
    def fenceposts(self) -> rollingupdate.Fenceposts:
        return rollingupdate.resolve(self.max_surge, self.max_unavailable, self.replicas)


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

    def disruptions_allowed(self, expected: int, healthy: int) -> int:
        """As the disruption controller computes status.disruptionsAllowed (percentages of the
        expected pods rounded up)."""
        if self.max_unavailable is not None:
            unavailable = rollingupdate.scaled(self.max_unavailable, expected, round_up=True)
            desired = expected - unavailable
        else:
            desired = rollingupdate.scaled(self.min_available or 0, expected, round_up=True)
        return max(0, healthy - desired)


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


class Fields:
    """Typed access to a manifest mapping; errors name `<source>: <object>: <path>`."""

    def __init__(self, data: object, where: str, path: str) -> None:
        if not isinstance(data, dict):
            raise RehearsalError(f"{where}: {path or 'object'}: expected a mapping")
        self.data, self.where, self.path = data, where, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> RehearsalError:
        return RehearsalError(f"{self.where}: {self._name(key)}: {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def child(self, key: str) -> "Fields":
        return Fields(self.data.get(key) or {}, self.where, self._name(key))

    def items(self, key: str) -> list["Fields"]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.error(key, "expected a list")
        return [Fields(item, self.where, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

    def number(self, key: str, default: float | None = None, minimum: float = 0) -> float:
        value = self.data.get(key, default)
        if value is None:
            raise self.error(key, "missing")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(key, f"expected a number >= {minimum}, got {value!r}")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        value = self.number(key, default, minimum)
        if not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a non-empty list of strings, got {value!r}")
        return tuple(value)


def template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def version_of(image: str, env: tuple[EnvVar, ...]) -> str:
    """The version a pod reports: APP_VERSION if the manifest sets it, else the image tag."""
    for var in env:
        if var.name == "APP_VERSION" and var.value:
            return var.value
    reference = ImageRef.parse(image)
    if reference.digest:
        return reference.digest.replace("sha256:", "")[:12]
    return reference.tag or "latest"


def resolve_port(value: object, ports: dict[str, int], fields: Fields, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value in ports:
        return ports[value]
    raise fields.error(key, f"{value!r} is not a port number or a named container port")


def read_probe(fields: Fields, kind: str, ports: dict[str, int]) -> Probe:
    timing = {key: fields.number(key, default) for key, default in PROBE_DEFAULTS.items()}
    if timing["periodSeconds"] < 1 or timing["timeoutSeconds"] < 1:
        raise fields.error("periodSeconds", "periodSeconds and timeoutSeconds must be >= 1")
    if kind != "readiness" and timing["successThreshold"] != 1:
        raise fields.error("successThreshold", f"must be 1 for a {kind} probe")
    common = {
        "kind": kind,
        "initial_delay": timing["initialDelaySeconds"],
        "period": timing["periodSeconds"],
        "timeout": timing["timeoutSeconds"],
        "success_threshold": int(timing["successThreshold"]),
        "failure_threshold": int(max(1, timing["failureThreshold"])),
        "termination_grace": fields.number("terminationGracePeriodSeconds")
        if fields.has("terminationGracePeriodSeconds")
        else None,
    }
    if fields.has("httpGet"):
        http = fields.child("httpGet")
        if http.data.get("scheme", "HTTP") != "HTTP":
            raise http.error("scheme", "only HTTP probes can be rehearsed")
        headers = tuple(
            (h.text("name"), str(h.data.get("value", ""))) for h in http.items("httpHeaders")
        )
        port = resolve_port(http.data.get("port"), ports, http, "port")
        return Probe(
            action="http", port=port, path=http.text("path", "/"), headers=headers, **common
        )
    if fields.has("tcpSocket"):
        tcp = fields.child("tcpSocket")
        return Probe(
            action="tcp", port=resolve_port(tcp.data.get("port"), ports, tcp, "port"), **common
        )
    if fields.has("exec"):
        return Probe(action="exec", command=fields.child("exec").strings("command"), **common)
    raise fields.error(
        "httpGet", "a probe needs httpGet, tcpSocket or exec (grpc is not rehearsed)"
    )


def read_pre_stop(fields: Fields, ports: dict[str, int]) -> PreStop:
    if fields.has("sleep"):
        return PreStop("sleep", seconds=fields.child("sleep").number("seconds"))
    if fields.has("exec"):
        return PreStop("exec", command=fields.child("exec").strings("command"))
    if fields.has("httpGet"):
        http = fields.child("httpGet")
        port = resolve_port(http.data.get("port"), ports, http, "port")
        return PreStop("http", port=port, path=http.text("path", "/"))
    raise fields.error("sleep", "preStop needs sleep, exec or httpGet")


def read_env(container: Fields, config_maps: dict[str, dict]) -> tuple[EnvVar, ...]:
    env: dict[str, EnvVar] = {}
    for source in container.items("envFrom"):
        if not source.has("configMapRef"):
            raise source.error("configMapRef", "only configMapRef sources can be rehearsed")
        name = source.child("configMapRef").text("name")
        if name not in config_maps:
            raise source.error("configMapRef.name", f"no ConfigMap {name!r} in the render")
        prefix = source.data.get("prefix", "")
        for key, value in config_maps[name].items():
            env[prefix + key] = EnvVar(prefix + key, str(value))
    for var in container.items("env"):
        name = var.text("name")
        if "value" in var.data or not var.has("valueFrom"):
            env[name] = EnvVar(name, str(var.data.get("value", "")))
            continue
        source = var.child("valueFrom")
        if source.has("fieldRef"):
            path = source.child("fieldRef").text("fieldPath")
            if path not in POD_FIELDS:
                raise source.error("fieldRef.fieldPath", f"{path!r} is not one of {POD_FIELDS}")
            env[name] = EnvVar(name, field_path=path)
        elif source.has("configMapKeyRef"):
            ref = source.child("configMapKeyRef")
            data = config_maps.get(ref.text("name"), {})
            if ref.text("key") not in data:
                raise ref.error("key", f"not found in ConfigMap {ref.text('name')!r}")
            env[name] = EnvVar(name, str(data[ref.text("key")]))
        else:
            raise source.error("fieldRef", "only fieldRef and configMapKeyRef can be rehearsed")
    return tuple(env.values())


# Kubernetes quantity suffixes for bytes (binary and decimal).
MEMORY_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9,
    "T": 10**12, "": 1,
}  # fmt: skip
QUANTITY = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]*)")


def read_limits(container: Fields) -> tuple[int | None, float | None]:
    """resources.limits memory (bytes) and cpu (cores), when set."""
    limits = container.child("resources").child("limits")
    memory = cpu = None
    if limits.has("memory"):
        match = QUANTITY.fullmatch(str(limits.data["memory"]))
        if not match or match[2] not in MEMORY_UNITS:
            raise limits.error("memory", f"not a memory quantity: {limits.data['memory']!r}")
        memory = int(float(match[1]) * MEMORY_UNITS[match[2]])
    if limits.has("cpu"):
        match = QUANTITY.fullmatch(str(limits.data["cpu"]))
        if not match or match[2] not in ("", "m"):
            raise limits.error("cpu", f"not a CPU quantity: {limits.data['cpu']!r}")
        cpu = float(match[1]) / (1000 if match[2] == "m" else 1)
    return memory, cpu


# A qualified name, as kubernetes pkg/apis/core/validation validateReadinessGates requires of a
# gate's conditionType: an optional DNS subdomain prefix and "/", then a name of 63 characters.
QUALIFIED_NAME = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


def read_readiness_gates(pod: Fields) -> tuple[str, ...]:
    """spec.readinessGates: the conditions that must be True, besides the containers' readiness,
    for the pod to be Ready."""
    gates = []
    for gate in pod.items("readinessGates"):
        condition = gate.text("conditionType")
        if not QUALIFIED_NAME.fullmatch(condition):
            raise gate.error("conditionType", f"not a qualified name: {condition!r}")
        gates.append(condition)
    return tuple(gates)


def read_user(pod: Fields, container: Fields) -> str | None:
    """runAsUser[:runAsGroup], each from the container's securityContext, else the pod's."""
    contexts = (container.child("securityContext"), pod.child("securityContext"))

    def pick(key: str) -> int | None:
        context = next((c for c in contexts if c.has(key)), None)
        return None if context is None else context.integer(key)

    user, group = pick("runAsUser"), pick("runAsGroup")
    if user is None:
        return None
    return str(user) if group is None else f"{user}:{group}"


def read_template(spec: Fields, namespace: str, config_maps: dict[str, dict]) -> PodTemplate:
    template = spec.child("template")
    pod = template.child("spec")
    containers = pod.items("containers")
    if len(containers) != 1:
        raise pod.error(
            "containers", f"exactly one container can be rehearsed, found {len(containers)}"
        )
    container = containers[0]
    ports = {
        p.text("name"): p.integer("containerPort", minimum=1)
        for p in container.items("ports")
        if p.has("name")
    }
    numbers = [p.integer("containerPort", minimum=1) for p in container.items("ports")]
    if not numbers:
        raise container.error("ports", "the container declares no port")
    env = read_env(container, config_maps)
    probes = {
        kind: read_probe(container.child(f"{kind}Probe"), kind, ports)
        if container.has(f"{kind}Probe")
        else None
        for kind in ("startup", "readiness", "liveness")
    }
    lifecycle = container.child("lifecycle")
    pre_stop = (
        read_pre_stop(lifecycle.child("preStop"), ports) if lifecycle.has("preStop") else None
    )
    image = container.text("image")
    memory_limit, cpu_limit = read_limits(container)
    return PodTemplate(
        template_hash=template_hash(template.data),
        image=image,
        version=version_of(image, env),
        container_port=numbers[0],
        env=env,
        pre_stop=pre_stop,
        termination_grace=pod.number("terminationGracePeriodSeconds", 30),
        namespace=namespace,
        user=read_user(pod, container),
        read_only_root=container.child("securityContext").data.get("readOnlyRootFilesystem")
        is True,
        command=container.strings("command") if container.has("command") else (),
        args=container.strings("args") if container.has("args") else (),
        memory_limit=memory_limit,
        cpu_limit=cpu_limit,
        readiness_gates=read_readiness_gates(pod),
        **probes,
    )


def read_deployment(
    resource: dict, source: str, config_maps: dict[str, dict], hpa_min: int | None
) -> Deployment:
    name = resource.get("metadata", {}).get("name", "?")
    where = f"{source}: Deployment {name}"
    spec = Fields(resource.get("spec"), where, "spec")
    rolling = spec.child("strategy")
    strategy_type = rolling.data.get("type", "RollingUpdate")
    if strategy_type not in ("RollingUpdate", "Recreate"):
        raise rolling.error("type", f"unknown strategy {strategy_type!r}")
    max_surge, max_unavailable = read_surge(
        rolling.child("rollingUpdate"), validate=strategy_type == "RollingUpdate"
    )
    return workload_record(
        resource, spec, spec, strategy_type, max_surge, max_unavailable, config_maps, hpa_min
    )


def read_surge(fields: Fields, validate: bool) -> tuple[int | str, int | str]:
    """maxSurge and maxUnavailable of a rollingUpdate (or canary) strategy, with defaults."""
    where = f"{fields.where}: {fields.path}"
    try:
        max_surge = rollingupdate.parse_int_or_percent(
            fields.data.get("maxSurge", rollingupdate.DEFAULT_MAX_SURGE), f"{where}.maxSurge"
        )
        max_unavailable = rollingupdate.parse_int_or_percent(
            fields.data.get("maxUnavailable", rollingupdate.DEFAULT_MAX_UNAVAILABLE),
            f"{where}.maxUnavailable",
        )
        if validate:
            rollingupdate.validate(max_surge, max_unavailable, where)
    except rollingupdate.RollingUpdateError as error:
        raise RehearsalError(str(error)) from None
    return max_surge, max_unavailable


def workload_record(
    resource: dict,
    spec: Fields,
    template_holder: Fields,
    strategy_type: str,
    max_surge: int | str,
    max_unavailable: int | str,
    config_maps: dict[str, dict],
    hpa_min: int | None,
) -> Deployment:
    """The rehearsal's record of what owns the pods: a Deployment, or a Rollout whose pod
    template may be another object's (`template_holder`)."""
    return Deployment(
        name=resource.get("metadata", {}).get("name", "?"),
        replicas=spec.integer("replicas", 1 if hpa_min is None else hpa_min, minimum=1),
        strategy_type=strategy_type,
        max_surge=max_surge,
        max_unavailable=max_unavailable,
        min_ready_seconds=spec.number("minReadySeconds", 0),
        progress_deadline_seconds=spec.number("progressDeadlineSeconds", 600, minimum=1),
        template=read_template(
            template_holder, resource.get("metadata", {}).get("namespace", "default"), config_maps
        ),
    )


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


def duration(value: object, fields: Fields, key: str) -> float:
    try:
        return durations.seconds(value)
    except ValueError as error:
        raise fields.error(key, str(error)) from None


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
    hpa_min = None
    for hpa in find(resources, "HorizontalPodAutoscaler"):
        target = hpa.get("spec", {}).get("scaleTargetRef", {})
        if (target.get("kind"), target.get("name")) == (owner["kind"], owner["metadata"]["name"]):
            hpa_min = hpa["spec"].get("minReplicas", 1)
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
    notes = []
    if hpa_min is not None:
        notes.append(f"HorizontalPodAutoscaler present: replicas fixed at {deployment.replicas}")
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
        notes=tuple(notes),
        disruption_budget=read_disruption_budget(resources, source, holder),
        rollout=rollout,
        services=tuple(services),
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

"""A pod template as the rehearsal reads it: the container's image, port, environment, probes,
preStop hook, resources and securityContext, with Kubernetes' defaults where a field is absent."""

import hashlib
import json
import re
import signal
from dataclasses import dataclass

from tools.imageref import ImageRef
from tools.rehearsal.manifests.fields import Fields, resolve_port

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
    command: tuple[str, ...] = ()  # replaces the image's entrypoint
    args: tuple[str, ...] = ()  # replaces the image's CMD
    working_dir: str | None = None  # workingDir; None: the image's
    memory_limit: int | None = None  # bytes, resources.limits.memory
    cpu_limit: float | None = None  # cores, resources.limits.cpu
    memory_request: int | None = None  # bytes, resources.requests.memory (else its limit)
    cpu_request: float | None = None  # cores, resources.requests.cpu (else its limit)
    readiness_gates: tuple[str, ...] = ()  # spec.readinessGates[].conditionType
    container_name: str = "app"  # spec.containers[0].name: the label of its resource metrics
    # lifecycle.stopSignal (Kubernetes 1.33, ContainerStopSignals): what stops the container
    # instead of the image's STOPSIGNAL; SIGTERM when neither says.
    stop_signal: str = "SIGTERM"

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
    if fields.has("grpc"):
        raise fields.error("grpc", "grpc probes are not rehearsed: use httpGet, tcpSocket or exec")
    raise fields.error("httpGet", "a probe needs httpGet, tcpSocket or exec")


def read_pre_stop(fields: Fields, ports: dict[str, int]) -> PreStop:
    if fields.has("sleep"):
        return PreStop("sleep", seconds=fields.child("sleep").number("seconds"))
    if fields.has("exec"):
        return PreStop("exec", command=fields.child("exec").strings("command"))
    if fields.has("httpGet"):
        http = fields.child("httpGet")
        port = resolve_port(http.data.get("port"), ports, http, "port")
        return PreStop("http", port=port, path=http.text("path", "/"))
    if fields.has("tcpSocket"):
        # k8s.io/api core/v1 LifecycleHandler: deprecated, "NOT supported as a
        # LifecycleHandler"; the hook fails at runtime.
        raise fields.error(
            "tcpSocket", "not supported as a preStop handler: use sleep, exec or httpGet"
        )
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


def read_resources(container: Fields) -> dict:
    """resources.requests and resources.limits, memory in bytes and cpu in cores; a request not
    set defaults to its limit, as the API server defaults it (pkg/apis/core/v1/defaults.go
    SetDefaults_Pod)."""
    resources = container.child("resources")
    limits, requests = resources.child("limits"), resources.child("requests")
    found = {}
    for kind, fields in (("limit", limits), ("request", requests)):
        found[f"memory_{kind}"] = fields.memory("memory") if fields.has("memory") else None
        found[f"cpu_{kind}"] = fields.cpu("cpu") if fields.has("cpu") else None
    for resource in ("memory", "cpu"):
        if found[f"{resource}_request"] is None:
            found[f"{resource}_request"] = found[f"{resource}_limit"]
    return found


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
    stop_signal = (
        lifecycle.text("stopSignal", "SIGTERM") if lifecycle.has("stopSignal") else "SIGTERM"
    )
    if stop_signal not in signal.Signals.__members__:
        raise lifecycle.error("stopSignal", f"{stop_signal!r} is not a signal name (e.g. SIGQUIT)")
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
        working_dir=container.text("workingDir") if container.has("workingDir") else None,
        **read_resources(container),
        readiness_gates=read_readiness_gates(pod),
        container_name=container.text("name"),
        stop_signal=stop_signal,
        **probes,
    )

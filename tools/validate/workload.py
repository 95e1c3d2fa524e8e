"""Read the values that decide how a rendered Deployment rolls out and shuts down."""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.quiescence import QUIET_HOOK_PATH
from app.settings import Settings, SettingsError

SERVING_PORT_NAME = "http"

PROBE_TIMING_FIELDS = (
    "initialDelaySeconds",
    "periodSeconds",
    "timeoutSeconds",
    "successThreshold",
    "failureThreshold",
)
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def pod_spec(deployment: dict) -> dict:
    return deployment.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(deployment: dict) -> dict:
    return deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}


def containers(deployment: dict) -> list[dict]:
    return pod_spec(deployment).get("containers") or []


def container_field(container: dict, field: str = "") -> str:
    path = f"spec.template.spec.containers[{container.get('name')}]"
    return f"{path}.{field}" if field else path


def serving_port(container: dict) -> dict | None:
    """The container port named "http", the one the Service and the probes use."""
    for port in container.get("ports") or []:
        if port.get("name") == SERVING_PORT_NAME:
            return port
    return None


def serving_container(deployment: dict) -> dict | None:
    return next((c for c in containers(deployment) if serving_port(c)), None)


def env_value(container: dict, name: str) -> str | None:
    for variable in container.get("env") or []:
        if variable.get("name") == name:
            return variable.get("value")
    return None


def literal_env(container: dict) -> dict[str, str]:
    """The env entries with a literal value, by name (a later entry wins, as in Kubernetes).

    Only these can be checked here: an entry with valueFrom gets its value from a ConfigMap, a
    Secret or a field of the pod when the kubelet starts the container, so it is left out.
    """
    environ = {}
    for variable in container.get("env") or []:
        if "valueFrom" in variable:
            continue
        value = variable.get("value", "")
        if isinstance(value, str):  # anything else is the strict schema validation's to report
            environ[variable.get("name")] = value
    return environ


def env_seconds(container: dict, name: str) -> float | None:
    try:
        return float(env_value(container, name))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class PreStopTiming:
    """How long the preStop hook delays SIGTERM: at least `floor` seconds whatever the traffic
    (the propagation allowance it guarantees), at most `ceiling` (what the grace period must
    cover). A sleep is both; the app's hook (app/quiescence.py) waits from PRESTOP_MIN_SECONDS
    until traffic has left the pod, up to PRESTOP_MAX_SECONDS."""

    floor: float
    ceiling: float
    quiet: float | None = None  # the app's hook: PRESTOP_QUIET_SECONDS

    def describe(self) -> str:
        if self.quiet is None:
            return f"{self.floor:g}s"
        return f"{self.floor:g}-{self.ceiling:g}s (until quiet for {self.quiet:g}s)"


def prestop_timing(container: dict) -> PreStopTiming | None:
    """The sleep action, an exec `sleep N`, or an httpGet of the app's /prestop (its settings
    from the container's literal env; check_settings reports invalid ones)."""
    prestop = container.get("lifecycle", {}).get("preStop") or {}
    if "sleep" in prestop:
        seconds = float(prestop["sleep"].get("seconds", 0))
        return PreStopTiming(seconds, seconds)
    command = prestop.get("exec", {}).get("command") or []
    if match := re.search(r"(?:^|[\s/])sleep\s+(\d+(?:\.\d+)?)$", " ".join(command)):
        seconds = float(match.group(1))
        return PreStopTiming(seconds, seconds)
    path = str(prestop.get("httpGet", {}).get("path", "")).split("?")[0]
    if path == QUIET_HOOK_PATH:
        try:
            return quiet_hook_timing(literal_env(container))
        except SettingsError:
            return None
    return None


def quiet_hook_timing(environ: Mapping[str, str]) -> PreStopTiming:
    """The app's /prestop hook's timing under the container's environment (SettingsError when
    a value is invalid)."""
    names = ("PRESTOP_MIN_SECONDS", "PRESTOP_QUIET_SECONDS", "PRESTOP_MAX_SECONDS")
    settings = Settings.from_env({name: environ[name] for name in names if name in environ})
    return PreStopTiming(
        settings.prestop_min_seconds, settings.prestop_max_seconds, settings.prestop_quiet_seconds
    )


def probe_port_matches(port, container_port: dict) -> bool:
    if isinstance(port, str):
        return port == container_port.get("name")
    return port == container_port.get("containerPort")


# Argo Rollouts: the Rollout's strategy, the Services it drives, the analyses it runs.
SERVICE_FIELDS = {
    "blueGreen": ("activeService", "previewService"),
    "canary": ("canaryService", "stableService"),
}


def rollout_strategy(rollout: dict) -> tuple[str | None, dict]:
    """("blueGreen" or "canary", its settings), or (None, {}) when neither is set."""
    strategy = rollout.get("spec", {}).get("strategy") or {}
    for name in SERVICE_FIELDS:
        if name in strategy:
            return name, strategy[name] or {}
    return None, {}


def rollout_services(rollout: dict) -> list[tuple[str, str]]:
    """(field, Service name) of every Service the Rollout's strategy names."""
    name, strategy = rollout_strategy(rollout)
    return [
        (f"spec.strategy.{name}.{field}", strategy[field])
        for field in SERVICE_FIELDS.get(name, ())
        if strategy.get(field)
    ]


def analysis_references(rollout: dict) -> list[tuple[str, dict]]:
    """(field, analysis) of every analysis the Rollout runs: blue-green's pre- and
    post-promotion analyses, the canary's background analysis and its analysis steps. Each
    analysis has `templates` (templateName, clusterScope) and `args`."""
    name, strategy = rollout_strategy(rollout)
    field = f"spec.strategy.{name}"
    found = [
        (f"{field}.{key}", strategy[key])
        for key in ("prePromotionAnalysis", "postPromotionAnalysis", "analysis")
        if isinstance(strategy.get(key), dict)
    ]
    for index, step in enumerate(strategy.get("steps") or []):
        if isinstance(step, dict) and isinstance(step.get("analysis"), dict):
            found.append((f"{field}.steps[{index}].analysis", step["analysis"]))
    return found

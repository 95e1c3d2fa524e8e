"""The pod template's contract: probes, settings, preStop and the grace period."""

from app.settings import Settings, SettingsError
from tools.validate.invariants.common import (
    READINESS_PATH,
    REQUIRED_ENV,
    SHUTDOWN_MARGIN_SECONDS,
    Problems,
    served_template,
)
from tools.validate.overlays import (
    Overlay,
)
from tools.validate.workload import (
    PROBE_TIMING_FIELDS,
    PROBES,
    container_field,
    env_seconds,
    env_value,
    literal_env,
    pod_spec,
    prestop_timing,
    probe_port_matches,
    serving_container,
    serving_port,
)


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
    timing = prestop_timing(container)
    if not timing or not timing.floor:
        yield overlay.problem(
            holder,
            container_field(container, "lifecycle.preStop"),
            "missing: a sleep, or the app's httpGet /prestop with PRESTOP_MIN_SECONDS > 0, must"
            " cover endpoint propagation before SIGTERM",
        )


def check_grace_period(overlay: Overlay) -> Problems:
    if not (served := served_template(overlay)):
        return
    holder, container = served
    timing = prestop_timing(container)
    prestop = timing.ceiling if timing else 0
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
            f"{grace:g} s does not cover preStop up to {prestop:g} s + DRAIN_SECONDS {drain:g} s"
            f" + GRACEFUL_TIMEOUT {graceful:g} s + {SHUTDOWN_MARGIN_SECONDS} s margin"
            f" = {needed:g} s",
        )

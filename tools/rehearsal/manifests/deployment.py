"""What owns the pods, as the rehearsal's controllers read it: a Deployment's (or a Rollout's)
replicas, surge, minReadySeconds, progress deadline and pod template."""

from dataclasses import dataclass

from tools import rollingupdate
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.fields import Fields
from tools.rehearsal.manifests.pod import PodTemplate, read_template


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

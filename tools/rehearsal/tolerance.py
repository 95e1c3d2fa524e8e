"""How late an endpoint change may reach a proxy before the rendered contract loses requests.

A pod being deleted keeps accepting new connections, and answering them, until gunicorn closes
its listeners: its preStop hook runs first (the process is not signalled yet), then SIGTERM
starts the drain (app/draining.py: the app keeps accepting, answers with "Connection: close"),
and only when DRAIN_SECONDS are over does the graceful stop close the listeners. A proxy that
still sends new connections to the pod after that gets them refused. So a view of the endpoints
may lag the deletion by up to preStop + DRAIN_SECONDS, and no longer than the grace period,
after which the kubelet kills the pod whatever it does.

`zdt demo` shows the figure true in the same harness: every view lagging UNDER seconds less
than it loses nothing, every view lagging PAST seconds more than it loses requests.
"""

from dataclasses import dataclass

from app.settings import Settings, SettingsError
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.pod import PodTemplate

UNDER = 1.0  # seconds below the tolerance for the run that must lose nothing
PAST = 1.0  # seconds above it for the run that must lose requests


@dataclass(frozen=True)
class Tolerance:
    pre_stop: float  # lifecycle.preStop.sleep.seconds (0 without a sleep hook)
    drain: float  # the container's DRAIN_SECONDS, or the app's default
    grace: float  # terminationGracePeriodSeconds

    @property
    def seconds(self) -> float:
        return min(self.pre_stop + self.drain, self.grace)

    def describe(self) -> str:
        parts = f"preStop {self.pre_stop:g} s + DRAIN_SECONDS {self.drain:g} s"
        if self.grace < self.pre_stop + self.drain:
            return f"terminationGracePeriodSeconds {self.grace:g} s (less than {parts})"
        return parts


def of(template: PodTemplate, source: str) -> Tolerance:
    pre_stop = template.pre_stop
    sleep = pre_stop.seconds if pre_stop is not None and pre_stop.action == "sleep" else 0.0
    environ = {var.name: var.value for var in template.env if not var.field_path}
    try:
        drain = Settings.from_env({"DRAIN_SECONDS": environ.get("DRAIN_SECONDS", "")})
    except SettingsError as error:
        raise RehearsalError(f"{source}: {error}") from None
    return Tolerance(sleep, drain.drain_seconds, template.termination_grace)

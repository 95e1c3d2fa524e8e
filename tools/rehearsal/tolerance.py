"""How late an endpoint change may reach a proxy before the rendered contract loses requests.

A pod being deleted keeps accepting new connections, and answering them, until gunicorn closes
its listeners: its preStop hook runs first (the process is not signalled yet), then SIGTERM
starts the drain (app/draining.py: the app keeps accepting, answers with "Connection: close"),
and only when DRAIN_SECONDS are over does the graceful stop close the listeners. A proxy that
still sends new connections to the pod after that gets them refused. So a view of the endpoints
may lag the deletion by up to preStop + DRAIN_SECONDS, and no longer than the grace period,
after which the kubelet kills the pod whatever it does.

The preStop is a sleep (as long whatever the traffic), or the app's hook (app/quiescence.py),
which waits while traffic still arrives: a view that keeps sending keeps the pod serving up to
PRESTOP_MAX_SECONDS; a view with nothing to send for PRESTOP_QUIET_SECONDS after
PRESTOP_MIN_SECONDS may find it gone. Both figures are stated.

`zdt demo` shows the figure true in the same harness: every view lagging UNDER seconds less
than it loses nothing, every view lagging PAST seconds more than it loses requests.
"""

from dataclasses import dataclass

from app.settings import Settings, SettingsError
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.pod import PodTemplate
from tools.validate.workload import QUIET_HOOK_PATH, PreStopTiming, quiet_hook_timing

UNDER = 1.0  # seconds below the tolerance for the run that must lose nothing
PAST = 1.0  # seconds above it for the run that must lose requests


@dataclass(frozen=True)
class Tolerance:
    pre_stop: PreStopTiming  # none: 0 s
    drain: float  # the container's DRAIN_SECONDS, or the app's default
    grace: float  # terminationGracePeriodSeconds

    @property
    def seconds(self) -> float:
        """The lag tolerated by a view that keeps sending the pod traffic."""
        return min(self.pre_stop.ceiling + self.drain, self.grace)

    @property
    def floor(self) -> float:
        """The lag tolerated whatever the traffic."""
        return min(self.pre_stop.floor + self.drain, self.grace)

    def describe(self) -> str:
        hook = self.pre_stop
        if hook.quiet is None:
            parts = f"preStop {hook.ceiling:g} s + DRAIN_SECONDS {self.drain:g} s"
        else:
            parts = (
                f"preStop /prestop up to PRESTOP_MAX_SECONDS {hook.ceiling:g} s while traffic"
                f" arrives (at least PRESTOP_MIN_SECONDS {hook.floor:g} s, then until quiet for"
                f" {hook.quiet:g} s) + DRAIN_SECONDS {self.drain:g} s"
            )
        if self.grace < hook.ceiling + self.drain:
            return f"terminationGracePeriodSeconds {self.grace:g} s (less than {parts})"
        return parts


def of(template: PodTemplate, source: str) -> Tolerance:
    environ = {var.name: var.value for var in template.env if not var.field_path}
    try:
        drain = Settings.from_env({"DRAIN_SECONDS": environ.get("DRAIN_SECONDS", "")})
        pre_stop = pre_stop_timing(template, environ)
    except SettingsError as error:
        raise RehearsalError(f"{source}: {error}") from None
    return Tolerance(pre_stop, drain.drain_seconds, template.termination_grace)


def pre_stop_timing(template: PodTemplate, environ: dict[str, str]) -> PreStopTiming:
    hook = template.pre_stop
    if hook is not None and hook.action == "sleep":
        return PreStopTiming(hook.seconds, hook.seconds)
    if hook is not None and hook.action == "http" and hook.path.split("?")[0] == QUIET_HOOK_PATH:
        return quiet_hook_timing(environ)
    return PreStopTiming(0.0, 0.0)

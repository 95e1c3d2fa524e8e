"""How the load's rate moves during a run (`--load-shape`), so that the HorizontalPodAutoscaler
has something to act on.

The rate a rehearsal is given (`--rate`, or `--load-fraction` of the capacity measured first) is
the shape's peak. A shape is the fraction of it sent before the release, the fraction after,
and how long the change takes from the moment the release is applied; the rehearsal sets the
load process's rate from it once a second. Client models that pace themselves (think times,
the `wget-loop` of the HPA walkthrough) send what they send whatever the shape.
"""

from dataclasses import dataclass

from tools.rehearsal.errors import RehearsalError

STEP_SECONDS = 1.0  # how often the rehearsal sets the rate along a ramp


@dataclass(frozen=True)
class LoadShape:
    name: str
    before: float  # fraction of the peak from the start of the load until the release
    after: float  # fraction of the peak once the change is over
    ramp_seconds: float = 0.0  # the change, linear, from the release on (0: a step)
    description: str = ""

    def fraction(self, since_release: float | None) -> float:
        """The fraction of the peak to send `since_release` seconds after the release (None:
        before it)."""
        if since_release is None or since_release < 0:
            return self.before
        if self.ramp_seconds <= 0 or since_release >= self.ramp_seconds:
            return self.after
        return self.before + (self.after - self.before) * since_release / self.ramp_seconds


CONSTANT = LoadShape("constant", 1.0, 1.0, description="the rate throughout")
STEP = LoadShape(
    "step", 0.4, 1.0, description="40 % of the rate until the release, then all of it at once"
)
RAMP = LoadShape(
    "ramp",
    0.2,
    1.0,
    ramp_seconds=60.0,
    description="20 % of the rate until the release, then rising to all of it over 60 s",
)
DROP = LoadShape(
    "drop", 1.0, 0.2, description="the rate until the release, then a fifth of it at once"
)
SHAPES = {shape.name: shape for shape in (CONSTANT, STEP, RAMP, DROP)}


def named(name: str) -> LoadShape:
    if name not in SHAPES:
        raise RehearsalError(f"--load-shape: no shape {name!r}: choose one of {', '.join(SHAPES)}")
    return SHAPES[name]

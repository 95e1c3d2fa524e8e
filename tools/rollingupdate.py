"""maxSurge and maxUnavailable (IntOrString) as Kubernetes resolves them, in one place.

A value is a non-negative integer or "N%". Percentages are of the replica count, maxSurge rounded
up and maxUnavailable down (intstr.GetScaledValueFromIntOrPercent); both set to zero is rejected
by validation, and if rounding makes both zero, maxUnavailable is 1
(deploymentutil.ResolveFenceposts). The manifest checks and the emulated Deployment controller
both use this module, so they cannot disagree.
"""

import math
import re
from dataclasses import dataclass

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
PERCENT = re.compile(r"(\d+)%")

IntOrPercent = int | str


class RollingUpdateError(ValueError):
    """An invalid maxSurge/maxUnavailable value or pair; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Fenceposts:
    max_surge: int
    max_unavailable: int

    def waves(self, replicas: int) -> int:
        """How many times the controller must wait for new pods to become available."""
        return math.ceil(replicas / (self.max_surge + self.max_unavailable))


def parse_int_or_percent(value: object, field: str) -> IntOrPercent:
    """Validate an IntOrString field: a non-negative integer or "N%"."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RollingUpdateError(field, f"expected an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise RollingUpdateError(field, f"must not be negative, got {value}")
        return value
    if not PERCENT.fullmatch(value):
        raise RollingUpdateError(
            field, f"expected an integer or a percentage like '25%', got {value!r}"
        )
    return value


def is_zero(value: IntOrPercent) -> bool:
    return value in (0, "0%")


def scaled(value: IntOrPercent, total: int, round_up: bool) -> int:
    """An integer as it is; a percentage of `total`, rounded up or down."""
    if isinstance(value, int):
        return value
    percent = int(value[:-1])
    return -(-percent * total // 100) if round_up else percent * total // 100


def validate(max_surge: IntOrPercent, max_unavailable: IntOrPercent, field: str) -> None:
    """What the API server rejects (field: the rollingUpdate path, for the message)."""
    if is_zero(max_surge) and is_zero(max_unavailable):
        raise RollingUpdateError(field, "maxSurge and maxUnavailable may not both be 0")
    if isinstance(max_unavailable, str) and int(max_unavailable[:-1]) > 100:
        raise RollingUpdateError(f"{field}.maxUnavailable", "must not be greater than 100%")


def resolve(max_surge: IntOrPercent, max_unavailable: IntOrPercent, replicas: int) -> Fenceposts:
    """The pods a rollout may add and take away at this replica count."""
    surge = scaled(max_surge, replicas, round_up=True)
    unavailable = scaled(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Fenceposts(surge, unavailable)

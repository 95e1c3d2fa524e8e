"""RollingUpdate arithmetic exactly as the Deployment controller does it.

maxSurge is rounded up and maxUnavailable down (intstr.GetScaledValueFromIntOrPercent); both
set to zero is rejected by validation, and if rounding makes both zero, maxUnavailable is 1
(deploymentutil.ResolveFenceposts).
"""

import math
import re
from dataclasses import dataclass

from tools.rehearsal.errors import RehearsalError

DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"
PERCENT = re.compile(r"(\d+)%")


@dataclass(frozen=True)
class Fenceposts:
    max_surge: int
    max_unavailable: int

    def waves(self, replicas: int) -> int:
        """How many times the controller must wait for new pods to become available."""
        return math.ceil(replicas / (self.max_surge + self.max_unavailable))


def parse_int_or_percent(value: object, field: str) -> int | str:
    """Validate an IntOrString field: a non-negative integer or "N%"."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RehearsalError(f"{field}: expected an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise RehearsalError(f"{field}: must not be negative, got {value}")
        return value
    if not PERCENT.fullmatch(value):
        raise RehearsalError(
            f"{field}: expected an integer or a percentage like '25%', got {value!r}"
        )
    return value


def is_zero(value: int | str) -> bool:
    return value in (0, "0%")


def scaled(value: int | str, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    percent = int(value[:-1])
    return -(-percent * total // 100) if round_up else percent * total // 100


def validate(max_surge: int | str, max_unavailable: int | str, field: str) -> None:
    if is_zero(max_surge) and is_zero(max_unavailable):
        raise RehearsalError(f"{field}: maxSurge and maxUnavailable may not both be 0")
    if isinstance(max_unavailable, str) and int(max_unavailable[:-1]) > 100:
        raise RehearsalError(f"{field}.maxUnavailable: must not be greater than 100%")


def resolve(max_surge: int | str, max_unavailable: int | str, replicas: int) -> Fenceposts:
    surge = scaled(max_surge, replicas, round_up=True)
    unavailable = scaled(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Fenceposts(surge, unavailable)

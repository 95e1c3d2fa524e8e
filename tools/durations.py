"""Argo Rollouts durations (a pause's `duration`): seconds as an integer, or "30s", "5m", "1h"
(argo-rollouts pkg/apis/rollouts/v1alpha1 DurationString)."""

import re

UNITS = {"s": 1, "m": 60, "h": 3600}


def seconds(value: object) -> float:
    """The duration in seconds; ValueError when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = re.fullmatch(r"(\d+)([smh])", str(value))
    if not match:
        raise ValueError(f"not a duration like 30s, 5m or 1h: {value!r}")
    return float(match[1]) * UNITS[match[2]]

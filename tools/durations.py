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


# Gateway API durations (GEP-2257, the pattern of HTTPRoute timeouts): one to four parts of up
# to five digits, each with its unit, e.g. "30s", "1m30s", "500ms".
GATEWAY_UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
GATEWAY_PART = re.compile(r"([0-9]{1,5})(h|ms|m|s)")


def gateway_seconds(value: object) -> float:
    """A Gateway API duration in seconds; ValueError when it is not one."""
    text = str(value) if isinstance(value, str) else ""
    parts = GATEWAY_PART.findall(text)
    if not re.fullmatch(r"([0-9]{1,5}(h|m|s|ms)){1,4}", text) or len(parts) > 4:
        raise ValueError(f"not a Gateway API duration like 30s, 1m30s or 500ms: {value!r}")
    return sum(float(number) * GATEWAY_UNITS[unit] for number, unit in parts)

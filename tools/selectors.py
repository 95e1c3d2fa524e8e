"""Label selectors: which labels a selector selects, in one place.

A LabelSelector (Deployment, PodDisruptionBudget, HorizontalPodAutoscaler targets) has
matchLabels and matchExpressions; a Service's selector is a plain map, the same as matchLabels.
A missing or empty selector selects nothing here: every selector this repository writes names
its pods, and one that does not is a mistake to report, not a wildcard.
"""

from collections.abc import Mapping


def selects(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects these labels."""
    if not selector:
        return False
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        matched = {
            "In": key in labels and labels[key] in (values or ()),
            "NotIn": key not in labels or labels[key] not in (values or ()),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def service_selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Service's selector (a plain map of labels) selects these labels."""
    return selects({"matchLabels": selector} if selector else None, labels)

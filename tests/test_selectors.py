"""Label selectors, shared by the manifest checks and the rehearsal's Service."""

import pytest

from tools.selectors import selects, service_selects

LABELS = {"app.kubernetes.io/name": "zero-downtime-app", "tier": "web"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"app.kubernetes.io/name": "zero-downtime-app"}}, True),
        ({"matchLabels": {"app.kubernetes.io/name": "other"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        (
            {
                "matchLabels": {"tier": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}],
            },
            False,
        ),
        ({}, False),
        (None, False),
    ],
)
def test_label_selector(selector, expected):
    assert selects(selector, LABELS) is expected


def test_a_service_selector_is_a_plain_map():
    assert service_selects({"tier": "web"}, LABELS)
    assert not service_selects({"tier": "db"}, LABELS)
    assert not service_selects({}, LABELS)
    assert not service_selects(None, LABELS)

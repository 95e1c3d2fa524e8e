"""maxSurge/maxUnavailable arithmetic, shared by the manifest checks and the emulated controller."""

import pytest

from tools import rollingupdate


@pytest.mark.parametrize(
    ("value", "replicas", "round_up", "expected"),
    [(1, 3, True, 1), ("25%", 3, True, 1), ("25%", 3, False, 0), ("25%", 4, False, 1)],
)
def test_rolling_update_percentages_round_like_kubernetes(value, replicas, round_up, expected):
    assert rollingupdate.scaled(value, replicas, round_up) == expected


@pytest.mark.parametrize(
    ("replicas", "max_surge", "max_unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailable down
        (3, "25%", "25%", (1, 0)),
        (1, "25%", "25%", (1, 0)),
        (4, "10%", "10%", (1, 0)),
        (3, 1, 0, (1, 0)),
        (5, "50%", "50%", (3, 2)),
        (10, "0%", "5%", (0, 1)),  # both round to 0: maxUnavailable becomes 1
        (7, 2, "100%", (2, 7)),
        (3, "200%", 0, (6, 0)),
    ],
)
def test_strategy_rounding_matches_kubernetes(replicas, max_surge, max_unavailable, expected):
    assert rollingupdate.resolve(max_surge, max_unavailable, replicas) == rollingupdate.Fenceposts(
        *expected
    )


@pytest.mark.parametrize(
    ("max_surge", "max_unavailable", "message"),
    [
        (0, 0, "may not both be 0"),
        ("0%", 0, "may not both be 0"),
        (1, "101%", "greater than 100%"),
    ],
)
def test_strategy_validation_rejects_what_kubernetes_rejects(max_surge, max_unavailable, message):
    with pytest.raises(rollingupdate.RollingUpdateError, match=message):
        rollingupdate.validate(max_surge, max_unavailable, "spec.rollingupdate.rollingUpdate")


@pytest.mark.parametrize("value", [-1, "abc", "25", "1.5%", True, 1.5])
def test_strategy_values_must_be_integers_or_percentages(value):
    with pytest.raises(rollingupdate.RollingUpdateError, match="maxSurge"):
        rollingupdate.parse_int_or_percent(value, "spec.rollingupdate.rollingUpdate.maxSurge")


def test_waves():
    assert rollingupdate.Fenceposts(1, 0).waves(3) == 3
    assert rollingupdate.Fenceposts(1, 1).waves(3) == 2
    assert rollingupdate.Fenceposts(3, 2).waves(10) == 2

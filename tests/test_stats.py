"""The soak's statistics: upper bounds that say how small a loss "0 failed" shows."""

import math

import pytest

from tools.bench.stats import binomial_cdf, upper_bound


def test_zero_failures_bound_is_about_three_over_n():
    assert upper_bound(0, 1_000_000) == pytest.approx(3e-6, rel=0.01)
    assert upper_bound(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))


@pytest.mark.parametrize(
    ("failures", "trials", "expected"),
    # Clopper-Pearson one-sided 95 % upper limits, as statistical tables give them.
    [(1, 100, 0.0466), (2, 100, 0.0616), (5, 1000, 0.0105), (1, 10, 0.3942)],
)
def test_bound_matches_the_exact_binomial_limits(failures, trials, expected):
    assert upper_bound(failures, trials) == pytest.approx(expected, abs=1e-4)


def test_the_bound_is_where_seeing_so_few_failures_becomes_unlikely():
    bound = upper_bound(3, 2_000_000)
    assert binomial_cdf(3, 2_000_000, bound) == pytest.approx(0.05, abs=1e-6)
    assert bound > 3 / 2_000_000


def test_edge_cases():
    assert upper_bound(0, 0) == 1.0
    assert upper_bound(7, 7) == 1.0
    assert binomial_cdf(0, 10, 0.0) == 1.0
    assert math.isclose(binomial_cdf(10, 10, 0.3), 1.0)

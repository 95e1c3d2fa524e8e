"""How small a loss "0 failed" shows: exact (Clopper-Pearson) upper confidence bounds."""

import math


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in logs so that large n stays exact enough."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        total += math.exp(log_term)
    return min(1.0, total)


def upper_bound(failures: int, trials: int, confidence: float = 0.95) -> float:
    """The one-sided upper confidence bound on a probability seen `failures` times in
    `trials`: the largest p under which so few failures still had a 1 - confidence chance."""
    if trials <= 0:
        return 1.0
    if failures >= trials:
        return 1.0
    alpha = 1 - confidence
    if failures == 0:
        return 1 - alpha ** (1 / trials)  # closed form; about 3/n at 95 %
    low, high = failures / trials, 1.0
    for _ in range(200):  # bisection: binomial_cdf falls as p grows
        middle = (low + high) / 2
        if binomial_cdf(failures, trials, middle) > alpha:
            low = middle
        else:
            high = middle
    return high

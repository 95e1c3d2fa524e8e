"""How late an EndpointSlice update reaches one node's proxy rules.

Upstream this is kube-proxy's network programming latency: the histogram
`kubeproxy_network_programming_duration_seconds` (kubernetes pkg/proxy/metrics/metrics.go),
from a pod's change (the EndpointSlice's `endpoints.kubernetes.io/last-change-trigger-time`) to
the rules synced on the node. SIG Scalability's SLO for it is p99 <= 30 s per cluster-day
(kubernetes/community sig-scalability/slos/network_programming_latency.md). On one node it is
the EndpointSlice watch, then the wait for the iptables proxier's next sync (pkg/proxy/iptables/
proxier.go: `syncRunner`, an `async.BoundedFrequencyRunner` that runs `syncProxyRules` at most
once per `--iptables-min-sync-period`, 1 s by default), then the sync itself
(`kubeproxy_sync_proxy_rules_duration_seconds`: milliseconds on a small node, seconds with tens of
thousands of rules or a CPU-starved kube-proxy). Each node has its own, and the worst one is what
loses requests.

Three models, one drawn per update and per view, each a model and labelled as one:
- `UniformLag`: delay +- jitter (uniform), the rehearsal's original model; jitter 0 is "every
  view lags exactly `delay`", so runs compare with earlier ones.
- `HeavyTailedLag`: log-normal fitted to a p50 and a p99, clipped at a max.
- `KubeProxyLag`, the default: the watch, the wait for the proxier's next sync (none when it
  has been idle for a min-sync period, up to one period when it synced just before), the sync
  itself, and, for a share of updates, the wait behind a slow full sync of a large cluster, whose
  tail reaches past every allowance in base/ (KEP-3453, "Minimizing iptables-restore input size",
  motivates itself with full syncs of many seconds in large clusters; the SLO above allows 30 s at
  p99). It is capped at two minutes, far past the tolerance it tests.
"""

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol

# `--lag-p50/--lag-p99/--lag-max` given in part: the others default to these (a small busy
# cluster: half the 1 s min-sync-period at the median, a slow sync of a few seconds at p99).
LAG_P50, LAG_P99, LAG_MAX = 0.5, 3.0, 5.0

Z_99 = NormalDist().inv_cdf(0.99)


class Lag(Protocol):
    def sample(self, rng: random.Random) -> float:
        """One update's lag, in seconds."""
        ...

    @property
    def bound(self) -> float:
        """The longest lag this model ever draws."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class UniformLag:
    delay: float
    jitter: float = 0.0

    def sample(self, rng: random.Random) -> float:
        return max(0.0, self.delay + rng.uniform(-self.jitter, self.jitter))

    @property
    def bound(self) -> float:
        return self.delay + self.jitter

    def describe(self) -> str:
        if self.jitter == 0:
            return f"exactly {self.delay:g}s"
        return f"{self.delay:g}s +- {self.jitter:g}s (uniform)"


@dataclass(frozen=True)
class HeavyTailedLag:
    p50: float = LAG_P50
    p99: float = LAG_P99
    max: float = LAG_MAX

    def __post_init__(self) -> None:
        if not 0 < self.p50 <= self.p99 <= self.max:
            raise ValueError("lag: needs 0 < p50 <= p99 <= max")

    @property
    def sigma(self) -> float:
        return math.log(self.p99 / self.p50) / Z_99

    def sample(self, rng: random.Random) -> float:
        return min(self.max, rng.lognormvariate(math.log(self.p50), self.sigma))

    @property
    def bound(self) -> float:
        return self.max

    def describe(self) -> str:
        return f"log-normal p50 {self.p50:g}s, p99 {self.p99:g}s, max {self.max:g}s"


@dataclass(frozen=True)
class KubeProxyLag:
    """A model of one node's network programming latency (labelled a model: no upstream
    publishes this distribution). Its parts, in seconds:
    - the EndpointSlice watch: exponential, `watch` at the mean, at most 1 s;
    - the wait for the proxier's next sync (pkg/proxy/iptables/proxier.go and nftables/
      proxier.go: `async.BoundedFrequencyRunner` with `--iptables-min-sync-period`, 1 s by
      default): a runner idle for a period syncs at once; one that synced just before waits for
      the rest of the period, uniform; `busy` is the share of updates that find it busy;
    - the sync (`kubeproxy_sync_proxy_rules_duration_seconds`): `sync`, small on a small node;
    - in a large cluster under churn, a share `tail_share` of updates waits behind a slow full
      sync: `tail`, whose p99 is past the 30 s that SIG Scalability's SLO allows at p99.
    """

    watch: float = 0.05
    min_sync: float = 1.0
    busy: float = 0.5
    sync: HeavyTailedLag = HeavyTailedLag(p50=0.05, p99=0.5, max=2.0)
    tail_share: float = 0.05
    tail: HeavyTailedLag = HeavyTailedLag(p50=6.0, p99=45.0, max=120.0)

    def sample(self, rng: random.Random) -> float:
        lag = min(1.0, rng.expovariate(1 / self.watch))
        if rng.random() < self.busy:
            lag += rng.uniform(0, self.min_sync)
        lag += self.sync.sample(rng)
        if rng.random() < self.tail_share:
            lag += self.tail.sample(rng)
        return lag

    @property
    def bound(self) -> float:
        return 1.0 + self.min_sync + self.sync.max + self.tail.max

    def describe(self) -> str:
        return (
            f"kube-proxy model: min-sync {self.min_sync:g}s (busy {self.busy:.0%}), sync"
            f" p50 {self.sync.p50:g}s p99 {self.sync.p99:g}s, {self.tail_share:.0%} behind a"
            f" large cluster's full sync ({self.tail.describe()})"
        )


KUBE_PROXY_LAG = KubeProxyLag()

# Behind an ALB: from a target's deregistration to the last ALB node that stops sending it new
# requests. AWS publishes no figure, so this is a model of users' reports against the AWS Load
# Balancer Controller: rare 502s with a preStop of 40 s and none at 70 s (#2106), deregistration
# taking two minutes and more (#2366, #3270): p50 8 s, p99 45 s, capped at three minutes. Its
# tail passes the 30 s allowance the aws-alb component used to rely on (docs/exposure.md).
ALB_LAG = HeavyTailedLag(p50=8.0, p99=45.0, max=180.0)


def share_within(lag: Lag, seconds: float, draws: int = 200_000, seed: int = 1) -> float:
    """The model's CDF at `seconds` (the quantile of lag a contract of `seconds` reaches),
    estimated from `draws` draws."""
    rng = random.Random(seed)
    return sum(lag.sample(rng) <= seconds for _ in range(draws)) / draws


# The AWS Load Balancer Controller reconciles a TargetGroupBinding again this long after one
# that left a pod's readiness gate False (--targetgroupbinding-requeue-duration, 15 s by
# default at v3.5.0, pkg/config/controller_config.go).
TGB_REQUEUE = 15.0

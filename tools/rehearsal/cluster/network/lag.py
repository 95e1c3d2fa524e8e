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

Two models, one drawn per update and per view:
- `UniformLag`: delay +- jitter (uniform), the rehearsal's original model; jitter 0 is "every
  view lags exactly `delay`", so runs compare with earlier ones.
- `HeavyTailedLag`: log-normal fitted to a p50 and a p99, clipped at a max: most updates wait
  for about half the min-sync-period, a few for a slow sync.
"""

import math
import random
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol

# The hostile default: half the 1 s min-sync-period at the median, a slow sync of a few seconds
# at p99, and never more than the repository's 5 s propagation allowance (the preStop sleep):
# well under what the contract tolerates (preStop 5 s + DRAIN_SECONDS 5 s), far under the 30 s
# p99 that the upstream SLO allows a 5000-node cluster.
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


# Behind an ALB: from a target's deregistration to the last ALB node that stops sending it new
# requests. AWS publishes no figure; users of the AWS Load Balancer Controller report several
# seconds to tens of seconds (kubernetes-sigs/aws-load-balancer-controller#3270 among others).
# Emulated: a median of 5 s, 20 s at p99, never more than 25 s, within the 30 s allowance the
# aws-alb component's preStop is derived from (docs/exposure.md).
ALB_LAG = HeavyTailedLag(p50=5.0, p99=20.0, max=25.0)

# The AWS Load Balancer Controller reconciles a TargetGroupBinding again this long after one
# that left a pod's readiness gate False (--targetgroupbinding-requeue-duration, 15 s by
# default at v3.5.0, pkg/config/controller_config.go).
TGB_REQUEUE = 15.0

"""How a rehearsal runs: its load, its timing, its faults (`zdt rehearse` options)."""

from dataclasses import dataclass, field
from pathlib import Path

from tools.rehearsal.cluster.faults import Faults
from tools.rehearsal.cluster.network.lag import (
    ALB_LAG,
    KUBE_PROXY_LAG,
    LAG_MAX,
    LAG_P50,
    LAG_P99,
    TGB_REQUEUE,
    HeavyTailedLag,
    Lag,
    UniformLag,
)
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.traffic import profiles, shapes
from tools.repo import ROOT

# The EndpointSlice controller's batching period: upstream's default, 0
# (kube-controller-manager --endpointslice-updates-batch-period). Large clusters raise it to cut
# EndpointSlice churn, at the cost of "higher endpoint programming latency" (`--endpoint-batch`).
ENDPOINT_BATCH = 0.0


@dataclass(frozen=True)
class FrozenView:
    """A node's kube-proxy restarting (`--freeze-view NODE:START:SECONDS`): its views apply
    nothing from START s after the rollout starts, for SECONDS, then catch up in order."""

    node: int
    start: float
    seconds: float


@dataclass(frozen=True)
class SlowView:
    """A node whose kube-proxy lags exactly `seconds` behind every change
    (`--slow-view NODE:SECONDS`): a starved kube-proxy, or a lag past the contract's margin."""

    node: int
    seconds: float


@dataclass
class Options:
    nodes: int = 3  # each with its own kube-proxy: a view and a proxy of every Service
    # Given: every view lags propagation_delay +- propagation_jitter (uniform); else any of
    # lag_p50, lag_p99, lag_max given: log-normal (the others at LAG_*); else the kube-proxy
    # model (network/lag.py KUBE_PROXY_LAG).
    propagation_delay: float | None = None
    propagation_jitter: float = 0.25
    lag_p50: float | None = None
    lag_p99: float | None = None
    lag_max: float | None = None
    endpoint_batch: float | None = None  # None: ENDPOINT_BATCH
    frozen_views: tuple[FrozenView, ...] = ()
    slow_views: tuple[SlowView, ...] = ()
    # Behind an ALB (an exposure component): how late a deregistration reaches the ALB's nodes.
    # None: heavy-tailed (edge/targetgroup.py ALB_LAG); given: exactly this.
    alb_lag_delay: float | None = None
    # The load balancer controller's --targetgroupbinding-requeue-duration.
    tgb_requeue: float = TGB_REQUEUE
    rate: float | None = None  # requests/s; None: a fraction of the capacity measured first
    load_fraction: float = 0.5
    capacity_seconds: float = 3.0
    steady_seconds: float = 2.0
    tail_seconds: float = 1.0  # load on the final state before stopping
    # Load kept at least this long after the release, whatever the rollout does: the time the
    # HPA gets to act (a run without a rollout needs it).
    hold_seconds: float = 0.0
    load_shape: str = shapes.CONSTANT.name  # traffic/shapes.py
    # The starting state's replicas, as an HPA may have left them (None: the manifest's).
    start_replicas: int | None = None
    # The HorizontalPodAutoscaler runs when the render has one, unless pinned.
    pin_replicas: bool = False
    # metrics-server --metric-resolution; kube-controller-manager
    # --horizontal-pod-autoscaler-sync-period (upstream's defaults, both 15 s).
    metric_resolution: float = 15.0
    hpa_sync_period: float = 15.0
    # Clients per model (traffic/profiles.py, `--traffic`); the two below override the wget
    # and the paced keep-alive clients (`--clients`, `--keepalive-clients`).
    traffic: dict[str, int] = field(default_factory=lambda: dict(profiles.HOSTILE))
    fresh_clients: int | None = None
    keepalive_clients: int | None = None
    request_timeout: float = 5.0
    wait_for_exit: bool = False  # False: stop once old pods can no longer receive requests
    time_limit: float = 300.0
    pod_network: str = "127.0.0.0/24"  # the loopback network's
    network: str = "auto"  # namespaces, loopback, or auto: namespaces where possible
    path: str = "/status"  # what the load requests
    expect_status: int = 200  # and the answer that counts as ok
    out_dir: Path = ROOT / "out"
    name: str = "rehearsal"
    seed: int | None = None
    progress: bool = True
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        # Any of --lag-p50/--lag-p99/--lag-max given: the others take their LAG_* defaults.
        if (self.lag_p50, self.lag_p99, self.lag_max) != (None, None, None):
            self.lag_p50 = LAG_P50 if self.lag_p50 is None else self.lag_p50
            self.lag_p99 = LAG_P99 if self.lag_p99 is None else self.lag_p99
            self.lag_max = LAG_MAX if self.lag_max is None else self.lag_max

    def validate(self) -> None:
        delay = self.propagation_delay
        checks = {
            "--nodes": 1 <= self.nodes <= 16,
            "--propagation-delay": delay is None or 0 <= delay <= 600,
            "--propagation-jitter": delay is None or 0 <= self.propagation_jitter <= delay,
            "--lag-p50, --lag-p99, --lag-max (need p50 <= p99 <= max)": (
                not self.lag_given() or 0 < self.lag_p50 <= self.lag_p99 <= self.lag_max <= 600
            ),
            "--endpoint-batch": self.endpoint_batch is None or 0 <= self.endpoint_batch <= 60,
            "--alb-lag": self.alb_lag_delay is None or 0 <= self.alb_lag_delay <= 600,
            "--tgb-requeue": 0.1 <= self.tgb_requeue <= 600,
            "--freeze-view": all(
                0 <= f.node < self.nodes and f.start >= 0 and 0 < f.seconds <= 600
                for f in self.frozen_views
            ),
            "--slow-view": all(
                0 <= s.node < self.nodes and 0 <= s.seconds <= 600 for s in self.slow_views
            ),
            "--rate": self.rate is None or 0 < self.rate <= 20_000,
            "--load-fraction": 0 < self.load_fraction <= 1.5,
            "--capacity-seconds": 0.5 <= self.capacity_seconds <= 60,
            "--steady-seconds": 0 <= self.steady_seconds <= 600,
            "--clients": self.fresh_clients is None or 0 <= self.fresh_clients <= 256,
            "--keepalive-clients": self.keepalive_clients is None
            or 0 <= self.keepalive_clients <= 256,
            "--time-limit": 1 <= self.time_limit <= 3600,
            "--path (must start with /, no spaces)": self.path.startswith("/")
            and not any(c.isspace() for c in self.path),
            "--expect-status": 100 <= self.expect_status <= 599,
            "--hold": 0 <= self.hold_seconds <= 3600,
            "--replicas": self.start_replicas is None or 1 <= self.start_replicas <= 64,
            # metrics-server refuses less than 10 s (and less than its request timeout / 0.9).
            "--metric-resolution": 10 / 0.9 <= self.metric_resolution <= 600,
            "--hpa-sync-period": 1 <= self.hpa_sync_period <= 600,
        }
        for option, ok in checks.items():
            if not ok:
                raise RehearsalError(f"{option}: value out of range")
        self.faults.validate()
        profiles.check_mix(self.clients)
        shapes.named(self.load_shape)

    @property
    def shape(self) -> shapes.LoadShape:
        return shapes.named(self.load_shape)

    @property
    def clients(self) -> dict[str, int]:
        """Clients per model: the traffic mix with --clients and --keepalive-clients applied."""
        overrides = {
            profiles.WGET.name: self.fresh_clients,
            profiles.KEEP_ALIVE.name: self.keepalive_clients,
        }
        given = {name: count for name, count in overrides.items() if count is not None}
        return {**self.traffic, **given}

    @property
    def lag(self) -> Lag:
        """How late each update reaches a view (but a slow view's)."""
        if self.propagation_delay is not None:
            return UniformLag(self.propagation_delay, self.propagation_jitter)
        if self.lag_given():
            return HeavyTailedLag(self.lag_p50, self.lag_p99, self.lag_max)
        return KUBE_PROXY_LAG

    def lag_given(self) -> bool:
        return self.lag_p50 is not None

    @property
    def alb_lag(self) -> Lag:
        if self.alb_lag_delay is not None:
            return UniformLag(self.alb_lag_delay)
        return ALB_LAG

    def node_lags(self) -> list[Lag]:
        slow = {view.node: UniformLag(view.seconds) for view in self.slow_views}
        return [slow.get(node, self.lag) for node in range(self.nodes)]

    @property
    def batch_period(self) -> float:
        return ENDPOINT_BATCH if self.endpoint_batch is None else self.endpoint_batch

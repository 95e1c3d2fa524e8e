"""How a rehearsal runs: its load, its timing, its faults (`zdt rehearse` options)."""

from dataclasses import dataclass, field
from pathlib import Path

from tools.rehearsal.cluster.faults import Faults
from tools.rehearsal.errors import RehearsalError
from tools.repo import ROOT


@dataclass
class Options:
    propagation_delay: float = 1.0  # endpoint change -> kube-proxy, seconds
    propagation_jitter: float = 0.25  # +- uniformly
    rate: float | None = None  # requests/s; None: a fraction of the capacity measured first
    load_fraction: float = 0.5
    capacity_seconds: float = 3.0
    steady_seconds: float = 2.0
    tail_seconds: float = 1.0  # load on the final state before stopping
    fresh_clients: int = 8
    keepalive_clients: int = 8
    request_timeout: float = 5.0
    wait_for_exit: bool = False  # False: stop once old pods can no longer receive requests
    time_limit: float = 300.0
    pod_network: str = "127.0.0.0/24"
    out_dir: Path = ROOT / "out"
    name: str = "rehearsal"
    seed: int | None = None
    progress: bool = True
    faults: Faults = field(default_factory=Faults)

    def validate(self) -> None:
        checks = {
            "--propagation-delay": self.propagation_delay >= 0,
            "--propagation-jitter": 0 <= self.propagation_jitter <= self.propagation_delay,
            "--rate": self.rate is None or 0 < self.rate <= 20_000,
            "--load-fraction": 0 < self.load_fraction <= 1.5,
            "--capacity-seconds": 0.5 <= self.capacity_seconds <= 60,
            "--steady-seconds": 0 <= self.steady_seconds <= 600,
            "--clients": 0 <= self.fresh_clients <= 256 and 0 <= self.keepalive_clients <= 256,
            "--time-limit": 1 <= self.time_limit <= 3600,
        }
        checks["--clients"] = (
            checks["--clients"] and self.fresh_clients + self.keepalive_clients > 0
        )
        for option, ok in checks.items():
            if not ok:
                raise RehearsalError(f"{option}: value out of range")
        self.faults.validate()

"""Ours with every node's view of the Service lagging just past what the hook tolerates when
capped, and the same lag as shipped (tools/rehearsal/tolerance.py).

The shipped hook (app/quiescence.py) keeps a pod serving while traffic still arrives, up to
PRESTOP_MAX_SECONDS: its tolerance, 95 s, would take the demo over a minute per run. So the
check that can fail runs on a variant that differs only in that number, PRESTOP_MAX_SECONDS at
BOUNDARY_MAX, the same as the fixed 5 s preStop before the hook: 1 s past its tolerance it loses
requests, and ours as shipped, at the same lag, loses nothing. tests/test_network_rehearsal.py
also runs a capped hook just under its tolerance.
"""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal import tolerance
from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.network.lag import share_within
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.manifests.workload import Workload
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.repo import ROOT

# PRESTOP_MAX_SECONDS of the variant: the base's PRESTOP_MIN_SECONDS, so that the hook waits
# exactly as long as the fixed 5 s preStop before it; a tolerance of 10 s fits the demo.
BOUNDARY_MAX = 5


@dataclass
class LagCheck:
    """Ours with every view of the Service lagging `lag` seconds behind each endpoint change,
    as shipped or with the hook's maximum at `prestop_max`."""

    label: str
    lag: float
    within: bool  # under the tolerance of what runs
    prestop_max: int | None = None  # the variant's PRESTOP_MAX_SECONDS; None: as shipped
    result: Result | None = None

    def verdict(self) -> tuple[str, bool]:
        r = self.result
        failed, total = len(r.failed), len(r.records)
        text = f"{total} requests, {failed} failed"
        return text, r.ok if self.within else failed > 0


def boundary_variant(overlay: str, directory: Path) -> Workload:
    """`overlay` with the hook's maximum at BOUNDARY_MAX."""
    path = ROOT / overlay
    ops = variants.env(variants.deployment(path), {"PRESTOP_MAX_SECONDS": str(BOUNDARY_MAX)})
    written = variants.write(path, ops, directory / f"boundary-{Path(overlay).name}")
    return load_overlay(written, f"{overlay} (PRESTOP_MAX_SECONDS {BOUNDARY_MAX})")


def lag_checks(boundary: tolerance.Tolerance) -> list[LagCheck]:
    past = boundary.seconds + tolerance.PAST
    return [
        LagCheck(
            f"hook capped at {BOUNDARY_MAX} s, every view {past:g} s late",
            past,
            False,
            BOUNDARY_MAX,
        ),
        LagCheck(f"as shipped, every view {past:g} s late", past, True),
    ]


def tolerance_text(
    found: tolerance.Tolerance, boundary: tolerance.Tolerance, ours: Result, checks: list
) -> str:
    lag = ours.options.lag
    within = share_within(lag, found.seconds)
    lines = [
        f"  this contract tolerates {found.seconds:g} s of endpoint lag while traffic arrives,"
        f" {found.floor:g} s with none",
        f"    set by {found.describe()} (base/deployment.yaml)",
        f"    the world's lag ({lag.describe()}) passes it after its p{100 * within:.3f}",
        f"  the same hook capped at PRESTOP_MAX_SECONDS {BOUNDARY_MAX} (the fixed 5 s preStop it"
        f" replaced) tolerates {boundary.seconds:g} s; 1 s past it, capped and as shipped:",
    ]
    for check in checks:
        text, expected = check.verdict()
        must = "must lose nothing" if check.within else "must lose requests"
        lines.append(f"    {check.label:<40} {text}  ({must}){'' if expected else '  UNEXPECTED'}")
    return "\n".join(lines)


def lag_plans(
    checks: list[LagCheck], rate: float, traffic: dict[str, int], out: Path, directory: Path
) -> list[Plan]:
    plans = []
    for index, check in enumerate(checks):
        options = Options(
            name=f"lag-{index + 1}",
            out_dir=out,
            rate=rate,
            propagation_delay=check.lag,
            propagation_jitter=0.0,
            traffic=traffic,
            steady_seconds=1.0,
            tail_seconds=0.5,
            progress=False,
        )
        if check.prestop_max is None:
            source = load_overlay(ROOT / "overlays/v1", "overlays/v1")
            target = load_overlay(ROOT / "overlays/v2", "overlays/v2")
        else:
            source = boundary_variant("overlays/v1", directory)
            target = boundary_variant("overlays/v2", directory)
        plans.append(Plan(source, target, ProcessRuntime("app"), options))
    return plans

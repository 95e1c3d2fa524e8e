"""Ours with every node's view of the Service lagging just under, and just past, the endpoint
lag the contract tolerates (tools/rehearsal/tolerance.py): the first loses nothing, the second
loses requests."""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal import tolerance
from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.repo import ROOT


@dataclass
class LagCheck:
    """Ours with every view of the Service lagging `lag` seconds behind each endpoint change:
    just under the contract's tolerance it must lose nothing, just past it it must lose."""

    label: str
    lag: float
    within: bool  # under the tolerance
    result: Result | None = None

    def verdict(self) -> tuple[str, bool]:
        r = self.result
        failed, total = len(r.failed), len(r.records)
        text = f"{total} requests, {failed} failed"
        return text, r.ok if self.within else failed > 0


def tolerance_text(found: tolerance.Tolerance, ours: Result, checks: list[LagCheck]) -> str:
    lines = [
        f"  this contract tolerates {found.seconds:g} s of endpoint lag"
        f" (assumed: {ours.options.assumed_lag:g} s)",
        f"    set by {found.describe()} (base/deployment.yaml)",
    ]
    for check in checks:
        text, expected = check.verdict()
        must = "must lose nothing" if check.within else "must lose requests"
        lines.append(f"    {check.label:<24} {text}  ({must}){'' if expected else '  UNEXPECTED'}")
    return "\n".join(lines)


def lag_checks(found: tolerance.Tolerance) -> list[LagCheck]:
    under, past = found.seconds - tolerance.UNDER, found.seconds + tolerance.PAST
    return [
        LagCheck(f"every view {under:g} s late", under, within=True),
        LagCheck(f"every view {past:g} s late", past, within=False),
    ]


def lag_plans(
    checks: list[LagCheck], rate: float, traffic: dict[str, int], out: Path
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
        source = load_overlay(ROOT / "overlays/v1", "overlays/v1")
        target = load_overlay(ROOT / "overlays/v2", "overlays/v2")
        plans.append(Plan(source, target, ProcessRuntime("app"), options))
    return plans

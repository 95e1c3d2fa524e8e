"""The path from outside in the demo: v1 -> v2 with components/gateway-api and aws-alb, through a
real proxy (HAProxy, answering as an ALB does) in front of an emulated ALB target group, with
ours' timings and with the base's default ones."""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.edge.proxy import LATE
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.rehearsal.traffic import profiles
from tools.repo import ROOT

# The path from outside: the ALB's nodes learn of every deregistration this late in both runs
# (past the 10 s the base's timings tolerate, under the 35 s of ours); requests/s of each.
DEMO_ALB_LAG = 15.0
EXPOSURE_RATE = 60.0
EXPOSURE_COMPONENTS = ["gateway-api", "aws-alb"]


@dataclass
class ExposureRun:
    """v1 -> v2 from outside, behind the real proxy and the emulated ALB: ours must lose
    nothing; with the base's default preStop and grace period, it must lose requests to late
    deregistration."""

    label: str
    ours: bool
    result: Result | None = None

    def verdict(self) -> tuple[str, bool]:
        r = self.result
        failed, total = len(r.failed), len(r.records)
        text = f"{total} requests, {failed} failed"
        if self.ours:
            return text, r.ok
        return text, failed > 0 and r.edge is not None and LATE in r.edge.causes


EXPOSURE_RUNS = [
    ExposureRun("ours (preStop 30 s)", ours=True),
    ExposureRun("default timings (preStop 5 s)", ours=False),
]


def exposure_plans(directory: Path, out: Path, parts: int) -> list[Plan]:
    """Each with a `parts`-th of the hostile mix's clients, as each rehearsal of the demo's
    batch has."""
    default = variants.timings_of(variants.deployment(ROOT / "overlays/v2"))
    traffic = profiles.share(profiles.HOSTILE, parts)
    plans = []
    for index, run in enumerate(EXPOSURE_RUNS):
        ops = [] if run.ours else default
        name = f"outside-{index + 1}"
        states = [
            variants.write(ROOT / f"overlays/{v}", ops, directory / name / v, EXPOSURE_COMPONENTS)
            for v in ("v1", "v2")
        ]
        label = "+".join(f"components/{c}" for c in EXPOSURE_COMPONENTS)
        if not run.ours:
            label += " (base timings)"
        options = Options(
            name=name,
            out_dir=out,
            rate=EXPOSURE_RATE,
            alb_lag_delay=DEMO_ALB_LAG,
            traffic=traffic,
            steady_seconds=1.0,
            tail_seconds=0.5,
            progress=False,
        )
        source = load_overlay(states[0], f"overlays/v1+{label}")
        target = load_overlay(states[1], f"overlays/v2+{label}")
        plans.append(Plan(source, target, ProcessRuntime("app"), options))
    return plans


def exposure_text(runs: list[ExposureRun]) -> str:
    ours = runs[0].result.target
    template = ours.deployment.template
    exposure = ours.exposure
    lines = [
        f"  the same ALB for both: every deregistration reaches its nodes {DEMO_ALB_LAG:g} s late;"
        f" {EXPOSURE_RATE:g} req/s each",
    ]
    for run in runs:
        text, expected = run.verdict()
        must = "must lose nothing" if run.ours else "must lose requests"
        lines.append(f"    {run.label:<30} {text}  ({must}){'' if expected else '  UNEXPECTED'}")
        for cause, n in (run.result.edge.causes if run.result.edge else {}).items():
            lines.append(f"      {n:>6}  {cause}")
    lines += [
        "  Why: the ALB keeps sending new requests to a deregistered pod until its nodes learn of",
        f"  it ({DEMO_ALB_LAG:g} s here). With the default preStop the pod stops listening after",
        "  preStop + DRAIN_SECONDS, earlier than that: the proxy's new connections are refused",
        "  (502, an ALB does not retry). Ours sleeps the ALB's propagation allowance first",
        f"  (preStop {template.pre_stop.seconds:g} s = {exposure.propagation_allowance:g} s,"
        f" grace {template.termination_grace:g} s, deregistration delay"
        f" {exposure.deregistration_delay:g} s; docs/exposure.md).",
    ]
    return "\n".join(lines)

"""The path from outside in the demo: v1 -> v2 with components/gateway-api and aws-alb, through a
real proxy (HAProxy, answering as an ALB does) in front of an emulated ALB target group, with
ours' preStop hook and with the fixed 30 s preStop the component had before it."""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal import tolerance
from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.edge.proxy import LATE_CAUSES
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.rehearsal.traffic import profiles
from tools.repo import ROOT

# The path from outside: the ALB's nodes learn of every deregistration this late in both runs
# (past the 35 s a fixed 30 s preStop tolerates, under the 125 s of ours while the ALB sends;
# users report 502s behind a preStop of 40 s, kubernetes-sigs/aws-load-balancer-controller#2106);
# requests/s of each.
DEMO_ALB_LAG = 40.0
FIXED_ALLOWANCE = 30  # the component's preStop sleep before the hook
EXPOSURE_RATE = 60.0
EXPOSURE_COMPONENTS = ["gateway-api", "aws-alb"]


@dataclass
class ExposureRun:
    """v1 -> v2 from outside, behind the real proxy and the emulated ALB: ours must lose
    nothing; with a fixed preStop of the ALB's allowance, it must lose requests to late
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
        return text, failed > 0 and r.edge is not None and any(
            c in r.edge.causes for c in LATE_CAUSES
        )


EXPOSURE_RUNS = [
    ExposureRun("ours (preStop hook 30-120 s)", ours=True),
    ExposureRun(f"fixed preStop {FIXED_ALLOWANCE} s", ours=False),
]


def fixed_allowance(overlay: Path, directory: Path) -> list[dict]:
    """The patches that give `overlay` with the components a fixed preStop of the allowance."""
    rendered = variants.deployment(variants.write(overlay, [], directory, EXPOSURE_COMPONENTS))
    return variants.fixed_pre_stop(rendered, FIXED_ALLOWANCE)


def exposure_plans(directory: Path, out: Path, parts: int) -> list[Plan]:
    """Each with a `parts`-th of the hostile mix's clients, as each rehearsal of the demo's
    batch has."""
    traffic = profiles.share(profiles.HOSTILE, parts)
    plans = []
    for index, run in enumerate(EXPOSURE_RUNS):
        name = f"outside-{index + 1}"
        states = []
        for version in ("v1", "v2"):
            overlay = ROOT / "overlays" / version
            ops = [] if run.ours else fixed_allowance(overlay, directory / name / f"{version}-0")
            states.append(
                variants.write(overlay, ops, directory / name / version, EXPOSURE_COMPONENTS)
            )
        label = "+".join(f"components/{c}" for c in EXPOSURE_COMPONENTS)
        if not run.ours:
            label += f" (preStop sleep {FIXED_ALLOWANCE} s)"
        options = Options(
            name=name,
            out_dir=out,
            rate=EXPOSURE_RATE,
            alb_lag_delay=DEMO_ALB_LAG,
            # The ALB's 40 s is the lag under test; the controller's and the nodes' watches lag
            # a fixed 0.5 s here, so that the run's length is the ALB's (the kube-proxy model's
            # tail is soaked by `zdt soak` and runs in ours).
            propagation_delay=0.5,
            propagation_jitter=0.0,
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
    found = tolerance.of(template, "ours")
    lines += [
        "  Why: the ALB keeps sending new requests to a deregistered pod until its nodes learn of",
        f"  it ({DEMO_ALB_LAG:g} s here). A fixed preStop of {FIXED_ALLOWANCE} s stops listening"
        " after preStop +",
        f"  DRAIN_SECONDS, {FIXED_ALLOWANCE + found.drain:g} s: the proxy's new connections are"
        " refused (502, an ALB does",
        "  not retry). Ours waits at least the ALB's propagation allowance"
        f" ({exposure.propagation_allowance:g} s), then",
        f"  while the ALB still sends, up to {found.pre_stop.ceiling:g} s (grace"
        f" {template.termination_grace:g} s, deregistration delay"
        f" {exposure.deregistration_delay:g} s; docs/exposure.md).",
    ]
    return "\n".join(lines)

"""The HPA removing pods under load, in the demo: no rollout, the Deployment at the HPA's
maxReplicas (as a load peak left it) and a load it needs only minReplicas for. Ours loses
nothing; the naive design loses the requests its removed pods were serving on kept-alive
connections when gunicorn kills them at its graceful timeout.

The shipped HPA waits 300 s before it removes a pod, then removes one a minute (base/
horizontalpodautoscaler.yaml). Here its scale-down rules are upstream's default policy (100 % per
15 s, pkg/apis/autoscaling/v2/defaults.go) after a 10 s window: the HPA records the starting 6 as
its first recommendation (2 s after the load starts), and at its first sync with metrics, 17 s
after the load started, that recommendation has left the window: it removes every pod it may.
The pods go through the same termination as with the shipped rules, only sooner.
"""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.report.findings import failure_causes_of as causes
from tools.rehearsal.result import Result
from tools.rehearsal.traffic import profiles
from tools.repo import ROOT

SCALE_DOWN_WINDOW = 10  # seconds
# The release (no rollout) 15 s after the load starts, and the load at least 5 s more: past the
# HPA's scale-down 17 s after the load started.
STEADY_SECONDS = 15.0
HOLD_SECONDS = 5.0
# Kept-alive clients: what the naive design's removed pods cut. Twice the hostile mix's 8, so
# that some are on the three pods removed of six (all of 16 on the other three: 1 in 65 536).
KEEP_ALIVE_CLIENTS = 16


@dataclass
class ScaleDownRun:
    label: str
    ours: bool
    result: Result | None = None

    @property
    def removed(self) -> int:
        """Pods the HPA took away."""
        syncs = self.result.autoscaling.syncs if self.result.autoscaling else []
        return sum(s.current_replicas - s.desired_replicas for s in syncs if s.rescaled and
                   s.desired_replicas < s.current_replicas)  # fmt: skip

    def verdict(self) -> tuple[str, bool]:
        r = self.result
        failed, total = len(r.failed), len(r.records)
        text = f"{self.removed} pod(s) removed by the HPA, {total} requests, {failed} failed"
        if self.ours:
            return text, r.ok and self.removed > 0
        return text, failed > 0 and self.removed > 0


SCALE_DOWN_RUNS = [
    ScaleDownRun("ours", ours=True),
    ScaleDownRun("naive (tools/fixtures/naive)", ours=False),
]


def scale_down_plans(rate: float, directory: Path, out: Path) -> list[Plan]:
    """Each at `rate` with every client of the hostile mix, and twice its kept-alive ones."""
    quicker = {variants.HPA: variants.hpa_scale_down(SCALE_DOWN_WINDOW)}
    path = ROOT / "overlays/v2"
    hpa = load_overlay(path, "overlays/v2").autoscaler
    plans = []
    for index, run in enumerate(SCALE_DOWN_RUNS):
        ops = [] if run.ours else variants.naive(variants.deployment(path))
        name = f"scale-down-{index + 1}"
        state = variants.write(path, ops, directory / name, kind_ops=quicker)
        label = "overlays/v2" + ("" if run.ours else " (naive variant)")
        options = Options(
            name=name,
            out_dir=out,
            rate=rate,
            traffic=dict(profiles.HOSTILE) | {profiles.KEEP_ALIVE.name: KEEP_ALIVE_CLIENTS},
            start_replicas=hpa.max_replicas,
            steady_seconds=STEADY_SECONDS,
            hold_seconds=HOLD_SECONDS,
            tail_seconds=0.5,
            progress=False,
        )
        workload = load_overlay(state, label)
        runtime = ProcessRuntime("app" if run.ours else "naive")
        plans.append(Plan(workload, workload, runtime, options))
    return plans


def scale_down_text(runs: list[ScaleDownRun]) -> str:
    hpa = runs[0].result.target.autoscaler
    lines = [
        f"  no rollout: {hpa.max_replicas} pods (the HPA's maxReplicas), a load the HPA needs"
        f" {hpa.min_replicas} for; its scale-down rules quickened ({SCALE_DOWN_WINDOW} s window,"
        f" 100 % per 15 s); {KEEP_ALIVE_CLIENTS} kept-alive clients",
    ]
    for run in runs:
        text, expected = run.verdict()
        must = "must lose nothing" if run.ours else "must lose requests"
        lines.append(f"    {run.label:<30} {text}  ({must}){'' if expected else '  UNEXPECTED'}")
        if not run.ours:
            lines += [f"      {n:>6}  {cause}" for cause, n in causes(run.result).items()]
    lines += [
        "  Why: a pod the HPA removes is deleted like any other. Ours waits in its preStop until",
        "  traffic has left it, then tells kept-alive clients to leave (Connection: close)",
        "  before gunicorn stops. The naive app ignores SIGTERM in its workers: kept-alive",
        "  connections stay on the pod until gunicorn kills it at its graceful timeout, and the",
        "  requests on them are cut.",
    ]
    return "\n".join(lines)

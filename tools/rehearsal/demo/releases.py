"""The Argo Rollouts components in the demo: a broken release, and a good one, under each
strategy (and the broken one under the rolling update, where nothing stops it)."""

from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cli import Plan
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.result import Result
from tools.repo import ROOT

# The Argo Rollouts components, shortened for the demo so that it ends within its time: old
# pods go 6 s after a blue-green switch (still over the 5 s propagation allowance the preStop
# covers); the canary's pause before its analysis is 6 s (still over the 5.5 s of endpoint lag
# the demo's world assumes) and its pause after 50 % is 2 s; each analysis sends 100 requests
# instead of 300 (a broken v2 fails every one of them). Everything else is the manifests' own.
ANALYSIS_REQUESTS = {"name": "requests", "value": "100"}
DEMO_SHORTER = {
    "rollout-blue-green": [
        variants.put("/spec/strategy/blueGreen/scaleDownDelaySeconds", 6),
        variants.put("/spec/strategy/blueGreen/abortScaleDownDelaySeconds", 6),
        variants.put("/spec/strategy/blueGreen/prePromotionAnalysis/args/-", ANALYSIS_REQUESTS),
    ],
    "rollout-canary": [
        variants.put("/spec/strategy/canary/steps/1/pause/duration", "6s"),
        variants.put("/spec/strategy/canary/steps/2/analysis/args/-", ANALYSIS_REQUESTS),
        variants.put("/spec/strategy/canary/steps/4/pause/duration", "2s"),
    ],
}


@dataclass
class Release:
    label: str
    strategy: str | None  # a component of components/, None for the Deployment's rolling update
    broken: bool
    result: Result | None = None

    def verdict(self) -> tuple[str, bool]:
        """What happened, and whether it is what the strategy promises."""
        r = self.result
        failed, total = len(r.failed), len(r.records)
        share = f"{failed} of {total} requests failed ({failed / total:.1%})" if total else ""
        if r.aborted:
            chance = r.failure_chance
            where = (
                f"aborted ({r.aborted}), {share}, bound {chance.bound}"
                f" (expected {chance.expected:.0f} +- {chance.deviation:.0f})"
            )
            return where, r.aborted_as_designed and self.broken
        if not self.broken:
            return f"complete, {share}", r.ok
        # A broken release under a rolling update: nothing stops it (the point of the row).
        return f"complete, {share}", failed > 0


RELEASES = [
    Release("rolling update, broken v2", None, broken=True),
    Release("canary, broken v2", "rollout-canary", broken=True),
    Release("blue-green, broken v2", "rollout-blue-green", broken=True),
    Release("canary, good v2", "rollout-canary", broken=False),
    Release("blue-green, good v2", "rollout-blue-green", broken=False),
]


def release_plans(rate: float, traffic: dict[str, int], directory: Path, out: Path) -> list[Plan]:
    plans = []
    for index, release in enumerate(RELEASES):
        components = [release.strategy] if release.strategy else []
        shorter = DEMO_SHORTER.get(release.strategy, [])
        name = f"release-{index + 1}"
        v1 = variants.write(ROOT / "overlays/v1", [], directory / name / "v1", components, shorter)
        broken = variants.broken_release() if release.broken else []
        v2 = variants.write(
            ROOT / "overlays/v2", broken, directory / name / "v2", components, shorter
        )
        source = load_overlay(v1, "overlays/v1")
        options = Options(
            name=name,
            out_dir=out,
            rate=rate,
            traffic=traffic,
            # A Rollout is created at the HPA's maximum (components/*/rollout.yaml); at this load
            # the HPA has long brought it down to its minimum, as the Deployment.
            start_replicas=source.autoscaler.min_replicas,
            steady_seconds=1.0,
            tail_seconds=0.5,
            progress=False,
        )
        target = load_overlay(v2, "overlays/v2" + (" (broken)" if release.broken else ""))
        plans.append(Plan(source, target, ProcessRuntime("app"), options))
    return plans

"""`zdt demo` (`make demo`): the v1 -> v2 rollout under load with the HPA acting, the naive
design, then a broken and a good release under each strategy, ours at two endpoint lags, the HPA
removing pods, and the path from outside.

1. the rehearsal of overlays/v1 -> overlays/v2 with `python -m app` pods, at a load sized from
   the capacity measured at its start; the shipped HorizontalPodAutoscaler runs, reads the pods'
   CPU from their cgroups through metrics-server and scales the Deployment 3 -> 5 while it rolls
   out (demo/ours.py; a benchmark target: what the HPA reads is the machine's to give);
2. the same rollout, at the same load, of the textbook recipe (tools/fixtures/naive: a
   worker-level ready flag), no preStop hook, maxUnavailable 1 - a kustomize variant of the
   same overlays, so it differs from ours only where the recipe does;
3. five rehearsals at once, each at a seventh of the load: a v2 that is ready and healthy but
   answers 500 (tools/fixtures/broken) under the rolling update, the canary and the blue-green
   component, and a good v2 under the last two (demo/releases.py);
4. from the start, beside all of these: the path from outside, through a real proxy (HAProxy,
   failing as an ALB does) in front of an emulated ALB target group 40 s late: ours with
   components/gateway-api and aws-alb, and the same release with the fixed 30 s preStop the
   component had before the hook (demo/outside.py);
5. from the naive run on, beside 2 and 3, at a seventh of the load each: the HPA removing three
   of six pods under load, from ours and from the naive design (demo/scaledown.py); ours with
   every view 1 s past the endpoint lag tolerated by the preStop hook capped at 5 s, capped and
   as shipped (demo/lag.py: each change waits 11 s in every view, so these take longest).
Exit status 0 when every rehearsal ends as it must (each prints its verdict).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tools.rehearsal import tolerance
from tools.rehearsal.cli import Background, rehearse_and_report, rehearse_side_by_side, write_report
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.demo.lag import (
    boundary_variant,
    lag_checks,
    lag_plans,
    tolerance_text,
)
from tools.rehearsal.demo.ours import (
    explanation,
    naive_overlay,
    ours_options,
    side_by_side,
)
from tools.rehearsal.demo.outside import EXPOSURE_RUNS, exposure_plans, exposure_text
from tools.rehearsal.demo.releases import RELEASES, release_plans
from tools.rehearsal.demo.scaledown import SCALE_DOWN_RUNS, scale_down_plans, scale_down_text
from tools.rehearsal.demo.targets import targets
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.report import findings
from tools.rehearsal.traffic import profiles
from tools.repo import ROOT

OUT = ROOT / "out"
LAG_CHECKS = 2
# The releases of step 3 and the lag checks of step 5, each at this share of ours' load, so that
# together they load the machine as ours did.
BATCH = len(RELEASES) + LAG_CHECKS
NAIVE_STARTS = 6.0  # seconds


def rehearse_releases(rate: float, directory: Path) -> None:
    """Step 3: the releases at once, each in a process of its own."""
    traffic = profiles.share(profiles.HOSTILE, BATCH)
    plans = release_plans(max(1.0, rate / BATCH), traffic, directory, OUT)
    for release, result in zip(RELEASES, rehearse_side_by_side(plans), strict=True):
        release.result = result
        write_report(result, plot=False, show=False)
    for release in RELEASES:
        verdict, expected = release.verdict()
        print(f"  {release.label:<28} {verdict}{'' if expected else '  UNEXPECTED'}")


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="zdt demo", description=__doc__).parse_args(argv)
    started = time.monotonic()
    print("Rollout rehearsal: real kustomize renders, real server processes, signals and requests;")
    print(f"{findings.EMULATED}.\n")
    outside: Background | None = None
    scale_down: Background | None = None
    lag: Background | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="rehearsal-outside-") as tmp:
            outside = Background(exposure_plans(Path(tmp), OUT, BATCH))
        v1, v2 = (
            load_overlay(ROOT / "overlays/v1", "overlays/v1"),
            load_overlay(ROOT / "overlays/v2", "overlays/v2"),
        )
        ours, ours_summary = rehearse_and_report(
            v1, v2, ProcessRuntime("app"), ours_options("ours", OUT)
        )
        print()
        share = max(1.0, ours.rate / BATCH)
        with tempfile.TemporaryDirectory(prefix="rehearsal-scale-down-") as tmp:
            plans = scale_down_plans(share, Path(tmp), OUT)
            # After the naive run's pods have started: twelve more at once would slow them.
            scale_down = Background(plans, delay=NAIVE_STARTS)
        found = tolerance.of(v2.deployment.template, "overlays/v2")
        with tempfile.TemporaryDirectory(prefix="rehearsal-lag-") as tmp:
            variant = boundary_variant("overlays/v2", Path(tmp))
            boundary = tolerance.of(variant.deployment.template, variant.source)
            checks = lag_checks(boundary)
            traffic = profiles.share(profiles.HOSTILE, BATCH)
            # Their views wait 11 s for every change: started here, they end within step 3.
            lag = Background(lag_plans(checks, share, traffic, OUT, Path(tmp)), NAIVE_STARTS)
        with tempfile.TemporaryDirectory(prefix="rehearsal-naive-") as tmp:
            naive_v1, naive_v2 = (
                naive_overlay("overlays/v1", Path(tmp)),
                naive_overlay("overlays/v2", Path(tmp)),
            )
        naive, naive_summary = rehearse_and_report(
            naive_v1,
            naive_v2,
            ProcessRuntime("naive"),
            Options(
                name="naive", out_dir=OUT, rate=ours.rate, steady_seconds=1.0, tail_seconds=0.5
            ),
        )
        print("\n== a broken release, and a good one, under each strategy ==")
        print(f"  ({findings.EMULATED_ROLLOUTS};")
        print(f"   the {len(RELEASES)} at once, each at 1/{BATCH} of ours' load)")
        with tempfile.TemporaryDirectory(prefix="rehearsal-releases-") as tmp:
            rehearse_releases(ours.rate, Path(tmp))
        from tools.rehearsal.report.plot import draw_releases  # matplotlib: 2 s of imports

        picture = draw_releases(
            [(release.label, release.result) for release in RELEASES], OUT / "releases.png"
        )
        for background, runs in (
            (lag, checks),
            (outside, EXPOSURE_RUNS),
            (scale_down, SCALE_DOWN_RUNS),
        ):
            for run, result in zip(runs, background.results(), strict=True):
                run.result = result
                write_report(result, plot=False, show=False)
    except RehearsalError as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 2
    finally:
        for background in (outside, scale_down, lag):
            if background is not None:
                background.close()
    print("\n== the HPA removes pods under load ==")
    print(scale_down_text(SCALE_DOWN_RUNS))
    print("\n== from outside: a real proxy (HAProxy) and an emulated ALB target group ==")
    print(exposure_text(EXPOSURE_RUNS))
    print("\n== how much endpoint lag the contract tolerates ==")
    print(tolerance_text(found, boundary, ours, checks))
    print("\n== side by side ==")
    print(side_by_side(ours, naive, (ours_summary, naive_summary)))
    print()
    print(explanation(ours_summary, naive_summary))
    expected = ours.ok and naive_summary["failed"] > 0
    for run in [*RELEASES, *checks, *EXPOSURE_RUNS, *SCALE_DOWN_RUNS]:
        expected = expected and run.verdict()[1]
    wall_seconds = time.monotonic() - started
    print()
    print(targets(ours, ours_summary, RELEASES, EXPOSURE_RUNS, SCALE_DOWN_RUNS, wall_seconds))
    print(f"\ndemo wall time {wall_seconds:.1f} s; pictures: {OUT}/ours.png, {OUT}/naive.png,")
    print(f"  {picture} (the releases, one strategy above the other)")
    if not expected:
        print(
            "UNEXPECTED: ours must complete and lose nothing, the naive design must lose"
            " requests, a broken release must be stopped by blue-green (0 failed) and canary"
            " (within its bound), and a good one must complete"
            " under both with 0 failed; ours with the hook capped at 5 s must lose requests just"
            " past the lag it tolerates, and as shipped nothing; when the HPA removes pods ours"
            " must lose nothing and the naive design must lose requests; from outside ours must"
            " lose nothing and a fixed preStop of the ALB's allowance must lose requests"
        )
    print(f"naive {findings.last_line(naive_summary)}")
    print(findings.last_line(ours_summary))
    return 0 if expected else 1

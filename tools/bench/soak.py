"""`zdt soak`: many rollout rehearsals back to back, to put a number on "0 failed".

Each run is the rehearsal of `make demo`'s ours (real server processes and load, emulated
controller, HPA, kubelet and Service), from --from to --to, released as the demo releases it: just
before the HPA's first sync with a full window of metrics, so that the HPA rescales during the
rollout (--pin-replicas: not run). The capacity is measured once, in the first run, and every run
then loads the Service at that rate. Per run it prints the requests, the failures by
cause and a trace of each failed request; at the end the totals and 95 % upper bounds on the
per-request loss probability and on the share of runs that lose anything. A run that lost a
request keeps its JSON (with every failed request's connection record and its pod's log) and
its pods' logs in --out; a clean run keeps nothing. Loopback only; every run is bounded in time.
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tools.bench.stats import upper_bound
from tools.rehearsal.cli import make_runtime, overlay_path, run_until_stopped
from tools.rehearsal.demo.ours import (
    LOAD_FRACTION,
    describe_rescales,
    ours_options,
    rescales_during_rollout,
)
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.rehearsal.report import findings
from tools.rehearsal.run import Rehearsal
from tools.repo import ROOT

# A busy loop that stops by itself: the CPU hog can never outlive the soak for long.
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


@dataclass
class RunFigures:
    run: int
    requests: int
    failed: int
    complete: bool
    rollout_s: float | None
    causes: dict[str, int] = field(default_factory=dict)
    traces: list[str] = field(default_factory=list)
    # client model -> [requests, failed]
    by_client: dict[str, list[int]] = field(default_factory=dict)
    # The HPA's rescales during the rollout ("3 -> 5 at 18.5 s, cpu 124%"), and its count at
    # the end of the run.
    rescales: str = ""
    rescaled_in_rollout: bool = False
    final_replicas: int | None = None
    # Each HPA sync: "18.5 s: 3 -> 5, cpu resource utilization (percentage of request): ...".
    syncs: list[str] = field(default_factory=list)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zdt soak", description=__doc__)
    p.add_argument("--runs", type=int, default=10, help="rehearsals back to back (10)")
    p.add_argument("--from", dest="source", default="overlays/v1")
    p.add_argument("--to", dest="target", default="overlays/v2")
    p.add_argument("--runtime", default="process", help="process, podman or docker")
    p.add_argument(
        "--load-fraction",
        type=float,
        default=LOAD_FRACTION,
        help=f"share of the measured capacity (the demo's, {LOAD_FRACTION:g})",
    )
    p.add_argument("--rate", type=float, help="requests/s instead of a share of the capacity")
    p.add_argument(
        "--cpu-hog", type=int, default=0, metavar="N", help="N busy processes during the soak"
    )
    p.add_argument(
        "--propagation-delay",
        type=float,
        help="every view lags exactly this long (default: the hostile world's heavy-tailed lag"
        " on 3 nodes)",
    )
    p.add_argument(
        "--pin-replicas", action="store_true", help="do not run the HPA (replicas as the manifest)"
    )
    p.add_argument("--out", type=Path, default=ROOT / "out" / "soak")
    return p


def start_hogs(count: int, seconds: float) -> list[subprocess.Popen]:
    code = HOG.format(seconds=seconds)
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        hog.kill()
        hog.wait()


def totals(figures: list[RunFigures]) -> dict:
    requests = sum(f.requests for f in figures)
    failed = sum(f.failed for f in figures)
    lossy = sum(1 for f in figures if f.failed)
    causes: dict[str, int] = {}
    by_client: dict[str, list[int]] = {}
    for f in figures:
        for cause, count in f.causes.items():
            causes[cause] = causes.get(cause, 0) + count
        for name, (tried, lost) in f.by_client.items():
            counts = by_client.setdefault(name, [0, 0])
            counts[0] += tried
            counts[1] += lost
    return {
        "runs": len(figures),
        "complete_runs": sum(f.complete for f in figures),
        "runs_rescaled_in_rollout": sum(f.rescaled_in_rollout for f in figures),
        "requests": requests,
        "failed": failed,
        "runs_with_failures": lossy,
        "causes": causes,
        "by_client": by_client,
        "loss_per_request_upper_95": upper_bound(failed, requests),
        "runs_with_failures_upper_95": upper_bound(lossy, len(figures)),
    }


def describe_totals(total: dict) -> str:
    return "\n".join(
        [
            f"soak: {total['runs']} runs ({total['complete_runs']} complete), "
            f"{total['requests']} requests, {total['failed']} failed, "
            f"{total['runs_with_failures']} runs with a failure; the HPA rescaled during"
            f" {total['runs_rescaled_in_rollout']} of the rollouts",
            *(f"  {count:>6}  {cause}" for cause, count in total["causes"].items()),
            *(
                f"  {name:<16} {tried:>9} requests, {lost} failed"
                for name, (tried, lost) in total["by_client"].items()
            ),
            f"  per-request loss probability: {total['failed']}/{total['requests']}, "
            f"95 % upper bound {total['loss_per_request_upper_95']:.2e}",
            f"  share of runs losing anything: {total['runs_with_failures']}/{total['runs']}, "
            f"95 % upper bound {total['runs_with_failures_upper_95']:.3f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 1 <= args.runs <= 10_000:
        print(f"zdt soak: --runs {args.runs}: must be 1..10000", file=sys.stderr)
        return 2
    if not 0 <= args.cpu_hog <= 16:
        print(f"zdt soak: --cpu-hog {args.cpu_hog}: must be 0..16", file=sys.stderr)
        return 2
    try:
        source = load_overlay(overlay_path(args.source), args.source)
        target = load_overlay(overlay_path(args.target), args.target)
        runtime = make_runtime(args.runtime, "app")
        world = Options(
            rate=args.rate,
            load_fraction=args.load_fraction,
            propagation_delay=args.propagation_delay,
            propagation_jitter=0.0,
        )
        world.validate()
    except RehearsalError as error:
        print(f"zdt soak: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    # Bounded: the hogs stop by themselves after at most 5 minutes a run.
    hogs = start_hogs(args.cpu_hog, seconds=300.0 * args.runs)
    figures: list[RunFigures] = []
    rate = args.rate
    try:
        for run in range(1, args.runs + 1):
            options = replace(
                ours_options(f"run-{run:03d}", args.out, rate, progress=False),
                load_fraction=args.load_fraction,
                propagation_delay=args.propagation_delay,
                propagation_jitter=0.0,
                pin_replicas=args.pin_replicas,
            )
            rehearsal = Rehearsal(source, target, runtime, options)
            result = asyncio.run(run_until_stopped(rehearsal))
            rate = result.rate  # the first run measured the capacity; the others reuse it
            summary = findings.summarize(result)
            figure = RunFigures(
                run=run,
                requests=summary["requests"],
                failed=summary["failed"],
                complete=result.rollout_completed is not None,
                rollout_s=result.rollout_duration,
                causes=summary["failure_causes"],
                traces=[trace.describe() for trace in result.failure_traces],
                by_client={
                    name: [figures["requests"], figures["failed"]]
                    for name, figures in summary["by_client"].items()
                },
                rescales=describe_rescales(result),
                rescaled_in_rollout=bool(rescales_during_rollout(result)),
                final_replicas=result.final_replicas,
                syncs=[
                    f"{sync['t']:.1f} s: {sync['current']} -> {sync['desired']}, {sync['metrics']}"
                    for sync in (summary["scaling"]["autoscaler"] or {}).get("syncs", [])
                ],
            )
            figures.append(figure)
            rollout = "incomplete" if figure.rollout_s is None else f"{figure.rollout_s:.1f} s"
            print(
                f"run {run}/{args.runs}: {figure.requests} requests at {result.rate:.0f} req/s,"
                f" {figure.failed} failed, rollout {rollout}; HPA {figure.rescales}",
                flush=True,
            )
            for line in figure.traces:
                print(f"  trace {line}", flush=True)
            if figure.failed or not figure.complete:
                findings.write_json(result, summary, args.out / f"{options.name}.json")
            else:
                shutil.rmtree(args.out / f"{options.name}-pods", ignore_errors=True)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("zdt soak: interrupted; totals of the runs so far", file=sys.stderr)
    finally:
        stop_hogs(hogs)
    total = totals(figures)
    print(describe_totals(total))
    document = {
        "settings": {
            "from": args.source,
            "to": args.target,
            "runtime": args.runtime,
            "rate": rate,
            "load_fraction": args.load_fraction,
            "cpu_hog": args.cpu_hog,
            "propagation_delay": args.propagation_delay,
            "clients": world.clients,
            "nodes": world.nodes,
            "lag": world.lag.describe(),
            "endpoint_batch_s": world.batch_period,
            "hpa": "pinned" if args.pin_replicas else "runs",
        },
        "totals": total,
        "runs": [asdict(f) for f in figures],
    }
    (args.out / "summary.json").write_text(json.dumps(document, indent=1))
    print(f"  output        {args.out / 'summary.json'}")
    clean = total["failed"] == 0 and total["complete_runs"] == total["runs"] == args.runs
    return 0 if clean else 1

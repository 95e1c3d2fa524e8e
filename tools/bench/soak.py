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

It sizes the contract against the lag: the lag the target's contract tolerates
(tools/rehearsal/tolerance.py), the quantile of the lag model where it breaks, every update the
nodes' rules applied later than that, the requests lost per release, and how long the preStop
hook held each terminating pod.
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tools.bench.stats import upper_bound
from tools.rehearsal import tolerance
from tools.rehearsal.cli import make_runtime, overlay_path, run_until_stopped
from tools.rehearsal.cluster.network.lag import Lag, share_within
from tools.rehearsal.demo.ours import (
    LOAD_FRACTION,
    describe_rescales,
    ours_options,
    rescales_during_rollout,
)
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.manifests.workload import Workload
from tools.rehearsal.options import Options
from tools.rehearsal.report import findings
from tools.rehearsal.run import Rehearsal
from tools.rehearsal.timeline import PodEvent
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
    # The users' Service on every node: the updates its rules applied, the latest, and those
    # later than the contract tolerates while traffic arrives.
    lag_updates: int = 0
    max_lag: float = 0.0
    lags_past_tolerance: int = 0
    lags_past_floor: int = 0  # later than the contract tolerates from a node with no traffic
    unapplied: int = 0  # of lag_updates: not applied when the run ended (counted at their age)
    # Each old pod's preStop: from its termination to SIGTERM, seconds; and for a pod still in
    # its preStop when the run ended (no request could reach it any more), how long it had been.
    prestop_held: list[float] = field(default_factory=list)
    prestop_unfinished: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Contract:
    """The target's contract against the lag model: where it breaks."""

    found: tolerance.Tolerance
    lag: Lag
    within: float  # the share of the model's lags the contract tolerates while traffic arrives

    @classmethod
    def of(cls, target, source: str, lag: Lag) -> "Contract":
        found = tolerance.of(target.deployment.template, source)
        return cls(found, lag, share_within(lag, found.seconds))

    def describe(self) -> str:
        past = 1 - self.within
        odds = f"1 update in {1 / past:,.0f}" if past > 0 else "no update in 200 000 draws"
        return "\n".join(
            [
                f"contract: {self.found.describe()}: tolerates {self.found.seconds:g} s of lag"
                f" while traffic arrives, {self.found.floor:g} s with none",
                f"lag model: {self.lag.describe()}",
                f"  the contract breaks past the model's p{100 * self.within:.3f}"
                f" ({odds} later than {self.found.seconds:g} s)",
            ]
        )


def lag_figures(result, contract: "Contract") -> dict:
    """An update still unapplied when the run ended counts with its age, a lower bound on its
    lag: a view whose rules stopped moving is the latest of all. Behind an ALB, its latest
    deregistration (the target group keeps no other)."""
    views = [view for view in result.views if view.service == result.target.service.name]
    lags = [lag for view in views for lag in (*view.lags, *view.unapplied)]
    if result.edge is not None and result.edge.max_deregistration_lag is not None:
        lags = [result.edge.max_deregistration_lag]
    return {
        "lag_updates": len(lags),
        "max_lag": max(lags, default=0.0),
        "lags_past_tolerance": sum(lag > contract.found.seconds for lag in lags),
        "lags_past_floor": sum(lag > contract.found.floor for lag in lags),
        "unapplied": sum(len(view.unapplied) for view in views),
    }


def prestop_held(summary: dict) -> list[float]:
    return [
        round(pod[PodEvent.SIGTERM] - pod[PodEvent.TERMINATING], 2)
        for pod in summary["pods"]
        if pod.get(PodEvent.SIGTERM) is not None and pod.get(PodEvent.TERMINATING) is not None
    ]


def prestop_unfinished(summary: dict, ended: float) -> list[float]:
    """Pods still in their preStop at `ended`: how long each had been, a lower bound."""
    return [
        round(ended - pod[PodEvent.TERMINATING], 2)
        for pod in summary["pods"]
        if pod.get(PodEvent.SIGTERM) is None
        and pod.get(PodEvent.TERMINATING) is not None
        and pod.get(PodEvent.EXITED) is None
    ]


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
        help="every view lags exactly this long (default: the kube-proxy model's lag on 3 nodes)",
    )
    p.add_argument(
        "--pin-replicas", action="store_true", help="do not run the HPA (replicas as the manifest)"
    )
    p.add_argument(
        "--prestop-sleep",
        type=int,
        metavar="SECONDS",
        help="both overlays with a fixed preStop sleep of SECONDS instead of their hook, and the"
        " grace period it needs (5: the contract before the /prestop hook)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "out" / "soak")
    return p


def contract_overlay(overlay: str, prestop_sleep: int | None, directory: Path) -> Workload:
    """The overlay, or its variant with a fixed preStop sleep and the grace period it needs."""
    path = overlay_path(overlay)
    if prestop_sleep is None:
        return load_overlay(path, overlay)
    ops = variants.fixed_pre_stop(variants.deployment(path), prestop_sleep)
    written = variants.write(path, ops, directory / overlay.replace("/", "-"))
    return load_overlay(written, f"{overlay} with preStop sleep {prestop_sleep} s")


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
    held = sorted(h for f in figures for h in f.prestop_held)
    unfinished = sorted(h for f in figures for h in f.prestop_unfinished)
    return {
        "lag_updates": sum(f.lag_updates for f in figures),
        "max_lag": max((f.max_lag for f in figures), default=0.0),
        "lags_past_tolerance": sum(f.lags_past_tolerance for f in figures),
        "lags_past_floor": sum(f.lags_past_floor for f in figures),
        "unapplied": sum(f.unapplied for f in figures),
        "failed_per_release_max": max((f.failed for f in figures), default=0),
        "prestop_unfinished_s": {
            "pods": len(unfinished),
            "max": unfinished[-1] if unfinished else None,
        },
        "prestop_held_s": {
            "pods": len(held),
            "mean": sum(held) / len(held) if held else None,
            "p50": held[len(held) // 2] if held else None,
            "max": held[-1] if held else None,
        },
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


def describe_totals(total: dict, contract: Contract) -> str:
    held = total["prestop_held_s"]
    runs = max(total["runs"], 1)
    return "\n".join(
        [
            contract.describe(),
            f"  measured: {total['lag_updates']} updates for the nodes' rules"
            f" ({total['unapplied']} not applied when their run ended, counted at their age),"
            f" the latest {total['max_lag']:.1f} s, {total['lags_past_tolerance']} later than"
            f" {contract.found.seconds:g} s, {total['lags_past_floor']} later than"
            f" {contract.found.floor:g} s",
            f"  per release: {total['failed'] / runs:.2f} requests lost on average (at most"
            f" {total['failed_per_release_max']}); {total['runs_with_failures']} of"
            f" {total['runs']} releases lost any",
            (
                f"  the preStop held each of {held['pods']} terminating pods {held['mean']:.1f} s"
                f" on average (median {held['p50']:.1f} s, at most {held['max']:.1f} s), then"
                f" DRAIN_SECONDS {contract.found.drain:g} s"
                if held["pods"]
                else "  no pod reached SIGTERM"
            ),
            f"  {total['prestop_unfinished_s']['pods']} more were still in their preStop when"
            " their run ended (no request could reach them)"
            + (
                f", the longest for {total['prestop_unfinished_s']['max']:.1f} s by then"
                if total["prestop_unfinished_s"]["pods"]
                else ""
            ),
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
    if args.prestop_sleep is not None and not 0 <= args.prestop_sleep <= 600:
        print(f"zdt soak: --prestop-sleep {args.prestop_sleep}: must be 0..600", file=sys.stderr)
        return 2
    variants_dir = tempfile.TemporaryDirectory(prefix="soak-variant-")
    try:
        source = contract_overlay(args.source, args.prestop_sleep, Path(variants_dir.name))
        target = contract_overlay(args.target, args.prestop_sleep, Path(variants_dir.name))
        runtime = make_runtime(args.runtime, "app")
        world = Options(
            rate=args.rate,
            load_fraction=args.load_fraction,
            propagation_delay=args.propagation_delay,
            propagation_jitter=0.0,
        )
        world.validate()
        # Behind an ALB the lag that decides is its deregistration's, else the nodes' views'.
        behind_alb = target.exposure is not None and target.exposure.kind == "aws-alb"
        contract = Contract.of(target, args.target, world.alb_lag if behind_alb else world.lag)
    except RehearsalError as error:
        print(f"zdt soak: error: {error}", file=sys.stderr)
        return 2
    print(contract.describe(), flush=True)
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
                **lag_figures(result, contract),
                prestop_held=prestop_held(summary),
                prestop_unfinished=prestop_unfinished(summary, result.settled),
            )
            figures.append(figure)
            rollout = "incomplete" if figure.rollout_s is None else f"{figure.rollout_s:.1f} s"
            print(
                f"run {run}/{args.runs}: {figure.requests} requests at {result.rate:.0f} req/s,"
                f" {figure.failed} failed, rollout {rollout}; HPA {figure.rescales}; lag max"
                f" {figure.max_lag:.1f} s, {figure.lags_past_tolerance} past"
                f" {contract.found.seconds:g} s, {figure.lags_past_floor} past"
                f" {contract.found.floor:g} s ({figure.unapplied} unapplied at the end)",
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
        variants_dir.cleanup()
    total = totals(figures)
    print(describe_totals(total, contract))
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
            "lag": contract.lag.describe(),
            "contract": contract.found.describe(),
            "tolerated_lag_s": contract.found.seconds,
            "tolerated_lag_without_traffic_s": contract.found.floor,
            "lag_quantile_tolerated": contract.within,
            "endpoint_batch_s": world.batch_period,
            "hpa": "pinned" if args.pin_replicas else "runs",
            "prestop_sleep": args.prestop_sleep,
        },
        "totals": total,
        "runs": [asdict(f) for f in figures],
    }
    (args.out / "summary.json").write_text(json.dumps(document, indent=1))
    print(f"  output        {args.out / 'summary.json'}")
    clean = total["failed"] == 0 and total["complete_runs"] == total["runs"] == args.runs
    return 0 if clean else 1

"""`zdt rehearse`: rehearse a rolling update between two rendered states."""

import argparse
import asyncio
import dataclasses
import multiprocessing
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cluster.faults import Faults
from tools.rehearsal.cluster.network.lag import ALB_LAG, LAG_MAX, LAG_P50, LAG_P99, TGB_REQUEUE
from tools.rehearsal.cluster.node.container_runtime import ENGINE_RUNTIMES
from tools.rehearsal.cluster.node.runtime import ProcessRuntime, Runtime
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.sources import load_overlay, load_revision
from tools.rehearsal.manifests.workload import Workload
from tools.rehearsal.options import ENDPOINT_BATCH, FrozenView, Options, SlowView
from tools.rehearsal.report import findings
from tools.rehearsal.result import Result
from tools.rehearsal.run import Rehearsal
from tools.rehearsal.traffic import profiles, shapes
from tools.repo import ROOT
from tools.servers import SERVERS

# 0: the rollout completed and no request failed; 1: requests failed (or the rollout did not
# complete); 3: Argo Rollouts aborted the release and it cost no more than its exposure.
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_ABORTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# How pods run: server processes, or containers of the built image (zdt image build v1 v2).
RUNTIMES = {"process": ProcessRuntime, **ENGINE_RUNTIMES}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zdt rehearse",
        description="Rehearse a rolling update of the rendered manifests under load, on this "
        "machine: real server processes and requests; emulated Deployment controller, kubelet "
        "and kube-proxy.",
    )
    states = p.add_argument_group("what to roll out")
    states.add_argument(
        "--from", dest="source", default="overlays/v1", help="overlay of the running state"
    )
    states.add_argument(
        "--to", dest="target", default="overlays/v2", help="overlay of the new state"
    )
    states.add_argument("--from-rev", help="git revision of the running state (with --overlay)")
    states.add_argument("--to-rev", help="git revision of the new state (with --overlay)")
    states.add_argument("--overlay", help="overlay rendered at --from-rev and --to-rev")
    states.add_argument("--repo", default=".", help="git repository for --from-rev/--to-rev")
    states.add_argument("--deployment", help="the Deployment to roll out when there are several")
    pods = p.add_argument_group("pods")
    pods.add_argument(
        "--app",
        default="app",
        help="the server each pod runs: app, or naive (process runtime only)",
    )
    pods.add_argument(
        "--runtime",
        default="process",
        choices=sorted(RUNTIMES),
        help="process: each pod is `python -m APP` on its loopback address; podman or docker: "
        "each pod is a container of the locally built image for its tag "
        "(<registry>/zero-downtime-app:v2 runs as localhost/zero-downtime-app:v2, built by "
        "`zdt image build v1 v2`), published on the pod's loopback address",
    )
    pods.add_argument(
        "--network",
        default="auto",
        choices=("auto", "namespaces", "loopback"),
        help="namespaces: each pod in its own network namespace behind kernel NAT (kube-proxy's"
        " iptables rules in each node's namespace; root on Linux); loopback: each pod a loopback"
        " address of this host, each node's Service a TCP proxy; auto (default): namespaces"
        " where possible",
    )
    pods.add_argument(
        "--pod-network", default="127.0.0.0/24", help="the loopback network's pod IPs"
    )
    pods.add_argument(
        "--replicas",
        type=int,
        metavar="N",
        help="start with N pods, as an HPA may have left them (default: the manifest's replicas)",
    )
    scaling = p.add_argument_group(
        "autoscaling: a HorizontalPodAutoscaler in the render runs, as in the cluster"
    )
    scaling.add_argument(
        "--pin-replicas",
        action="store_true",
        help="do not run the HPA: the replica count stays as the manifests say (to compare)",
    )
    scaling.add_argument(
        "--metric-resolution",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how often metrics-server scrapes the kubelet's resource metrics (default 15)",
    )
    scaling.add_argument(
        "--hpa-sync-period",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="the HPA controller's sync period, kube-controller-manager "
        "--horizontal-pod-autoscaler-sync-period (default 15)",
    )
    load = p.add_argument_group("load and timing")
    load.add_argument(
        "--rate", type=float, help="requests/s (default: a share of the capacity measured first)"
    )
    load.add_argument(
        "--load-fraction", type=float, default=0.5, help="share of the measured capacity"
    )
    load.add_argument("--capacity-seconds", type=float, default=3.0)
    load.add_argument(
        "--path",
        default="/status",
        help="what every request of the load asks for (default /status, the app's)",
    )
    load.add_argument(
        "--expect-status",
        type=int,
        default=200,
        metavar="CODE",
        help="the answer that counts as ok (default 200)",
    )
    load.add_argument(
        "--steady-seconds", type=float, default=2.0, help="load before the rollout starts"
    )
    load.add_argument(
        "--traffic",
        default="hostile",
        metavar="MIX",
        help="the clients: comma-separated named mixes (hostile: "
        + ", ".join(f"{n} {m}" for m, n in profiles.HOSTILE.items())
        + "; friendly: "
        + ", ".join(f"{n} {m}" for m, n in profiles.FRIENDLY.items())
        + ") and MODEL=N items, applied in order (e.g. hostile,open-loop=0)",
    )
    load.add_argument(
        "--clients", type=int, help="wget clients (a new connection per request), over --traffic"
    )
    load.add_argument(
        "--keepalive-clients", type=int, help="paced keep-alive clients, over --traffic"
    )
    load.add_argument(
        "--load-shape",
        default=shapes.CONSTANT.name,
        choices=sorted(shapes.SHAPES),
        help="how the rate moves, the rate being its peak: "
        + "; ".join(f"{s.name}: {s.description}" for s in shapes.SHAPES.values()).replace(
            "%", "%%"
        ),
    )
    load.add_argument(
        "--hold",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the load at least this long after the release, whatever the rollout does "
        "(time for the HPA to act; needed when --from and --to render the same pods)",
    )
    load.add_argument(
        "--wait-for-exit", action="store_true", help="keep the load until old pods exit"
    )
    load.add_argument("--time-limit", type=float, default=300.0, help="bound on the whole run, s")
    load.add_argument("--seed", type=int)
    network = p.add_argument_group(
        "network: each node's kube-proxy has its own view of every Service, its own lag"
    )
    network.add_argument("--nodes", type=int, default=3, help="nodes, each with its clients")
    network.add_argument(
        "--lag-p50",
        type=float,
        help="a log-normal lag instead of the kube-proxy model: median lag of an endpoint change"
        f" to a node's rules, s (default {LAG_P50:g})",
    )
    network.add_argument("--lag-p99", type=float, help=f"its p99, s (default {LAG_P99:g})")
    network.add_argument("--lag-max", type=float, help=f"its maximum, s (default {LAG_MAX:g})")
    network.add_argument(
        "--propagation-delay",
        type=float,
        help="instead of --lag-*: every view lags this, s, +- --propagation-jitter (uniform)",
    )
    network.add_argument("--propagation-jitter", type=float, default=0.25)
    network.add_argument(
        "--endpoint-batch",
        type=float,
        help=f"EndpointSlice updates batch period, s (default {ENDPOINT_BATCH:g}, upstream's)",
    )
    network.add_argument(
        "--alb-lag",
        type=float,
        metavar="SECONDS",
        help="behind an ALB (components/aws-alb): every deregistration reaches the ALB's nodes "
        "exactly this late (default: log-normal p50 "
        f"{ALB_LAG.p50:g}s, p99 {ALB_LAG.p99:g}s, max {ALB_LAG.max:g}s)",
    )
    network.add_argument(
        "--tgb-requeue",
        type=float,
        default=TGB_REQUEUE,
        metavar="SECONDS",
        help="behind an ALB: the load balancer controller's --targetgroupbinding-requeue-duration"
        f" (default {TGB_REQUEUE:g})",
    )
    network.add_argument(
        "--freeze-view",
        action="append",
        default=[],
        metavar="NODE:START:SECONDS",
        help="node NODE's kube-proxy restarts START s after the rollout starts: its views "
        "apply nothing for SECONDS, then catch up (repeatable)",
    )
    network.add_argument(
        "--slow-view",
        action="append",
        default=[],
        metavar="NODE:SECONDS",
        help="node NODE's views lag exactly SECONDS behind every change (repeatable)",
    )
    fault = p.add_argument_group("faults (seconds after the rollout starts)")
    fault.add_argument(
        "--kill-at", type=float, help="SIGKILL the container of one ready old pod (a crash)"
    )
    fault.add_argument(
        "--evict-at",
        type=float,
        help="evict every pod then, one at a time, honouring the PodDisruptionBudget (a node "
        "drain)",
    )
    fault.add_argument(
        "--slow-request",
        type=float,
        metavar="SECONDS",
        help="send one request that takes this long when the rollout starts",
    )
    output = p.add_argument_group("output")
    output.add_argument(
        "--out", default=str(ROOT / "out"), help="directory for the JSON and the picture"
    )
    output.add_argument("--name", default="rehearsal", help="base name of the output files")
    output.add_argument("--no-plot", action="store_true")
    output.add_argument("--quiet", action="store_true", help="no live progress")
    return p


def load_states(args: argparse.Namespace) -> tuple[Workload, Workload]:
    revisions = (args.from_rev, args.to_rev, args.overlay)
    if any(revisions):
        if not all(revisions):
            raise RehearsalError("--from-rev, --to-rev and --overlay go together")
        repo = Path(args.repo).resolve()
        return (
            load_revision(repo, args.from_rev, args.overlay, args.deployment),
            load_revision(repo, args.to_rev, args.overlay, args.deployment),
        )
    return (
        load_overlay(overlay_path(args.source), args.source, args.deployment),
        load_overlay(overlay_path(args.target), args.target, args.deployment),
    )


def overlay_path(argument: str) -> Path:
    """A path as given, or else relative to the repository (so any working directory works)."""
    path = Path(argument)
    return path if path.exists() or path.is_absolute() else ROOT / path


def node_conditions(values: list[str], option: str, record: type) -> tuple:
    """`--freeze-view 1:2:10` -> (FrozenView(1, 2.0, 10.0),): NODE, then seconds."""
    fields = len(dataclasses.fields(record))
    conditions = []
    for value in values:
        parts = value.split(":")
        try:
            if len(parts) != fields:
                raise ValueError
            conditions.append(record(int(parts[0]), *(float(part) for part in parts[1:])))
        except ValueError:
            form = {FrozenView: "NODE:START:SECONDS", SlowView: "NODE:SECONDS"}[record]
            raise RehearsalError(f"{option}: {value!r} is not {form}") from None
    return tuple(conditions)


def network_options(args: argparse.Namespace) -> dict:
    lags = {"lag_p50": args.lag_p50, "lag_p99": args.lag_p99, "lag_max": args.lag_max}
    given = {name: value for name, value in lags.items() if value is not None}
    if given and args.propagation_delay is not None:
        raise RehearsalError(
            "--propagation-delay and --lag-p50/--lag-p99/--lag-max exclude each other"
        )
    return {
        "nodes": args.nodes,
        "propagation_delay": args.propagation_delay,
        "propagation_jitter": args.propagation_jitter,
        **given,
        "endpoint_batch": args.endpoint_batch,
        "alb_lag_delay": args.alb_lag,
        "tgb_requeue": args.tgb_requeue,
        "frozen_views": node_conditions(args.freeze_view, "--freeze-view", FrozenView),
        "slow_views": node_conditions(args.slow_view, "--slow-view", SlowView),
    }


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        **network_options(args),
        rate=args.rate,
        load_fraction=args.load_fraction,
        capacity_seconds=args.capacity_seconds,
        steady_seconds=args.steady_seconds,
        traffic=profiles.parse_mix(args.traffic),
        fresh_clients=args.clients,
        keepalive_clients=args.keepalive_clients,
        wait_for_exit=args.wait_for_exit,
        load_shape=args.load_shape,
        hold_seconds=args.hold,
        start_replicas=args.replicas,
        pin_replicas=args.pin_replicas,
        metric_resolution=args.metric_resolution,
        hpa_sync_period=args.hpa_sync_period,
        time_limit=args.time_limit,
        pod_network=args.pod_network,
        network=args.network,
        path=args.path,
        expect_status=args.expect_status,
        out_dir=Path(args.out),
        name=args.name,
        seed=args.seed,
        progress=not args.quiet,
        faults=Faults(args.kill_at, args.evict_at, args.slow_request),
    )


def make_runtime(name: str, server: str) -> Runtime:
    if server not in SERVERS:
        raise RehearsalError(f"--app: no module {server!r}: choose one of {', '.join(SERVERS)}")
    return RUNTIMES[name](server)


async def run_until_stopped(rehearsal: Rehearsal) -> Result:
    """Run the rehearsal. SIGTERM stops it like Ctrl-C: cancelled, it still tears every pod
    down (containers would otherwise outlive it)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    try:
        return await rehearsal.run()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@dataclass(frozen=True)
class Plan:
    """One rehearsal to run: from which state to which, how pods run, with which options."""

    source: Workload
    target: Workload
    runtime: Runtime
    options: Options


def rehearse(plan: Plan) -> Result:
    return asyncio.run(
        run_until_stopped(Rehearsal(plan.source, plan.target, plan.runtime, plan.options))
    )


def rehearse_later(plan: Plan, delay: float) -> Result:
    time.sleep(delay)
    return rehearse(plan)


class Background:
    """Rehearsals running side by side, each in a process of its own: the emulated proxies
    relay every byte in their rehearsal's event loop, and one loop serving several rehearsals
    would delay each of them by all the others' work (the proxies of a real cluster are the
    nodes' kernels, and add no such delay)."""

    def __init__(self, plans: list[Plan], delay: float = 0.0) -> None:
        """`delay`: seconds each process waits before its rehearsal starts (so that the
        rehearsal in the foreground starts its pods first)."""
        context = multiprocessing.get_context("spawn")  # no loop, thread or lock carried over
        self.pool = ProcessPoolExecutor(len(plans), mp_context=context)
        self.futures = [self.pool.submit(rehearse_later, plan, delay) for plan in plans]

    def results(self) -> list[Result]:
        """Wait for every one, in the order of the plans."""
        try:
            return [future.result() for future in self.futures]
        finally:
            self.close()

    def close(self) -> None:
        """Cancel what has not started; wait for what runs (each run is bounded in time)."""
        self.pool.shutdown(cancel_futures=True)


def rehearse_side_by_side(plans: list[Plan]) -> list[Result]:
    return Background(plans).results()


def rehearse_and_report(
    source: Workload,
    target: Workload,
    runtime: Runtime,
    options: Options,
    plot: bool = True,
    show: bool = True,
) -> tuple[Result, dict]:
    """Run one rehearsal, print its summary (unless not `show`), write <name>.json (and
    <name>.png)."""
    result = rehearse(Plan(source, target, runtime, options))
    return result, write_report(result, plot, show)


def write_report(result: Result, plot: bool = True, show: bool = True) -> dict:
    """Write <name>.json, <name>-requests.csv (and <name>.png); print the summary."""
    options = result.options
    summary = findings.summarize(result)
    outputs = [
        options.out_dir / f"{options.name}.json",
        options.out_dir / f"{options.name}-requests.csv",
    ]
    findings.write_json(result, summary, outputs[0])
    findings.write_requests(result, outputs[1])
    if plot:
        from tools.rehearsal.report.plot import draw  # matplotlib: 2 s of imports

        outputs.append(draw(result, options.out_dir / f"{options.name}.png"))
    if show:
        print(findings.text(summary))
        print("  output        " + ", ".join(str(path) for path in outputs))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        source, target = load_states(args)
        runtime = make_runtime(args.runtime, args.app)
        options = options_from(args)
        options.validate()
        result, summary = rehearse_and_report(
            source, target, runtime, options, plot=not args.no_plot
        )
    except RehearsalError as error:
        print(f"rehearsal: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("rehearsal: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(findings.last_line(summary))
    if result.ok:
        return EXIT_OK
    return EXIT_ABORTED if result.aborted_as_designed else EXIT_FAILED

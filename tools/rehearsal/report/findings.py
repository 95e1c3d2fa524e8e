"""What a rehearsal found: figures, the text summary, the JSON result file."""

import csv
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from tools.rehearsal.cluster.faults import CRASH, NODE_DRAIN, FaultReport
from tools.rehearsal.manifests.rollout import BlueGreen, Rollout
from tools.rehearsal.report import autoscaling, server
from tools.rehearsal.report.latency import latency, steady_window, window_text
from tools.rehearsal.report.traces import cause, causes
from tools.rehearsal.result import Result
from tools.rehearsal.timeline import PodEvent
from tools.rehearsal.traffic.outcomes import RequestRecord


def emulated(rollout: bool, autoscaled: bool) -> str:
    """What a run emulated: the workload's controller, the HPA (when it ran), the kubelet and
    kube-proxy."""
    parts = [
        "Argo Rollouts controller (its analysis Jobs run for real), ReplicaSet controller"
        if rollout
        else "Deployment controller",
        *(
            ["HorizontalPodAutoscaler and metrics-server (CPU and memory read from each pod's"
             " cgroups)"]
            if autoscaled
            else []
        ),
        "kubelet (probes, preStop, signals)",
        "kube-proxy (Services)" if rollout else "kube-proxy (Service)",
    ]  # fmt: skip
    return "emulated: " + ", ".join(parts)


EMULATED = emulated(rollout=False, autoscaled=True)
EMULATED_ROLLOUTS = emulated(rollout=True, autoscaled=True)
TIMING_ENV = ("DRAIN_SECONDS", "GRACEFUL_TIMEOUT", "KEEPALIVE_SECONDS")
FIRST_FAILURES = 5  # failed requests the text summary traces
POD_MILESTONES = (
    PodEvent.CREATED,
    PodEvent.READY,
    PodEvent.TERMINATING,
    PodEvent.SIGTERM,
    PodEvent.SIGKILL,
    PodEvent.EXITED,
)


def pod_rows(result: Result) -> list[dict]:
    rows = []
    for pod in result.pods:
        row = {
            "name": pod.name,
            "version": pod.version,
            "address": pod.address,
            "restarts": pod.restarts,
        }
        for event in result.events:
            if event.source == pod.name and event.kind in POD_MILESTONES and event.kind not in row:
                row[event.kind] = event.t
        row["exit_codes"] = pod.exit_codes
        row["exit_reasons"] = pod.exit_reasons
        rows.append(row)
    return rows


def per_second(records: list[RequestRecord]) -> dict:
    """Requests started in each second: answered per version, failed per kind."""
    ok: dict[str, Counter] = {}
    failed: dict[str, Counter] = {}
    for record in records:
        second = int(record.started)
        if record.ok:
            ok.setdefault(record.version, Counter())[second] += 1
        else:
            failed.setdefault(record.outcome, Counter())[second] += 1

    def series(table: dict[str, Counter]) -> dict[str, dict[int, int]]:
        return {key: dict(sorted(counts.items())) for key, counts in sorted(table.items())}

    return {"ok_by_version": series(ok), "failed_by_kind": series(failed)}


def by_client(records: list[RequestRecord]) -> dict[str, dict]:
    """Per client model (traffic/profiles.py): requests, failures by kind, and how its kept
    connections fared: requests on a reused one, idle ones found closed by the server before
    reuse (then replaced), requests retried on a new connection."""
    table: dict[str, dict] = {}
    for r in records:
        row = table.setdefault(
            r.client,
            {
                "requests": 0,
                "failed": 0,
                "failures_by_kind": Counter(),
                "reused": 0,
                "found_closed": 0,
                "retried": 0,
            },
        )
        row["requests"] += 1
        row["reused"] += r.reused
        row["found_closed"] += r.dropped
        row["retried"] += r.attempts > 1
        if not r.ok:
            row["failed"] += 1
            row["failures_by_kind"][r.outcome] += 1
    for row in table.values():
        row["failures_by_kind"] = dict(row["failures_by_kind"])
    return table


def summarize(result: Result) -> dict:
    deployment = result.target.deployment
    records = result.records
    failed = result.failed
    duration = result.rollout_duration
    fenceposts = deployment.fenceposts
    template = deployment.template
    old_template = result.source.deployment.template
    return {
        "name": result.name,
        "from": result.source.source,
        "to": result.target.source,
        "from_version": old_template.version,
        "to_version": template.version,
        "runtime": result.runtime,
        "emulated": emulated(result.target.rollout is not None, result.autoscaling is not None),
        "strategy": {
            "type": deployment.strategy_type,
            "replicas": deployment.replicas,
            "final_replicas": result.final_replicas,
            "maxSurge": deployment.max_surge,
            "maxUnavailable": deployment.max_unavailable,
            "resolved_max_surge": fenceposts.max_surge,
            "resolved_max_unavailable": fenceposts.max_unavailable,
            "minReadySeconds": deployment.min_ready_seconds,
            "progressDeadlineSeconds": deployment.progress_deadline_seconds,
            "argo_rollouts": describe_rollout(result.target.rollout),
        },
        "termination": {
            "preStop": old_template.pre_stop.__dict__ if old_template.pre_stop else None,
            "terminationGracePeriodSeconds": old_template.termination_grace,
            "env": {var.name: var.value for var in old_template.env if var.name in TIMING_ENV},
        },
        "propagation_delay_s": result.options.propagation_delay,
        "propagation_jitter_s": result.options.propagation_jitter,
        "network": network_summary(result),
        "capacity_rps": result.capacity,
        "load_rps": result.rate,
        "clients": result.options.clients,
        "by_client": by_client(result.records),
        "requests": len(records),
        "failed": len(failed),
        "failures_by_kind": dict(Counter(r.outcome for r in failed)),
        "failure_causes": failure_causes_of(result),
        # Behind an exposure's proxy, its own log says what failed (the Service saw nothing).
        "first_failures": result.edge.first_errors
        if result.edge
        else [trace.describe() for trace in result.failure_traces[:FIRST_FAILURES]],
        "requests_by_version": dict(Counter(r.version for r in records if r.ok)),
        "final_versions": dict(Counter(result.final_versions)),
        "latency": {
            "steady": latency(records, *steady_window(result)),
            "rollout": latency(records, result.rollout_started, result.settled),
        },
        "rollout": {
            "status": "complete"
            if result.rollout_completed is not None
            else f"failed: {result.rollout_failed}",
            "started_s": result.rollout_started,
            "duration_s": duration,
            "lower_bound_s": result.lower_bound,
            "waves": result.waves,
            "fastest_pod_startup_s": result.startup_seconds,
            "aborted": result.aborted,
            "analyses": [
                {
                    "template": run.template,
                    "service": run.service,
                    "passed": run.passed,
                    "verdict": run.verdict,
                    "seconds": run.seconds,
                }
                for run in result.analyses
            ],
            "new_version_exposure_s": result.new_version_exposure,
            "failure_bound": result.failure_bound,
            "failures_expected": round(result.failure_chance.expected, 1),
            "failures_deviation": round(result.failure_chance.deviation, 1),
        },
        "service": {
            "no_endpoint": result.proxy_no_endpoint,
            "backend_refused": result.proxy_backend_failed,
        },
        "pods": pod_rows(result),
        "faults": [fault_summary(fault, result) for fault in result.faults],
        "notes": result.notes,
        "edge": asdict(result.edge) if result.edge else None,
        "scaling": autoscaling.summary(result),
        "server": server.summary(result),
        "ok": result.ok,
    }


def failure_causes_of(result: Result) -> dict[str, int]:
    """Behind the exposure's proxy, the causes its error log gives (the Service's connection
    traces do not see those requests); else the traces' causes."""
    failed = result.failed
    if result.edge is None:
        return causes(failed, result.failure_traces)
    found = {f"proxy: {cause}": n for cause, n in result.edge.causes.items()}
    unlogged = len(failed) - sum(found.values())
    if unlogged > 0:
        found["not answered by the proxy (between the client and the proxy)"] = unlogged
    return found


def network_summary(result: Result) -> dict:
    """The nodes' views: the lag model, and how late each view of the users' Service was."""
    options = result.options
    users = [view for view in result.views if view.service == result.target.service.name]
    slowest = max(users, key=lambda view: view.max_lag, default=None)
    return {
        "nodes": options.nodes,
        "lag": options.lag.describe(),
        "lag_bound_s": options.lag.bound,
        "endpoint_batch_s": options.batch_period,
        "frozen_views": [asdict(frozen) for frozen in options.frozen_views],
        "slow_views": [asdict(slow) for slow in options.slow_views],
        "max_lag_s": slowest.max_lag if slowest else None,
        "slowest_node": slowest.node if slowest else None,
        "views": [asdict(view) for view in result.views],
    }


def describe_network(network: dict) -> str:
    line = (
        f"{network['nodes']} node(s), endpoint lag {network['lag']}, EndpointSlice batch"
        f" {network['endpoint_batch_s']:g}s"
    )
    line += "".join(
        f"; node {slow['node']} lags {slow['seconds']:g}s" for slow in network["slow_views"]
    )
    line += "".join(
        f"; node {f['node']} frozen {f['start']:g}s into the rollout for {f['seconds']:g}s"
        for f in network["frozen_views"]
    )
    if network["max_lag_s"] is not None:
        line += f"; slowest view: node {network['slowest_node']}, {network['max_lag_s']:.2f}s"
    return line


def fault_summary(fault: FaultReport, result: Result) -> dict:
    """A fault, with the failed requests it explains: those whose connection was on its pod."""
    summary = asdict(fault)
    on_pod = [t for t in result.failure_traces if t.connection and t.connection.pod in fault.pods]
    summary["failed_on_its_pods"] = len(on_pod)
    summary["failed_elsewhere"] = len(result.failed) - len(on_pod)
    summary["causes_on_its_pods"] = dict(Counter(cause(t.request, t.connection) for t in on_pod))
    return summary


def describe_rollout(rollout: Rollout | None) -> str:
    """An Argo Rollouts strategy in one phrase; "" for a Deployment."""
    if rollout is None:
        return ""
    strategy = rollout.strategy
    if isinstance(strategy, BlueGreen):
        analysis = "pre-promotion analysis, " if strategy.pre_promotion_analysis else ""
        return (
            f"Argo Rollouts blue-green ({strategy.active_service} <- {strategy.preview_service},"
            f" {analysis}scale-down delay {strategy.scale_down_delay:g}s):"
        )
    steps = []
    for step in strategy.steps:
        if step.weight is not None:
            steps.append(f"{step.weight}%")
        elif step.pause is not None:
            steps.append(f"pause {step.pause:g}s")
        else:
            steps.append("analysis")
    return f"Argo Rollouts canary ({', '.join(steps)}):"


def describe_fault(fault: dict) -> str:
    pods = ", ".join(fault["pods"]) or "-"
    if fault["kind"] == CRASH:
        return (
            f"crash at {fault['at']:.2f}s: SIGKILL to {pods} with {fault['open_connections']}"
            f" connection(s) open on it; {fault['failed_on_its_pods']} request(s) failed on it"
            + "".join(f", {n} {c}" for c, n in fault["causes_on_its_pods"].items())
            + f"; {fault['failed_elsewhere']} elsewhere {fault['note']}".rstrip()
        )
    if fault["kind"] == NODE_DRAIN:
        return (
            f"node drain at {fault['at']:.2f}s: {len(fault['pods'])} pod(s) evicted,"
            f" {fault['refused']} eviction(s) refused by the PodDisruptionBudget;"
            f" {fault['failed_on_its_pods']} request(s) failed on evicted pods"
        )
    deleted = "deleted while it ran" if fault["deleted_while_running"] else "not deleted meanwhile"
    return (
        f"slow request from {fault['at']:.2f}s: {fault['outcome']} after {fault['seconds']:.2f}s,"
        f" served by {pods} ({deleted})"
    )


def failure_causes(summary: dict) -> dict[str, int]:
    """Failed requests by cause (traces.cause), most frequent first."""
    return summary["failure_causes"]


def write_json(result: Result, summary: dict, path: Path) -> None:
    document = {
        **summary,
        "per_second": per_second(result.records),
        # Each failed request (the first 1000) with its connection and its pod's log.
        "failed_requests": [
            {"cause": cause(trace.request, trace.connection), **asdict(trace)}
            for trace in result.failure_traces
        ],
        "events": [event.__dict__ for event in result.events],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def write_requests(result: Result, path: Path) -> None:
    """Every request: start (s since the run began), latency, outcome, version, client kind."""
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["t_s", "latency_ms", "outcome", "version", "client"])
        for r in result.records:
            writer.writerow(
                [f"{r.started:.4f}", f"{r.latency * 1000:.2f}", r.outcome, r.version, r.client]
            )


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def last_line(summary: dict) -> str:
    return (
        f"{summary['from_version']} -> {summary['to_version']}: "
        f"{summary['requests']} requests, {summary['failed']} failed"
    )


def text(summary: dict) -> str:
    strategy = summary["strategy"]
    rollout = summary["rollout"]
    steady, during = summary["latency"]["steady"], summary["latency"]["rollout"]
    pre_stop = summary["termination"]["preStop"]
    load = f"{summary['load_rps']:.0f} req/s"
    if summary["capacity_rps"]:
        share = summary["load_rps"] / summary["capacity_rps"]
        load += f" ({share:.0%} of the {summary['capacity_rps']:.0f} req/s measured)"
    if rollout["duration_s"] is None:
        timing = rollout["status"]
    else:
        ratio = (
            rollout["duration_s"] / rollout["lower_bound_s"]
            if rollout["lower_bound_s"]
            else float("nan")
        )
        timing = (
            f"complete in {rollout['duration_s']:.1f}s; "
            f"lower bound {rollout['lower_bound_s']:.1f}s "
            f"({rollout['waves']} waves x ({rollout['fastest_pod_startup_s']:.1f}s start-up + "
            f"{strategy['minReadySeconds']:g}s minReadySeconds)) -> {ratio:.2f}x"
        )
    failures = ", ".join(f"{kind} {n}" for kind, n in sorted(summary["failures_by_kind"].items()))
    lines = [
        f"== {summary['name']}: {summary['from']} -> {summary['to']} "
        f"({summary['runtime']} runtime) ==",
        f"  {summary['emulated']}",
        f"  strategy      {strategy['argo_rollouts'] or strategy['type']} "
        f"maxSurge {strategy['maxSurge']} -> {strategy['resolved_max_surge']}, "
        f"maxUnavailable {strategy['maxUnavailable']} -> {strategy['resolved_max_unavailable']} "
        f"({replicas_text(strategy)}), minReadySeconds {strategy['minReadySeconds']:g}, "
        f"progressDeadlineSeconds {strategy['progressDeadlineSeconds']:g}",
        "  termination   "
        + ", ".join(
            [
                f"preStop {describe_pre_stop(pre_stop)}",
                "terminationGracePeriodSeconds "
                f"{summary['termination']['terminationGracePeriodSeconds']:g}",
                *(f"{k} {v}" for k, v in summary["termination"]["env"].items()),
            ]
        ),
        f"  network       {describe_network(summary['network'])}",
        *edge_lines(summary["edge"]),
        f"  load          {load}, clients: "
        + ", ".join(f"{n} {model}" for model, n in summary["clients"].items() if n),
        *client_lines(summary["by_client"]),
        f"  requests      {summary['requests']}: "
        + ", ".join(f"{v or '?'} {n}" for v, n in sorted(summary["requests_by_version"].items())),
        f"  failed        {summary['failed']}{' (' + failures + ')' if failures else ''}",
        *(f"    {n:>6}  {cause}" for cause, n in failure_causes(summary).items()),
        *(f"    trace   {line}" for line in summary["first_failures"]),
        f"  latency       p50/p99 steady {ms(steady['p50_ms'])}/{ms(steady['p99_ms'])} ms"
        f" ({window_text(steady)}), during rollout {ms(during['p50_ms'])}/"
        f"{ms(during['p99_ms'])} ms ({window_text(during)})",
        f"  rollout       {timing}",
        *(
            f"  analysis      {a['template']} against {a['service']}: {a['verdict']}"
            f" ({a['seconds']:.1f}s)"
            for a in rollout["analyses"]
        ),
        *(
            [
                f"  aborted       {rollout['aborted']}: {summary['failed']} failed,"
                f" bound {rollout['failure_bound']}: expected {rollout['failures_expected']:.0f}"
                f" +- {rollout['failures_deviation']:.0f} (every connection opened while the"
                f" new version was in its node's view, with all its requests; its share of the"
                f" Service for {rollout['new_version_exposure_s']:.2f}s), plus 3 deviations"
            ]
            if rollout["aborted"]
            else []
        ),
        "  final pods    " + ", ".join(f"{n} x {v}" for v, n in summary["final_versions"].items()),
        "  pods          created  ready  termin.  SIGTERM  exited  restarts",
    ]
    for pod in summary["pods"]:
        cells = [
            pod.get(k)
            for k in (PodEvent.CREATED, PodEvent.READY, PodEvent.TERMINATING, PodEvent.SIGTERM)
        ]
        exited = pod.get(PodEvent.EXITED)
        lines.append(
            f"    {pod['name']:<34} {pod['version']:<4} "
            + " ".join(f"{c:7.2f}" if c is not None else "      -" for c in cells)
            + (f" {exited:7.2f}" if exited is not None else "       -")
            + f"  {pod['restarts']}"
            + (f" ({', '.join(sorted(set(pod['exit_reasons'])))})" if pod["restarts"] else "")
        )
    lines += autoscaling.text_lines(summary["scaling"])
    lines += server.text_lines(summary["server"])
    lines += [f"  fault         {describe_fault(fault)}" for fault in summary["faults"]]
    lines += [f"  note          {note}" for note in summary["notes"]]
    return "\n".join(lines)


def replicas_text(strategy: dict) -> str:
    final = strategy["final_replicas"]
    if final is None or final == strategy["replicas"]:
        return f"{strategy['replicas']} replicas"
    return f"{strategy['replicas']} replicas in the manifest, {final} at the end"


def edge_lines(edge: dict | None) -> list[str]:
    if edge is None:
        return []
    return [f"  from outside  {edge['proxy']}; upstreams from {edge['view']}"]


def client_lines(table: dict[str, dict]) -> list[str]:
    lines = ["  by client     requests   failed   reused  found closed  retried"]
    for model, row in table.items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(row["failures_by_kind"].items()))
        lines.append(
            f"    {model:<16}{row['requests']:>7} {row['failed']:>8} {row['reused']:>8}"
            f" {row['found_closed']:>13} {row['retried']:>8}" + (f"  ({kinds})" if kinds else "")
        )
    return lines


def describe_pre_stop(pre_stop: dict | None) -> str:
    if pre_stop is None:
        return "none"
    if pre_stop["action"] == "sleep":
        return f"sleep {pre_stop['seconds']:g}s"
    if pre_stop["action"] == "exec":
        return "exec " + " ".join(pre_stop["command"])
    return f"httpGet {pre_stop['path']}"

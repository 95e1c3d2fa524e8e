"""What the HorizontalPodAutoscaler did in a run, and the replicas it moved: each sync with the
utilization it read and its decision, each rescale with its reason as `kubectl describe hpa`
lists the event, every ReplicaSet's spec.replicas over time, every pod's CPU and memory as
metrics-server served it, and `kubectl top pods` after the last scrape."""

from tools.rehearsal.cluster.autoscaling.describe import metric_line
from tools.rehearsal.cluster.autoscaling.status import Reconcile
from tools.rehearsal.manifests.autoscaler import HorizontalPodAutoscaler
from tools.rehearsal.result import Result


def describe_hpa(hpa: HorizontalPodAutoscaler) -> str:
    targets = []
    for metric in hpa.metrics:
        target = metric.target
        if target.average_utilization is not None:
            targets.append(f"{metric.resource} {target.average_utilization}% of request")
        else:
            targets.append(f"{metric.resource} {target.average_value / 1000:g} per pod")
    return f"{hpa.min_replicas}-{hpa.max_replicas} pods, {', '.join(targets)}"


def metrics_text(hpa: HorizontalPodAutoscaler, sync: Reconcile) -> str:
    return "; ".join(
        metric_line(metric, status)
        for metric, status in zip(hpa.metrics, sync.metric_statuses, strict=False)
    )


def summary(result: Result) -> dict:
    replica_sets = [
        {
            "name": rs.name,
            "version": rs.version,
            "owner": rs.owner,
            "replicas": [[resize.t, resize.replicas] for resize in rs.resizes],
            "pods": rs.pods,
        }
        for rs in result.replica_sets
    ]
    scaling = result.autoscaling
    if scaling is None:
        return {"replica_sets": replica_sets, "autoscaler": None}
    hpa = scaling.hpa
    syncs = [
        {
            "t": sync.t,
            "current": sync.current_replicas,
            "desired": sync.desired_replicas,
            "recommended": sync.recommended,
            "metrics": metrics_text(hpa, sync),
            "rescaled": sync.rescaled,
            "reason": sync.reason,
            "error": sync.error,
        }
        for sync in scaling.syncs
    ]
    return {
        "replica_sets": replica_sets,
        "autoscaler": {
            "name": hpa.name,
            "target": scaling.target,
            "describe_spec": describe_hpa(hpa),
            "sync_period_s": scaling.sync_period,
            "metric_resolution_s": scaling.resolution,
            "syncs": syncs,
            "rescales": [sync for sync in syncs if sync["rescaled"]],
            "peak_replicas": max((sync["desired"] for sync in syncs), default=None),
            "usage": [
                {
                    "t": sample.t,
                    "pod": sample.pod,
                    "cpu_m": sample.cpu,
                    "memory_bytes": sample.memory,
                    "window_s": sample.window,
                }
                for sample in scaling.usage
            ],
            "describe": scaling.describe,
            "top": scaling.top,
        },
    }


def text_lines(scaling: dict) -> list[str]:
    lines = []
    hpa = scaling["autoscaler"]
    if hpa is not None:
        lines.append(
            f"  autoscaler    HorizontalPodAutoscaler {hpa['name']} on {hpa['target']}:"
            f" {hpa['describe_spec']}; syncs every {hpa['sync_period_s']:g}s, metrics-server"
            f" every {hpa['metric_resolution_s']:g}s; {len(hpa['syncs'])} syncs,"
            f" {len(hpa['rescales'])} rescale(s)"
        )
        for sync in hpa["rescales"]:
            lines.append(
                f"    {sync['t']:7.2f}s  {sync['current']} -> {sync['desired']}  New size:"
                f" {sync['desired']}; reason: {sync['reason']} ({sync['metrics']},"
                f" recommended {sync['recommended']})"
            )
        if hpa["syncs"]:
            last = hpa["syncs"][-1]
            lines.append(
                f"    last sync {last['t']:.2f}s: {last['metrics']}, {last['current']} pods"
                + (f" ({last['error']})" if last["error"] else "")
            )
    for rs in scaling["replica_sets"]:
        steps = " -> ".join(f"{n} at {t:.1f}s" for t, n in rs["replicas"]) or "0"
        lines.append(f"  replicas      {rs['name']} {rs['version']} ({rs['owner']}): {steps}")
    if hpa is not None and hpa["top"]:
        lines.append("  top pods      after the last scrape, as `kubectl top pods` prints it:")
        lines += [f"    {line}" for line in hpa["top"].splitlines()]
    return lines

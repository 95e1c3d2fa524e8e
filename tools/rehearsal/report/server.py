"""What the pods' server did when it was stopped, measured from outside (cluster/node/shutdown.py),
the endpoint lag its termination tolerates, and the timings that would lose nothing against the
run's lag model.

A pod keeps accepting new connections for its preStop hook, then until the server stops
accepting after SIGTERM: a node whose rules learn of the pod's deletion later than that sends new
connections to a pod that refuses them, or, once it is gone, to an address no one answers. The
preStop sleep that covers the lag model's bound closes that gap; the grace period must then leave
the server the time it took to exit.
"""

import math
import statistics

from tools.rehearsal import tolerance
from tools.rehearsal.cluster.node.shutdown import IDLE_CLOSED, IDLE_CLOSED_BEFORE, IDLE_RESET
from tools.rehearsal.result import Result
from tools.rehearsal.traffic.outcomes import CUT_MID_RESPONSE
from tools.validate.workload import QUIET_HOOK_PATH

EXIT_MARGIN = 5.0  # seconds of grace beyond the slowest exit measured


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summary(result: Result) -> dict | None:
    stops = [stop for stop in result.server_stops if stop is not None]
    if not stops:
        return None
    # The pods a rollout stops are the old ones (an aborted one stops the new: then the target's).
    workload = result.source if result.rollout_completed is not None else result.target
    template = workload.deployment.template
    hook = template.pre_stop
    pre_stop = [-stop.deleted for stop in stops]
    accepting = [s.stopped_accepting for s in stops if s.stopped_accepting is not None]
    exits = [s.exited for s in stops if s.exited is not None]
    idle = {}
    for stop in stops:
        idle[stop.idle_connection] = idle.get(stop.idle_connection, 0) + 1
    closes = [s.idle_closed for s in stops if s.idle_closed is not None]
    # The window after deletion in which new connections are still accepted.
    quiet_hook = hook is not None and hook.action == "http" and hook.path == QUIET_HOOK_PATH
    if quiet_hook:
        # The app's hook waits while traffic arrives, up to its maximum: its contract, not the
        # quiet run's few seconds. Its maximum, not a sleep, is what to size (zdt soak).
        tolerated = tolerance.of(template, workload.source).seconds
    else:
        tolerated = min(pre_stop) + (min(accepting) if accepting else 0.0)
    bound = max(lag.bound for lag in result.options.node_lags())
    recommended = None
    if tolerated < bound and not quiet_hook:
        sleep = math.ceil(bound - (min(accepting) if accepting else 0.0))
        recommended = {
            "preStop_sleep_s": sleep,
            "grace_s": math.ceil(sleep + (max(exits) if exits else 0.0) + EXIT_MARGIN),
        }
    on_stopped = {stop.pod for stop in stops}
    cut = [
        trace
        for trace in result.failure_traces
        if trace.connection
        and trace.connection.pod in on_stopped
        and trace.request.outcome == CUT_MID_RESPONSE
    ]
    return {
        "pods": len(stops),
        "hook": hook.action if hook else None,
        "in_flight_cut": len(cut),
        "pre_stop_s": median(pre_stop),
        "stopped_accepting_s": median(accepting),
        "never_stopped_accepting": len(stops) - len(accepting),
        "idle_connection": idle,
        "idle_closed_s": median(closes),
        "idle_notice": any(s.idle_closed_with_notice for s in stops),
        "exited_s": median(exits),
        "slowest_exit_s": max(exits) if exits else None,
        "tolerated_lag_s": round(tolerated, 3),
        "quiet_hook": quiet_hook,
        "lag_bound_s": bound,
        "recommended": recommended,
    }


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def text_lines(server: dict | None) -> list[str]:
    if server is None:
        return []
    idle = ", ".join(f"{outcome} {n}" for outcome, n in server["idle_connection"].items())
    lines = [
        f"  server stop   measured on {server['pods']} pod(s), from outside: "
        + (
            f"preStop {server['hook']} took {seconds(server['pre_stop_s'])}"
            if server["hook"]
            else "no preStop hook"
        )
        + "; after the stop signal it stopped accepting at"
        f" {seconds(server['stopped_accepting_s'])} and exited at"
        f" {seconds(server['exited_s'])} (slowest {seconds(server['slowest_exit_s'])});"
        f" requests cut mid-answer on these pods: {server['in_flight_cut']}",
        f"  idle conn.    a kept-alive connection left idle: {idle}"
        + (
            f" ({seconds(server['idle_closed_s'])} after the stop signal)"
            if server["idle_closed_s"] is not None
            else ""
        ),
    ]
    cut = {IDLE_CLOSED, IDLE_RESET} & set(server["idle_connection"])
    if cut and not server["idle_notice"]:
        lines.append(
            "                the server closes idle kept-alive connections when stopped, without"
            " a `Connection: close` first: a client that reuses one loses a request whatever the"
            " timings, every time if it does not check the connection first, and when its"
            " request crosses the close if it does"
        )
    elif IDLE_CLOSED_BEFORE in server["idle_connection"] and server["idle_notice"]:
        lines.append("                after an answer that said `Connection: close`")
    lines.append(
        f"  contract      accepts new connections for {server['tolerated_lag_s']:g} s after the"
        f" pod's deletion: tolerates endpoint lag up to that; this run's lag model reaches"
        f" {server['lag_bound_s']:g} s"
    )
    if server["quiet_hook"] and server["tolerated_lag_s"] < server["lag_bound_s"]:
        lines.append(
            "                the app's preStop hook waits while traffic arrives, up to"
            " PRESTOP_MAX_SECONDS: `zdt soak` sizes it against the lag model's tail"
            " (docs/shutdown.md)"
        )
    recommended = server["recommended"]
    if recommended:
        lines.append(
            f"  recommended   lifecycle.preStop.sleep.seconds {recommended['preStop_sleep_s']},"
            f" terminationGracePeriodSeconds {recommended['grace_s']} (the preStop, the slowest"
            f" exit and {EXIT_MARGIN:g} s)"
        )
    return lines

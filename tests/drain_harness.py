"""Send SIGTERM to a server under load and list every way its drain breaks the contract.

The contract, for a server started with DRAIN_SECONDS=d and GRACEFUL_TIMEOUT=g:
- /ready answers 5xx within 1 s of SIGTERM, from every worker;
- /status keeps answering 200 for the whole drain window, on new and kept-alive connections;
- kept-alive clients are told `Connection: close` during the drain;
- a request in flight when SIGTERM arrives, lasting longer than g alone, completes with 200;
- the process exits 0 within d + g + a small margin.
The same harness runs against the naive fixture app and must find problems there.
"""

import http.client
import signal
import threading
import time
from dataclasses import dataclass, field

import requests

from tools.serverprocess import ServerProcess

READY_WITHIN = 1.0
EXIT_MARGIN = 3.0
# Load stops this long before the drain ends: afterwards the listeners close, and in a cluster
# the Service stopped sending new connections long before.
LOAD_STOP_BEFORE_DRAIN_END = 0.5


@dataclass
class Outcome:
    at: float
    status: int | None  # None: the connection failed
    error: str = ""
    connection: str = ""
    worker: str = ""


@dataclass
class DrainReport:
    problems: list[str] = field(default_factory=list)
    status_requests: int = 0
    keepalive_requests: int = 0
    probes: int = 0


def _new_connection_get(server: ServerProcess, path: str) -> Outcome:
    started = time.monotonic()
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return Outcome(started, response.status, worker=response.getheader("X-Worker-Pid", ""))
    except OSError as error:
        return Outcome(started, None, error=type(error).__name__)
    finally:
        connection.close()


def _keepalive_get(session: requests.Session, url: str) -> Outcome:
    started = time.monotonic()
    try:
        response = session.get(url, timeout=10)
        return Outcome(
            started, response.status_code, connection=response.headers.get("Connection", "")
        )
    except requests.RequestException as error:
        return Outcome(started, None, error=type(error).__name__)


def check_drain(
    server: ServerProcess,
    *,
    drain_seconds: float,
    graceful_timeout: float,
    clients: int = 3,
    keepalive_clients: int = 2,
) -> DrainReport:
    workers = server.worker_pids()
    stop_at: list[float] = []  # set once SIGTERM is sent
    stop = threading.Event()
    results: dict[str, list[Outcome]] = {"status": [], "probe": [], "slow": []}
    keepalive_results: list[list[Outcome]] = [[] for _ in range(keepalive_clients)]

    def until_stopped(action, sink):
        while not stop.is_set() and not (stop_at and time.monotonic() >= stop_at[0]):
            sink.append(action())

    def keepalive_loop(sink):
        with requests.Session() as session:
            until_stopped(lambda: _keepalive_get(session, server.url + "/status"), sink)

    threads = [
        threading.Thread(
            target=until_stopped,
            args=(lambda: _new_connection_get(server, "/status"), results["status"]),
        )
        for _ in range(clients)
    ]
    threads += [threading.Thread(target=keepalive_loop, args=(sink,)) for sink in keepalive_results]
    threads.append(
        threading.Thread(
            target=until_stopped,
            args=(lambda: _new_connection_get(server, "/ready"), results["probe"]),
        )
    )
    slow_seconds = graceful_timeout + 1
    slow = threading.Thread(
        target=lambda: results["slow"].append(
            _new_connection_get(server, f"/status?delay={slow_seconds}")
        )
    )
    try:
        for thread in [*threads, slow]:
            thread.start()
        _wait_for(lambda: results["status"] and results["probe"], timeout=10)
        sigterm_at = time.monotonic()
        server.signal(signal.SIGTERM)
        stop_at.append(sigterm_at + drain_seconds - LOAD_STOP_BEFORE_DRAIN_END)
        for thread in threads:
            thread.join(drain_seconds + 15)
    finally:
        stop.set()
    exit_limit = drain_seconds + graceful_timeout + EXIT_MARGIN
    exit_code = server.wait(timeout=max(0.0, sigterm_at + exit_limit - time.monotonic()))
    exited_after = time.monotonic() - sigterm_at
    slow.join(5)

    report = DrainReport(
        status_requests=len(results["status"]),
        keepalive_requests=sum(len(sink) for sink in keepalive_results),
        probes=len(results["probe"]),
    )
    problems = report.problems

    after = [o for o in results["probe"] if o.at >= sigterm_at]
    not_ready = [o for o in after if o.status is not None and o.status >= 500]
    if not not_ready or not_ready[0].at - sigterm_at > READY_WITHIN:
        problems.append(f"/ready did not answer 5xx within {READY_WITHIN}s of SIGTERM")
    missing = {str(pid) for pid in workers} - {o.worker for o in not_ready}
    if missing:
        problems.append(f"workers {sorted(missing)} never answered /ready with 5xx while draining")
    failed_probes = [o for o in after if o.status is None]
    if failed_probes:
        problems.append(f"{len(failed_probes)} readiness probes could not connect while draining")

    all_status = results["status"] + [o for sink in keepalive_results for o in sink]
    failed = [o for o in all_status if o.status != 200]
    if failed:
        kinds = sorted({o.error or str(o.status) for o in failed})
        problems.append(f"{len(failed)} of {len(all_status)} /status requests failed: {kinds}")
    for number, sink in enumerate(keepalive_results):
        if not any(o.connection.lower() == "close" for o in sink if o.at >= sigterm_at):
            problems.append(f"keep-alive client {number} was never sent 'Connection: close'")

    if not results["slow"] or results["slow"][0].status != 200:
        outcome = results["slow"][0] if results["slow"] else None
        what = "no answer" if outcome is None else outcome.error or outcome.status
        problems.append(f"the {slow_seconds}s request in flight at SIGTERM was cut ({what})")
    if exit_code is None:
        problems.append(f"still running {exit_limit:.1f}s after SIGTERM")
    elif exit_code != 0:
        problems.append(f"exited with {exit_code} after {exited_after:.1f}s")
    return report


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("load did not start")
        time.sleep(0.01)

"""The real server: `python -m app` under gunicorn, real signals, real sockets on loopback."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.drain_harness import EXIT_MARGIN, check_drain
from tools.repo import ROOT

DRAIN = 2.5
GRACEFUL = 3
TIMINGS = {"DRAIN_SECONDS": str(DRAIN), "GRACEFUL_TIMEOUT": str(GRACEFUL), "WEB_CONCURRENCY": "2"}


def wait_for_ready_status(server, status: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if requests.get(server.url + "/ready", timeout=5).status_code == status:
            return True
        time.sleep(0.01)
    return False


def test_drain_loses_no_request(start_server):
    server = start_server("app", APP_VERSION="v1", **TIMINGS)
    report = check_drain(server, drain_seconds=DRAIN, graceful_timeout=GRACEFUL)
    assert report.problems == []
    assert report.status_requests > 20 and report.keepalive_requests > 20


def test_the_same_check_fails_on_the_naive_design(start_server):
    server = start_server("naive", APP_VERSION="v1", **TIMINGS)
    report = check_drain(server, drain_seconds=DRAIN, graceful_timeout=GRACEFUL)
    problems = "\n".join(report.problems)
    assert "request in flight at SIGTERM was cut" in problems
    assert "never sent 'Connection: close'" in problems


def test_ready_turns_503_in_every_worker_and_status_keeps_serving(start_server):
    server = start_server("app", APP_VERSION="v7", DRAIN_SECONDS="30", WEB_CONCURRENCY="3")
    workers = {str(pid) for pid in server.worker_pids()}
    server.signal(signal.SIGTERM)
    assert wait_for_ready_status(server, 503, within=1.0)
    seen: set[str] = set()
    deadline = time.monotonic() + 10
    while seen != workers and time.monotonic() < deadline:
        response = requests.get(server.url + "/ready", headers={"Connection": "close"}, timeout=5)
        assert (response.status_code, response.text) == (503, "draining\n")
        seen.add(response.headers["X-Worker-Pid"])
    assert seen == workers
    status = requests.get(server.url + "/status", timeout=5)
    assert (status.status_code, status.text) == (200, "OK v7\n")
    assert status.headers["Connection"] == "close"
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    server.signal(signal.SIGINT)
    assert server.wait(timeout=10) is not None


def test_second_sigterm_during_the_drain_stops_gracefully_at_once(start_server):
    server = start_server("app", DRAIN_SECONDS="60", GRACEFUL_TIMEOUT="5")
    server.signal(signal.SIGTERM)
    assert wait_for_ready_status(server, 503, within=1.0)
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def wait_for(condition, within: float):
    """Poll until `condition()` returns something true, and return it."""
    deadline = time.monotonic() + within
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within}s")
        time.sleep(0.01)
    return result


def proc_status(pid: int, field: str) -> str:
    """A field of /proc/PID/status, e.g. Threads or SigCgt (the signals it has handlers for)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return value.strip()
    raise KeyError(field)


def handles(pid: int, signum: int) -> bool:
    return bool(int(proc_status(pid, "SigCgt"), 16) >> (signum - 1) & 1)


def test_the_master_drains_without_a_thread(start_server):
    # The master forks a new worker whenever one dies, also while draining: a thread there
    # would make that a fork of a process with threads.
    server = start_server("app", DRAIN_SECONDS="30", GRACEFUL_TIMEOUT="5")
    assert proc_status(server.pid, "Threads") == "1"

    server.signal(signal.SIGTERM)
    assert wait_for_ready_status(server, 503, within=1.0)
    wait_for(lambda: "SIGTERM: draining for 30.0s" in server.stderr(), within=5)

    assert proc_status(server.pid, "Threads") == "1"
    # The drain timer's SIGALRM is the master's; a worker keeps the default.
    assert handles(server.pid, signal.SIGALRM)
    assert not [pid for pid in server.worker_pids() if handles(pid, signal.SIGALRM)]
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_a_worker_killed_during_the_drain_is_replaced_and_the_drain_ends_on_time(start_server):
    server = start_server("app", **TIMINGS)
    workers = server.worker_pids()
    sigterm_at = time.monotonic()
    server.signal(signal.SIGTERM)
    assert wait_for_ready_status(server, 503, within=1.0)

    os.kill(min(workers), signal.SIGKILL)
    (replacement,) = wait_for(lambda: server.worker_pids() - workers, within=DRAIN)

    def ready_status_from_the_replacement() -> int | None:
        response = requests.get(server.url + "/ready", headers={"Connection": "close"}, timeout=5)
        return (
            response.status_code if response.headers["X-Worker-Pid"] == str(replacement) else None
        )

    # Forked after the shared flag was set, the replacement drains too.
    assert wait_for(ready_status_from_the_replacement, within=DRAIN) == 503
    limit = DRAIN + GRACEFUL + EXIT_MARGIN
    assert server.wait(timeout=sigterm_at + limit - time.monotonic()) == 0
    assert time.monotonic() - sigterm_at >= DRAIN


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_sigint_and_sigquit_stop_quickly_without_draining(start_server, signum):
    server = start_server("app", DRAIN_SECONDS="60", GRACEFUL_TIMEOUT="60")
    server.signal(signum)
    assert server.wait(timeout=10) == 0


def test_access_log_is_one_json_line_per_request(start_server):
    server = start_server("app", APP_VERSION="v3", HOSTNAME="web-abc")
    requests.get(server.url + "/status", timeout=5)
    requests.get(server.url + "/missing", timeout=5)
    server.signal(signal.SIGINT)
    server.wait(timeout=10)
    lines = [line for line in server.stdout().splitlines() if '"request"' in line]
    assert any(
        '"path": "/status", "status": 200' in line and '"pod": "web-abc"' in line for line in lines
    )
    assert any('"path": "/missing", "status": 404' in line for line in lines)
    assert not any('"path": "/ready"' in line for line in lines)  # probes log at debug level


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("WEB_CONCURRENCY", "0"),
        ("DRAIN_SECONDS", "-1"),
        ("GRACEFUL_TIMEOUT", "soon"),
        ("APP_VERSION", "v 1"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_invalid_setting_refuses_to_start_naming_the_variable(name, value):
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"app: invalid setting: {name} ")
    assert repr(value) in lines[0] or value in lines[0]

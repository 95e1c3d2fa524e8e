"""The broken-release fixture (tools/fixtures/broken/): the app, failing /status on purpose.

Real processes: `python -m tools.fixtures.broken` under the app's own gunicorn configuration.
"""

import math
import subprocess
import sys
from collections import Counter
from fractions import Fraction

import pytest
import requests

from tests.drain_harness import check_drain
from tools.fixtures.broken.app import FailureSchedule, fail_fraction
from tools.repo import ROOT
from tools.servers import server_module

DRAIN = 2.5
GRACEFUL = 3
TIMINGS = {"DRAIN_SECONDS": str(DRAIN), "GRACEFUL_TIMEOUT": str(GRACEFUL), "WEB_CONCURRENCY": "2"}


def get(server, path: str) -> requests.Response:
    # A new connection per request, so that both workers serve some.
    return requests.get(server.url + path, headers={"Connection": "close"}, timeout=10)


def test_broken_is_ready_and_healthy_but_fails_every_status_request(start_server):
    server = start_server("broken", APP_VERSION="v2", WEB_CONCURRENCY="2")
    ready = get(server, "/ready")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert get(server, "/healthz").status_code == 200

    answers = [get(server, "/status") for _ in range(40)]
    assert {(a.status_code, a.text) for a in answers} == {(500, "500 Internal Server Error\n")}
    assert {a.headers["X-App-Version"] for a in answers} == {"v2"}
    # The failures are the app's own answers, so its metrics count them.
    metrics = get(server, "/metrics").text
    assert 'http_requests_total{method="GET",path="/status",status="500"} 40.0' in metrics


def test_a_fraction_of_status_requests_fails_on_a_fixed_schedule(start_server):
    server = start_server("broken", FAIL_FRACTION="0.05", WEB_CONCURRENCY="2")
    served: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for _ in range(1000):
        response = get(server, "/status")
        worker = response.headers["X-Worker-Pid"]
        served[worker] += 1
        if response.status_code != 200:
            assert response.status_code == 500
            failed[worker] += 1
    # Each worker fails exactly every 20th /status request it serves, so 5 % of the 1000 less
    # at most one per worker.
    assert {w: failed[w] for w in served} == {w: n // 20 for w, n in served.items()}
    assert 50 - len(served) < sum(failed.values()) <= 50


def test_broken_drains_like_the_app(start_server):
    server = start_server("broken", **TIMINGS)
    report = check_drain(server, drain_seconds=DRAIN, graceful_timeout=GRACEFUL)
    status_requests = report.status_requests + report.keepalive_requests
    # Only the /status answers break the contract, every one a 500 (none refused, reset or cut),
    # and the slow request is a 500 answered at once. Everything about the drain holds: /ready
    # 503 in every worker, `Connection: close`, the exit code and its time.
    assert report.problems == [
        f"{status_requests} of {status_requests} /status requests failed: ['500']",
        f"the {GRACEFUL + 1}s request in flight at SIGTERM was cut (500)",
    ]
    assert report.status_requests > 20 and report.keepalive_requests > 20


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("often", "FAIL_FRACTION must be a number, got 'often'"),
        ("1.5", "FAIL_FRACTION must be between 0 and 1, got 1.5"),
        ("-0.1", "FAIL_FRACTION must be between 0 and 1, got -0.1"),
    ],
)
def test_an_invalid_fraction_refuses_to_start(value, message):
    result = subprocess.run(
        [sys.executable, "-m", server_module("broken")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "FAIL_FRACTION": value},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"broken: invalid setting: {message}"]


@pytest.mark.parametrize("raw", ["0", "0.05", "0.3", "1/3", "1"])
def test_the_schedule_fails_the_exact_fraction_of_any_prefix(raw):
    fraction = fail_fraction({"FAIL_FRACTION": raw})
    schedule = FailureSchedule(fraction)
    failures = 0
    for number in range(1, 1001):
        failures += schedule.next_fails()
        assert failures == math.floor(number * fraction)


def test_the_fraction_is_exact_and_defaults_to_every_request():
    assert fail_fraction({}) == 1
    assert fail_fraction({"FAIL_FRACTION": " "}) == 1
    assert fail_fraction({"FAIL_FRACTION": "0.05"}) == Fraction(1, 20)
    schedule = FailureSchedule(Fraction(1, 20))
    assert [n for n in range(1, 101) if schedule.next_fails()] == [20, 40, 60, 80, 100]

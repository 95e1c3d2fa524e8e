"""The preStop hook that waits until traffic has left the pod: its rule with an injected clock,
then the real server under gunicorn, its hook served by one worker while the other serves the
traffic it waits for."""

import threading
import time

import pytest
import requests

from app.quiescence import Arrivals, HookTiming, Quiet, counts_as_traffic, wait_until_quiet
from tools.serverprocess import ServerProcess


class Clock:
    """Time that moves only when the hook sleeps; `arrivals` are the times requests arrive (the
    pod in service since `first`, before the hook starts at 0)."""

    def __init__(self, arrivals: list[float] = (), first: float | None = -1000.0) -> None:
        self.now = 0.0
        self.arrivals = sorted(arrivals)
        self.served_from = first

    def first(self) -> float | None:
        past = [t for t in self.arrivals if t <= self.now]
        return self.served_from if self.served_from is not None else (past[0] if past else None)

    def last(self) -> float:
        past = [t for t in self.arrivals if t <= self.now]
        return past[-1] if past else -1000.0

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def wait(
    clock: Clock, minimum: float, quiet: float, maximum: float, in_service: float = 30
) -> Quiet:
    timing = HookTiming(minimum, quiet, maximum, in_service)
    return wait_until_quiet(clock, timing, clock=lambda: clock.now, sleep=clock.sleep)


def test_without_traffic_the_hook_waits_its_minimum():
    result = wait(Clock(), minimum=5, quiet=2, maximum=60)
    assert result.waited == pytest.approx(5, abs=0.11)
    assert not result.timed_out


def test_the_hook_waits_until_traffic_has_been_quiet_for_its_period():
    # A late node keeps sending every 0.5 s until 12 s, then learns the pod has gone.
    clock = Clock([t / 2 for t in range(0, 25)])
    result = wait(clock, minimum=5, quiet=2, maximum=60)
    assert result.waited == pytest.approx(14, abs=0.11)
    assert result.idle >= 2
    assert result.describe().startswith("quiet for 2.")


def test_a_gap_shorter_than_the_quiet_period_does_not_end_it():
    clock = Clock([0, 4, 5.5, 7])  # gaps of 1.5 s after the minimum: quiet only from 7 on
    assert wait(clock, minimum=5, quiet=2, maximum=60).waited == pytest.approx(9, abs=0.11)


def test_traffic_that_never_stops_ends_at_the_maximum():
    clock = Clock([t / 10 for t in range(0, 1000)])
    result = wait(clock, minimum=5, quiet=2, maximum=30)
    assert result.timed_out
    assert result.waited == pytest.approx(30, abs=0.11)
    assert result.describe().startswith("PRESTOP_MAX_SECONDS reached after 30.")


def test_a_pod_deleted_soon_after_it_started_serving_waits_until_it_has_served_long_enough():
    # In service for 1 s when deleted: a node may not have learned of it yet.
    clock = Clock([-1.0, -0.5], first=None)
    result = wait(clock, minimum=5, quiet=2, maximum=90, in_service=30)
    assert result.waited == pytest.approx(29, abs=0.11)
    # The late node learns of it at 20 s and sends until 40 s: the hook waits for that too.
    clock = Clock([-1.0, *[20 + t / 2 for t in range(41)]], first=None)
    assert wait(clock, minimum=5, quiet=2, maximum=90).waited == pytest.approx(42, abs=0.11)


def test_a_pod_that_never_served_waits_its_maximum():
    result = wait(Clock(first=None), minimum=5, quiet=2, maximum=90, in_service=30)
    assert result.timed_out and result.waited == pytest.approx(90, abs=0.11)
    # Unless the rule is switched off.
    assert wait(Clock(first=None), 5, 2, 90, in_service=0).waited == pytest.approx(5, abs=0.11)


def test_probes_the_hook_and_scrapes_are_not_traffic():
    assert [counts_as_traffic(p) for p in ("/ready", "/healthz", "/prestop", "/metrics")] == [
        False
    ] * 4
    assert counts_as_traffic("/status") and counts_as_traffic("/anything")


def test_the_arrivals_are_shared_with_a_forked_child():
    import os

    arrivals = Arrivals()
    assert arrivals.first() is None
    pid = os.fork()
    if pid == 0:
        arrivals.mark(12345.0)
        arrivals.mark(12346.0)
        os._exit(0)
    os.waitpid(pid, 0)
    assert (arrivals.first(), arrivals.last()) == (12345.0, 12346.0)


@pytest.mark.rehearsal
def test_the_real_hook_answers_once_traffic_has_left(tmp_path):
    server = ServerProcess(
        "app",
        tmp_path,
        PRESTOP_MIN_SECONDS="0.5",
        PRESTOP_QUIET_SECONDS="1",
        PRESTOP_MAX_SECONDS="20",
        PRESTOP_MIN_SERVICE_SECONDS="0",
    )
    stop_traffic = threading.Event()

    def traffic():
        with requests.Session() as session:
            while not stop_traffic.wait(0.1):
                session.get(f"{server.url}/status", timeout=5)

    try:
        server.wait_all_workers()
        sender = threading.Thread(target=traffic)
        sender.start()
        answered: list[float] = []
        hook = threading.Thread(
            target=lambda: answered.append(
                requests.get(f"{server.url}/prestop", timeout=30).elapsed.total_seconds()
            )
        )
        started = time.monotonic()
        hook.start()
        # The hook must still be waiting while the traffic goes on, past its minimum and its
        # quiet period: await the point where it would have answered without the traffic.
        hook.join(timeout=3)
        assert hook.is_alive()
        stopped = time.monotonic()
        stop_traffic.set()
        sender.join()
        hook.join(timeout=10)
        assert not hook.is_alive()
        # From the hook's start on, a kept-alive connection is closed after its response.
        response = requests.get(f"{server.url}/status", timeout=5)
        assert response.headers["Connection"] == "close"
        # It answered at least the quiet period after the traffic stopped.
        assert started + answered[0] >= stopped + 1 - 0.2
        assert "preStop: quiet for" in server.stderr() + server.stdout()
    finally:
        stop_traffic.set()
        server.stop()

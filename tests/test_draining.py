"""drain_on_sigterm against a stand-in for gunicorn's arbiter: no server, real signals.

The real master is tested in tests/test_server.py. Here this very process plays the master: its
SIGTERMs are queued as the arbiter queues them, and the tests await them on the queue.
"""

import logging
import queue
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.draining import DrainFlag, drain_on_sigterm


class FakeArbiter:
    """What drain_on_sigterm uses of gunicorn's arbiter: handle_term and log."""

    def __init__(self) -> None:
        self.log = logging.getLogger("fake-arbiter")
        self.graceful_stops = 0

    def handle_term(self) -> None:
        self.graceful_stops += 1
        raise StopIteration  # as gunicorn's handle_term does


@dataclass
class Master:
    arbiter: FakeArbiter
    flag: DrainFlag
    sigterms: queue.SimpleQueue  # every SIGTERM this process received


@pytest.fixture
def master() -> Iterator[Master]:
    """This process as a gunicorn master; its signal handlers and timer are restored after."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGALRM)}
    timer = signal.setitimer(signal.ITIMER_REAL, 0)  # pytest-timeout's, when it uses SIGALRM
    sigterms: queue.SimpleQueue = queue.SimpleQueue()
    signal.signal(signal.SIGTERM, lambda signum, frame: sigterms.put_nowait(signum))
    flag = DrainFlag()
    yield Master(FakeArbiter(), flag, sigterms)
    flag.clear()  # a SIGALRM still on its way then does nothing
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    signal.setitimer(signal.ITIMER_REAL, *timer)


def timer_left() -> float:
    return signal.getitimer(signal.ITIMER_REAL)[0]


def test_the_first_sigterm_sets_the_flag_and_arms_the_timer_without_a_thread(master):
    drain_on_sigterm(master.arbiter, 60, master.flag)
    threads = threading.active_count()

    master.arbiter.handle_term()

    assert master.flag.is_set()
    assert 59 < timer_left() <= 60
    assert master.arbiter.graceful_stops == 0
    assert threading.active_count() == threads


def test_the_timer_sends_sigterm_again_which_stops_gracefully(master):
    drain_on_sigterm(master.arbiter, 0.05, master.flag)
    master.arbiter.handle_term()

    assert master.sigterms.get(timeout=10) == signal.SIGTERM
    with pytest.raises(StopIteration):
        master.arbiter.handle_term()  # what the arbiter runs for the queued SIGTERM
    assert master.arbiter.graceful_stops == 1


def test_a_second_sigterm_during_the_drain_stops_gracefully_at_once(master):
    drain_on_sigterm(master.arbiter, 60, master.flag)
    master.arbiter.handle_term()

    with pytest.raises(StopIteration):
        master.arbiter.handle_term()

    assert master.arbiter.graceful_stops == 1
    assert timer_left() == 0  # disarmed: no third SIGTERM during the graceful stop


def test_drain_seconds_zero_stops_gracefully_at_once(master):
    drain_on_sigterm(master.arbiter, 0, master.flag)

    with pytest.raises(StopIteration):
        master.arbiter.handle_term()

    assert master.flag.is_set()
    assert master.arbiter.graceful_stops == 1
    assert timer_left() == 0


def test_sigalrm_ends_a_drain_but_is_ignored_outside_one(master):
    drain_on_sigterm(master.arbiter, 60, master.flag)
    # raise_signal runs the Python handlers before it returns, end_drain and the SIGTERM it
    # sends included.
    signal.raise_signal(signal.SIGALRM)
    assert master.sigterms.empty()
    assert not master.flag.is_set()

    master.arbiter.handle_term()
    signal.raise_signal(signal.SIGALRM)
    assert master.sigterms.get_nowait() == signal.SIGTERM

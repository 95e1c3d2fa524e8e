"""Drain on SIGTERM in the gunicorn master, where Kubernetes delivers the signal.

gunicorn's own SIGTERM handling closes the listeners and stops the workers at once, so a
readiness flag flipped inside a worker is never seen by a probe. Instead the master, on the
first SIGTERM, sets a flag that lives in shared memory created before the workers are forked,
keeps accepting and serving for DRAIN_SECONDS (every worker answers /ready with 503 and closes
connections after each response), then re-sends SIGTERM to itself, which runs gunicorn's
normal graceful stop. This replaces the arbiter's `handle_term`, a gunicorn internal: the
gunicorn version is pinned and tests/test_server.py exercises it.

The drain's end is a SIGALRM from a process timer (setitimer), not a timer thread: the master
forks a new worker whenever one dies, also during a drain, and a fork of a process with threads
copies every lock another thread held at that moment into a child that can never release it.
"""

import mmap
import os
import signal


class DrainFlag:
    """A boolean shared by the gunicorn master and every worker forked after it exists."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1)  # anonymous and shared: survives fork

    def is_set(self) -> bool:
        return self._memory[0] == 1

    def set(self) -> None:
        self._memory[0] = 1

    def clear(self) -> None:
        self._memory[0] = 0


# Created when the gunicorn configuration is imported, in the master, before any fork.
DRAINING = DrainFlag()


def drain_on_sigterm(arbiter, drain_seconds: float, flag: DrainFlag = DRAINING) -> None:
    """Make the arbiter's first SIGTERM start a drain; the next one stops gracefully.

    Call it in the master's main thread (gunicorn's when_ready hook); every worker forked
    afterwards must call reset_in_worker.
    """
    graceful_stop = arbiter.handle_term
    master = os.getpid()

    def end_drain(signum, frame) -> None:
        # The timer ran out: SIGTERM again, which the arbiter queues like any other signal and
        # which ends in the graceful stop below. A stray SIGALRM outside a drain does nothing.
        if flag.is_set():
            os.kill(master, signal.SIGTERM)

    def handle_term() -> None:
        if flag.is_set() or drain_seconds <= 0:
            flag.set()
            signal.setitimer(signal.ITIMER_REAL, 0)
            graceful_stop()  # raises StopIteration: gunicorn's graceful stop
        flag.set()
        arbiter.log.info("SIGTERM: draining for %ss before the graceful stop", drain_seconds)
        signal.setitimer(signal.ITIMER_REAL, drain_seconds)

    # gunicorn's arbiter leaves SIGALRM alone (its signals are HUP QUIT INT TERM TTIN TTOU USR1
    # USR2 WINCH and CHLD), so the master may own it.
    signal.signal(signal.SIGALRM, end_drain)
    arbiter.handle_term = handle_term


def reset_in_worker() -> None:
    """Give a forked worker back the default SIGALRM.

    A child inherits the master's signal handlers but neither its timers nor its pending
    signals, so the drain timer never fires in a worker. Without this, a SIGALRM sent to a
    worker during a drain would run the master's end_drain and stop the master at once.
    """
    signal.signal(signal.SIGALRM, signal.SIG_DFL)

"""Drain on SIGTERM in the gunicorn master, where Kubernetes delivers the signal.

gunicorn's own SIGTERM handling closes the listeners and stops the workers at once, so a
readiness flag flipped inside a worker is never seen by a probe. Instead the master, on the
first SIGTERM, sets a flag that lives in shared memory created before the workers are forked,
keeps accepting and serving for DRAIN_SECONDS (every worker answers /ready with 503 and closes
connections after each response), then re-sends SIGTERM to itself, which runs gunicorn's
normal graceful stop. This replaces the arbiter's `handle_term`, a gunicorn internal: the
gunicorn version is pinned and tests/test_server.py exercises it.
"""

import mmap
import os
import signal
import threading


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
    """Make the arbiter's first SIGTERM start a drain; the next one stops gracefully."""
    graceful_stop = arbiter.handle_term

    def handle_term() -> None:
        if flag.is_set() or drain_seconds <= 0:
            flag.set()
            graceful_stop()  # raises StopIteration: gunicorn's graceful stop
        flag.set()
        arbiter.log.info("SIGTERM: draining for %ss before the graceful stop", drain_seconds)
        timer = threading.Timer(drain_seconds, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()

    arbiter.handle_term = handle_term

"""What a pod's server does when it is stopped, measured from outside as any client would see
it, whatever the server: when it stops accepting after SIGTERM, what becomes of an idle
kept-alive connection, and when it exits.

The observer stands beside the kubelet (its connection comes from the control plane's address,
never through a Service): just before the stop signal it sends one request on a kept-alive
connection and leaves it idle, as a pooled client would, for IDLE_WATCH_SECONDS (no longer: an
idle connection can hold a server's graceful stop up, and the measure must not); from the signal
(SIGTERM, or lifecycle.stopSignal) on it reads the pod's socket table every POLL_SECONDS until
no socket listens on the port. It never connects to find out: a server accepts, and counts,
every connection.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from tools.rehearsal.traffic import httpclient

POLL_SECONDS = 0.05
IDLE_WATCH_SECONDS = 1.0
CONNECT_TIMEOUT = 0.5  # for the idle connection's request
# What became of the idle kept-alive connection.
IDLE_CLOSED = "closed"  # the server closed it (FIN): a client that checks sees it
IDLE_RESET = "reset"  # the server reset it
IDLE_KEPT = "kept open"  # for IDLE_WATCH_SECONDS after the stop signal
IDLE_CLOSED_BEFORE = "closed before the stop signal"
IDLE_NONE = "none opened"


@dataclass(frozen=True)
class ServerStop:
    """One pod's server as it stopped (seconds after SIGTERM; None: not seen)."""

    pod: str
    deleted: float  # when its deletion started: minus the time its preStop hook took
    stopped_accepting: float | None  # when no socket listened on the port any more
    idle_connection: str  # one of the IDLE_ outcomes
    idle_closed: float | None  # when the idle connection was closed or reset
    exited: float | None
    idle_closed_with_notice: bool = False  # an answer on it said `Connection: close` first


class ShutdownObserver:
    def __init__(
        self, pod: str, address: str, port: int, path: str, listening: Callable[[], bool]
    ) -> None:
        self.pod, self.address, self.port, self.path = pod, address, port, path
        self.listening = listening  # whether the server still has a socket listening
        self.idle: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.idle_outcome = IDLE_NONE
        self.idle_at: float | None = None  # monotonic
        self.notice = False
        self.deleted_at: float | None = None
        self.hook_ended_at: float | None = None
        self.sigterm_at: float | None = None
        self.refused_at: float | None = None
        self.exited_at: float | None = None
        self.tasks: list[asyncio.Task] = []

    def deleted(self) -> None:
        """The pod's deletion starts (its preStop hook, if any, runs from here)."""
        self.deleted_at = time.monotonic()

    def hook_ended(self) -> None:
        """The preStop hook is over (or there is none): the stop signal is due."""
        self.hook_ended_at = time.monotonic()

    async def open_idle(self) -> None:
        """Just before the stop signal: one request on a kept-alive connection, left idle."""
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            async with asyncio.timeout(CONNECT_TIMEOUT):
                reader, writer = await asyncio.open_connection(self.address, self.port)
                host = f"{self.address}:{self.port}"
                writer.write(httpclient.request(self.path, host, keep_alive=True))
                response = await httpclient.read_response(reader)
                self.notice = response.closes
                self.idle = reader, writer
                self.idle_outcome = IDLE_KEPT
                self.tasks.append(asyncio.get_running_loop().create_task(self.watch_idle()))

    async def watch_idle(self) -> None:
        """What the server does with the idle connection within IDLE_WATCH_SECONDS of the stop
        signal; then it is closed from this side, so that it holds no server up for longer."""
        reader, writer = self.idle
        try:
            async with asyncio.timeout(IDLE_WATCH_SECONDS + CONNECT_TIMEOUT):
                data = await reader.read(1)
            self.idle_outcome = IDLE_CLOSED if not data else IDLE_KEPT
            self.idle_at = time.monotonic()
        except TimeoutError:
            self.idle_outcome = IDLE_KEPT
        except OSError:
            self.idle_outcome = IDLE_RESET
            self.idle_at = time.monotonic()
        if self.sigterm_at is None or (self.idle_at or 0) < self.sigterm_at:
            self.idle_outcome = IDLE_CLOSED_BEFORE if self.idle_at else self.idle_outcome
        writer.close()

    def sigterm(self) -> None:
        self.sigterm_at = time.monotonic()
        self.tasks.append(asyncio.get_running_loop().create_task(self.poll_accepting()))

    async def poll_accepting(self) -> None:
        while self.exited_at is None:
            if not self.listening():
                self.refused_at = time.monotonic()
                return
            await asyncio.sleep(POLL_SECONDS)

    def exited(self) -> None:
        self.exited_at = time.monotonic()

    def result(self) -> ServerStop | None:
        for task in self.tasks:
            task.cancel()
        if self.idle is not None:
            self.idle[1].close()
        if self.sigterm_at is None:
            return None

        def since(at: float | None) -> float | None:
            return None if at is None else round(at - self.sigterm_at, 3)

        idle_at = self.idle_at if self.idle_outcome in (IDLE_CLOSED, IDLE_RESET) else None
        # A server that exits before a poll finds it refusing stopped accepting at its exit.
        refused = self.refused_at if self.refused_at is not None else self.exited_at
        # The hook's time, without the moment the idle connection took to open.
        hook = (self.hook_ended_at or self.sigterm_at) - (self.deleted_at or self.sigterm_at)
        return ServerStop(
            self.pod,
            -round(hook, 3),
            since(refused),
            self.idle_outcome,
            since(idle_at),
            since(self.exited_at),
            self.notice,
        )

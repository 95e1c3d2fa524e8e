"""The run's clock and its event log (pod lifecycle, Service view, controller, phases)."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class PodEvent(StrEnum):
    """What happens to a pod, as the emulated kubelet records it; the report and the picture
    read these."""

    CREATED = "created"
    CONTAINER_STARTED = "container started"
    START_FAILED = "start failed"
    STARTED = "started"  # the startup probe passed
    READY = "ready"
    NOT_READY = "not ready"
    CONDITION = "condition"  # a readiness gate's condition set (by the gate's controller)
    AVAILABLE = "available"  # ready for minReadySeconds (recorded by the controller)
    LIVENESS_FAILED = "liveness failed"
    STARTUP_FAILED = "startup failed"
    RESTARTING = "restarting"
    KILLED = "killed"  # a fault: SIGKILL to the container, not a deletion
    EVICTED = "evicted"  # a fault: evicted by a node drain (then terminating, as on deletion)
    TERMINATING = "terminating"
    KILLING = "killing"
    PRE_STOP = "preStop"
    PRE_STOP_DONE = "preStop done"
    PRE_STOP_CUT = "preStop cut"
    SIGTERM = "SIGTERM"
    SIGKILL = "SIGKILL"
    EXITED = "exited"
    GONE = "gone"


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the run started
    source: str  # a pod name, "service", "deployment" or "rehearsal"
    kind: str
    detail: str = ""


class Timeline:
    """Seconds since the run started, on `clock` (time.monotonic, the clock every process and
    asyncio's loop share; a test passes its own)."""

    def __init__(
        self,
        printer: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.start = clock()
        self.wall_start = time.time()  # to find a run time in the servers' logs
        self.events: list[Event] = []
        self.printer = printer

    def now(self) -> float:
        return self.clock() - self.start

    def record(self, source: str, kind: str, detail: str = "") -> Event:
        event = Event(round(self.now(), 3), source, kind, detail)
        self.events.append(event)
        if self.printer:
            self.printer(f"{event.t:7.2f}s  {source:<28} {kind}{'  ' + detail if detail else ''}")
        return event

"""One pod, run the way the kubelet runs it (emulated; the container inside is real).

- probes: startup gates liveness and readiness; every timing field is honoured
  (initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold, failureThreshold);
- restartPolicy Always: a container that exits or fails its liveness/startup probe is
  restarted, the second restart onwards after the kubelet's back-off (10 s, doubling, max 300 s);
- termination: preStop (sleep, exec or httpGet) -> SIGTERM -> SIGKILL once
  terminationGracePeriodSeconds, counted from the start of termination, is over (plus the
  kubelet's one-off 2 s when the preStop hook used it all);
- a container that exits by itself is noticed at the next relist, every RELIST_PERIOD
  (kubernetes pkg/kubelet/pleg/generic.go; the period is genericPlegRelistPeriod in
  pkg/kubelet/kubelet.go): until then the kubelet neither restarts it nor reports it not ready;
- the control plane sees the pod's Ready condition one status update (STATUS_UPDATE_SECONDS,
  a PATCH to the API server) after the kubelet decides it (pkg/kubelet/status/status_manager.go:
  the latest status is sent, intermediate ones are not). Ready is the containers' readiness AND
  every readiness gate's condition True (pkg/kubelet/status/generate.go
  GeneratePodReadyCondition).
"""

import asyncio
import contextlib
import math
import signal
from collections.abc import Callable
from pathlib import Path

from tools.rehearsal.cluster.network.podnet import PodNetwork
from tools.rehearsal.cluster.network.view import Endpoint
from tools.rehearsal.cluster.node.container import Container, Launch
from tools.rehearsal.cluster.node.runtime import Runtime
from tools.rehearsal.cluster.node.shutdown import ShutdownObserver
from tools.rehearsal.manifests.pod import PodTemplate, PreStop, Probe
from tools.rehearsal.timeline import PodEvent, Timeline
from tools.rehearsal.traffic import httpclient

PRESTOP_OVERRUN_GRACE = 2.0
SIGKILLED = (128 + signal.SIGKILL, -signal.SIGKILL)  # a container's, and a process's, status
BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
RELIST_PERIOD = 1.0
STATUS_UPDATE_SECONDS = 0.05


async def relisted() -> None:
    """Wait for the kubelet's next relist: one clock for every pod, as one PLEG lists them all."""
    now = asyncio.get_running_loop().time()
    await asyncio.sleep((math.floor(now / RELIST_PERIOD) + 1) * RELIST_PERIOD - now)


def exit_reason(status: int, sigkill_sent: bool, memory_limit: int | None, oom_killed: bool) -> str:
    """The reason Kubernetes gives for a container's exit. An engine that does not report OOM
    kills (podman with cgroupfs) still shows one: SIGKILL that neither the kubelet nor a fault
    sent, to a container with a memory limit, comes from the kernel's out-of-memory killer."""
    if oom_killed or (status in SIGKILLED and not sigkill_sent and memory_limit is not None):
        return "OOMKilled"
    return "Completed" if status == 0 else "Error"


class Pod:
    def __init__(
        self,
        name: str,
        template: PodTemplate,
        address: str,
        runtime: Runtime,
        timeline: Timeline,
        on_change: Callable[["Pod"], None],
        log_dir: Path,
        network: PodNetwork | None = None,
    ) -> None:
        self.name = name
        self.network = network  # where its sandbox is made; None: the address is enough
        self.observer: ShutdownObserver | None = None  # watches its server stop, if set
        self.template = template
        self.version = template.version
        self.address = address
        self.port = template.container_port
        self.runtime = runtime
        self.timeline = timeline
        self.on_change = on_change
        self.log_path = log_dir / f"{name}.log"
        self.created_at = timeline.now()
        self.start_time = self.created_at  # status.startTime: the kubelet took the pod on
        self.ready_transition = self.created_at  # the Ready condition's lastTransitionTime
        self.started = False  # startup probe passed
        self.containers_ready = False  # the kubelet's view: readiness probe passing
        self.reported_containers_ready = False  # ContainersReady, as the API server has it
        self.conditions: dict[str, bool] = {}  # readiness gates' conditions, set by others
        self.ready = False  # the Ready condition the control plane sees
        self.ready_since: float | None = None
        self.status_update: asyncio.TimerHandle | None = None
        self.first_ready: float | None = None
        self.terminating = False
        self.sigterm_sent = False
        self.gone = False
        self.restarts = 0
        self.exit_codes: list[int] = []
        self.exit_reasons: list[str] = []  # as Kubernetes reports them: Completed, Error, ...
        self.sigkill_sent = False  # to the current container, by the kubelet or a fault
        self.container: Container | None = None
        self.deleted = asyncio.Event()
        self.started_event = asyncio.Event()
        self.task: asyncio.Task | None = None

    # -- what the control plane sees -------------------------------------------------------

    def start(self) -> None:
        self.timeline.record(
            self.name, PodEvent.CREATED, f"{self.version} at {self.address}:{self.port}"
        )
        self.task = asyncio.get_running_loop().create_task(self._run())

    def delete(self) -> None:
        if self.terminating:
            return
        self.terminating = True
        self.timeline.record(self.name, PodEvent.TERMINATING)
        self.deleted.set()
        self.on_change(self)

    def endpoint(self) -> Endpoint | None:
        if self.gone:
            return None
        return Endpoint(
            pod=self.name,
            address=self.address,
            port=self.port,
            ready=self.ready and not self.terminating,
            serving=self.ready,
            terminating=self.terminating,
        )

    @property
    def phase(self) -> str:
        """status.phase as the HPA reads it: Pending until a container has run, then Running
        (restarts keep it Running under restartPolicy Always)."""
        return "Running" if self.container is not None else "Pending"

    def backdate(self, seconds: float) -> None:
        """Make the pod look `seconds` older to the control plane: a rehearsal's starting pods
        stand for pods that have served for a while (long available, past the HPA's CPU
        initialization period)."""
        self.start_time -= seconds
        self.ready_transition -= seconds
        if self.ready_since is not None:
            self.ready_since -= seconds

    def available(self, min_ready_seconds: float) -> bool:
        if not self.ready or self.terminating or self.ready_since is None:
            return False
        return self.timeline.now() - self.ready_since >= min_ready_seconds

    def set_condition(self, condition: str, status: bool) -> None:
        """Set one of the pod's conditions, as a controller that owns a readiness gate does
        (an ingress or load balancer controller, with a PATCH of the pod's status)."""
        if self.conditions.get(condition) == status:
            return
        self.conditions[condition] = status
        self.timeline.record(self.name, PodEvent.CONDITION, f"{condition}={status}")
        self._update_status()

    def gates_open(self) -> bool:
        """Every readiness gate's condition exists and is True."""
        return all(self.conditions.get(gate, False) for gate in self.template.readiness_gates)

    # -- state changes -----------------------------------------------------------------------

    def _set_containers_ready(self, ready: bool) -> None:
        self.containers_ready = ready
        self._update_status()

    def _update_status(self) -> None:
        """Send the pod's status to the API server: the latest one arrives after one update."""
        if self.status_update is None:
            self.status_update = asyncio.get_running_loop().call_later(
                STATUS_UPDATE_SECONDS, self._status_updated
            )

    def _status_updated(self) -> None:
        self.status_update = None
        changed = self.reported_containers_ready != self.containers_ready
        self.reported_containers_ready = self.containers_ready
        if not self._set_ready(self.containers_ready and self.gates_open()) and changed:
            # Ready stays as it was (a readiness gate still closed): a pod update all the same,
            # which the gate's controller watches.
            self.on_change(self)

    def _set_ready(self, ready: bool) -> bool:
        """Whether Ready changed (and the change was told)."""
        if ready == self.ready or self.gone:
            return False
        self.ready = ready
        self.ready_since = self.timeline.now() if ready else None
        self.ready_transition = self.timeline.now()
        if ready and self.first_ready is None:
            self.first_ready = self.ready_since
        self.timeline.record(self.name, PodEvent.READY if ready else PodEvent.NOT_READY)
        self.on_change(self)
        return True

    def _set_started(self, started: bool) -> None:
        self.started = started
        if started:
            self.started_event.set()
            self.timeline.record(self.name, PodEvent.STARTED, "startup probe passed")
        else:
            self.started_event.clear()

    # -- the pod's life ------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.0
        while not self.terminating:
            outcome = await self._run_container()
            if outcome == "deleted":
                break
            self.restarts += 1
            self.timeline.record(
                self.name, PodEvent.RESTARTING, f"restart {self.restarts} in {backoff:.0f}s"
            )
            if backoff:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):  # not wait_for: see deployment.py
                        await self.deleted.wait()
            backoff = min(BACKOFF_MAX, backoff * 2) if backoff else BACKOFF_START
        self._set_ready(False)
        self.gone = True
        self.timeline.record(self.name, PodEvent.GONE)
        self.on_change(self)
        if self.network is not None:
            await self.network.remove(self.name)

    async def _run_container(self) -> str:
        try:
            sandbox = await self.network.sandbox(self.name) if self.network else None
        except OSError as error:
            self.timeline.record(self.name, PodEvent.START_FAILED, f"pod sandbox: {error}")
            return "exited"
        launch = Launch(
            pod=self.name,
            image=self.template.image,
            version=self.version,
            address=self.address,
            port=self.port,
            env=self.template.environment(self.name, self.address),
            log_path=self.log_path,
            user=self.template.user,
            read_only_root=self.template.read_only_root,
            command=self.template.command,
            args=self.template.args,
            memory_limit=self.template.memory_limit,
            cpu_limit=self.template.cpu_limit,
            cpu_request=self.template.cpu_request,
            netns=sandbox.netns if sandbox else None,
            working_dir=self.template.working_dir,
        )
        try:
            container = await self.runtime.start(launch)
        except OSError as error:
            self.timeline.record(self.name, PodEvent.START_FAILED, str(error))
            return "exited"
        self.container = container
        self.timeline.record(self.name, PodEvent.CONTAINER_STARTED)
        self.sigterm_sent = self.sigkill_sent = False
        self._set_started(self.template.startup is None)
        probe_failed = asyncio.get_running_loop().create_future()
        probes = [
            asyncio.create_task(self._probe_loop(probe, container, probe_failed))
            for probe in (self.template.startup, self.template.readiness, self.template.liveness)
            if probe is not None
        ]
        if self.template.readiness is None:
            probes.append(asyncio.create_task(self._ready_when_started()))
        exited = asyncio.create_task(container.wait())
        try:
            outcome = await self._until_the_container_ends(container, exited, probe_failed)
        finally:  # also when the run ends (force_stop)
            for task in probes:
                task.cancel()
        code = await exited
        reason = exit_reason(
            code, self.sigkill_sent, self.template.memory_limit, await container.oom_killed()
        )
        self.exit_codes.append(code)
        self.exit_reasons.append(reason)
        self._set_containers_ready(False)
        self._set_started(False)
        self.timeline.record(self.name, PodEvent.EXITED, f"status {code} ({reason})")
        return outcome

    async def _until_the_container_ends(
        self, container: Container, exited: asyncio.Task, probe_failed: asyncio.Future
    ) -> str:
        """Wait for an exit, the pod's deletion or a failed probe; stop the container for the
        last two. Return what happened."""
        deleted = asyncio.create_task(self.deleted.wait())
        await asyncio.wait({exited, deleted, probe_failed}, return_when=asyncio.FIRST_COMPLETED)
        deleted.cancel()
        if exited.done():
            await relisted()  # meanwhile the probes go on, and fail
            return "exited"
        if self.terminating:
            await self._terminate(container, exited, self.template.termination_grace, "pod deleted")
            return "deleted"
        failed: Probe = probe_failed.result()
        grace = failed.termination_grace
        grace = self.template.termination_grace if grace is None else grace
        await self._terminate(container, exited, grace, f"{failed.kind} probe failed")
        return f"{failed.kind} failed"

    async def _ready_when_started(self) -> None:
        await self.started_event.wait()
        self._set_containers_ready(True)

    async def _probe_loop(self, probe: Probe, container: Container, failed: asyncio.Future) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(probe.initial_delay)
        successes = failures = 0
        while True:  # until the kubelet stops the probes: it learns of an exit at a relist
            if probe.kind != "startup" and not self.started:
                await self.started_event.wait()  # the kubelet probes right after startup succeeds
            elif probe.kind == "startup" and self.started:
                return
            if probe.kind == "liveness" and self.terminating:
                return
            began = loop.time()
            ok = container.is_alive() and await self.runtime.probe(probe, self.address, container)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if probe.kind == "readiness":
                if successes >= probe.success_threshold:
                    self._set_containers_ready(True)
                elif failures >= probe.failure_threshold:
                    self._set_containers_ready(False)
            elif probe.kind == "startup" and ok:
                self._set_started(True)
                return
            elif failures >= probe.failure_threshold and not failed.done():
                self.timeline.record(
                    self.name, PodEvent(f"{probe.kind} failed"), f"{failures} times"
                )
                failed.set_result(probe)
                return
            await asyncio.sleep(max(0.0, began + probe.period - loop.time()))

    async def _terminate(
        self, container: Container, exited: asyncio.Task, grace: float, reason: str
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        self.timeline.record(self.name, PodEvent.KILLING, f"{reason}, grace period {grace:g}s")
        observer = self.observer if self.terminating else None
        if observer is not None:
            observer.deleted()
        pre_stop = self.template.pre_stop
        if pre_stop is not None:
            hook = asyncio.create_task(self._pre_stop(pre_stop, container, deadline))
            await asyncio.wait(
                {hook, exited},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not hook.done():
                hook.cancel()
                if not exited.done():
                    deadline = loop.time() + PRESTOP_OVERRUN_GRACE
                    self.timeline.record(self.name, PodEvent.PRE_STOP_CUT, "grace period over")
            else:
                self.timeline.record(self.name, PodEvent.PRE_STOP_DONE)
        if not exited.done():
            if observer is not None:
                # Its idle connection open before the server stops: one request's time, at
                # most 0.2 s (a server that answers slower is signalled without it).
                observer.hook_ended()
                await asyncio.wait({loop.create_task(observer.open_idle())}, timeout=0.2)
            stop = signal.Signals[self.template.stop_signal]
            await container.signal(stop)
            self.sigterm_sent = True
            detail = "" if stop == signal.SIGTERM else f"{stop.name} (lifecycle.stopSignal)"
            self.timeline.record(self.name, PodEvent.SIGTERM, detail)
            if observer is not None:
                observer.sigterm()
                exited.add_done_callback(lambda _: observer.exited())
        await asyncio.wait({exited}, timeout=max(0.0, deadline - loop.time()))
        if not exited.done():
            self.timeline.record(self.name, PodEvent.SIGKILL, "grace period over")
            self.sigkill_sent = True
            await container.kill()

    async def _pre_stop(self, hook: PreStop, container: Container, deadline: float) -> None:
        remaining = deadline - asyncio.get_running_loop().time()
        self.timeline.record(
            self.name,
            PodEvent.PRE_STOP,
            f"{hook.action} {hook.seconds:g}s" if hook.action == "sleep" else hook.action,
        )
        if hook.action == "sleep":
            await asyncio.sleep(hook.seconds)
        elif hook.action == "exec":
            await container.exec(hook.command, remaining)
        else:
            with contextlib.suppress(
                OSError, TimeoutError, asyncio.IncompleteReadError, ValueError
            ):
                await httpclient.get(self.address, hook.port, hook.path, remaining)

    async def kill_container(self, why: str) -> None:
        """SIGKILL the running container, not the pod: the kubelet restarts it."""
        if self.container is not None and self.container.is_alive():
            self.timeline.record(self.name, PodEvent.KILLED, why)
            self.sigkill_sent = True
            await self.container.kill()

    async def force_stop(self) -> None:
        """End of the run: kill what is left, no grace (the load has stopped already)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.container is not None and self.container.is_alive():
            await self.container.kill()
            await self.container.wait()

"""One rehearsal: bring up the "from" state, load it, apply the "to" state, watch every request."""

import asyncio
import random
import shutil
from dataclasses import dataclass, field, replace

from tools.rehearsal.cluster import faults
from tools.rehearsal.cluster.deployment import DeploymentController
from tools.rehearsal.cluster.faults import FaultReport
from tools.rehearsal.cluster.kubelet import Pod
from tools.rehearsal.cluster.network.addresses import AddressPool
from tools.rehearsal.cluster.network.proxy import ServiceProxy
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView
from tools.rehearsal.cluster.rollouts.analysis import AnalysisRun, run_analysis
from tools.rehearsal.cluster.rollouts.controller import RolloutController
from tools.rehearsal.cluster.runtime import Runtime
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.spec import Analysis, PodTemplate, Workload
from tools.rehearsal.options import Options
from tools.rehearsal.report.traces import failure_traces
from tools.rehearsal.result import PodSummary, Result
from tools.rehearsal.timeline import Timeline
from tools.rehearsal.traffic.load import LoadConfig, LoadProcess


@dataclass
class EmulatedService:
    """A Service as a view and a proxy; Argo Rollouts may narrow its selector to one
    pod-template hash (None: every pod of the workload)."""

    name: str
    view: EndpointView
    template_hash: str | None = None
    proxy: ServiceProxy = field(init=False)

    def __post_init__(self) -> None:
        self.proxy = ServiceProxy(self.view)

    def endpoint(self, pod: Pod) -> Endpoint | None:
        selected = self.template_hash in (None, pod.template.template_hash)
        return pod.endpoint() if selected else None

    def publish(self, pod: Pod) -> None:
        self.view.publish(pod.name, self.endpoint(pod))


class Rehearsal:
    def __init__(
        self, source: Workload, target: Workload, runtime: Runtime, options: Options
    ) -> None:
        if source.deployment.template.template_hash == target.deployment.template.template_hash:
            raise RehearsalError(
                f"{source.source} and {target.source} render the same pod template: "
                "nothing to roll out"
            )
        options.validate()
        runtime.check([source, target])
        self.source, self.target, self.runtime, self.options = source, target, runtime, options
        self.timeline = Timeline(print if options.progress else None)
        self.rng = random.Random(options.seed)
        if (source.rollout is None) != (target.rollout is None):
            raise RehearsalError(
                f"{source.source} and {target.source}: one renders a Rollout, the other not"
            )
        # The Services: the users' one, and with a Rollout every one it manages.
        names = [target.service.name] + [
            service.name for service in target.services if target.rollout is not None
        ]
        self.services = {
            name: EmulatedService(
                name,
                EndpointView(
                    self.timeline,
                    options.propagation_delay,
                    options.propagation_jitter,
                    self.rng,
                    name=f"service {name}" if name != target.service.name else "service",
                ),
            )
            for name in dict.fromkeys(names)
        }
        users = self.services[target.service.name]
        self.view, self.proxy = users.view, users.proxy
        self.analysis_runs: list[AnalysisRun] = []
        self.addresses = AddressPool(options.pod_network)
        self.log_dir = options.out_dir / f"{options.name}-pods"
        # Only this run's pods: logs of an earlier run with the same name would mislead.
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        if target.rollout is None:
            self.controller = DeploymentController(self.timeline, self.make_pod, self.rng)
        else:
            self.controller = RolloutController(
                self.timeline,
                self.make_pod,
                self.rng,
                rollout=target.rollout,
                route=self.route,
                analyse=self.analyse,
            )

    def make_pod(self, name: str, template: PodTemplate) -> Pod:
        address = self.addresses.allocate(template.container_port)
        return Pod(
            name, template, address, self.runtime, self.timeline, self.pod_changed, self.log_dir
        )

    def pod_changed(self, pod: Pod) -> None:
        for service in self.services.values():
            service.publish(pod)
        self.controller.wake.set()

    def route(self, name: str, template_hash: str) -> None:
        """Argo Rollouts sets a managed Service's selector to one pod-template hash."""
        service = self.services[name]
        if service.template_hash != template_hash:
            service.template_hash = template_hash
            self.timeline.record(
                f"service {name}", "selector", f"pod-template hash {template_hash}"
            )
            # One EndpointSlice update: every endpoint changes at once.
            service.view.publish_all(
                {pod.name: service.endpoint(pod) for pod in self.controller.pods()}
            )

    async def analyse(self, analysis: Analysis, service: str) -> bool:
        addresses = {
            name: f"{emulated.proxy.host}:{emulated.proxy.port}"
            for name, emulated in self.services.items()
        }
        runs = await run_analysis(
            analysis,
            addresses,
            self.target.deployment.template.version,
            self.log_dir,
            number=len(self.analysis_runs) + 1,
        )
        self.analysis_runs += runs
        for run in runs:
            self.timeline.record("rollout", f"analysis {run.template}", run.verdict)
        return all(run.passed for run in runs)

    def say(self, message: str) -> None:
        self.timeline.record("rehearsal", message)

    async def wait_for(
        self, condition, timeout: float, what: str, load: LoadProcess | None = None
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_report = loop.time() + 1
        while not condition():
            if loop.time() > deadline:
                self.say(f"gave up waiting: {what}")
                return False
            if load is not None and self.options.progress and loop.time() >= next_report:
                next_report += 1
                print(self.progress_line(load))
            await asyncio.sleep(0.02)
        return True

    def progress_line(self, load: LoadProcess) -> str:
        states: dict[str, int] = {}
        for pod in self.controller.pods():
            if pod.gone:
                continue
            state = "terminating" if pod.terminating else "ready" if pod.ready else "starting"
            key = f"{pod.version} {state}"
            states[key] = states.get(key, 0) + 1
        pods = ", ".join(f"{count} {key}" for key, count in sorted(states.items()))
        return (
            f"{self.timeline.now():7.2f}s  load: {load.ok} ok, {load.failed} failed | pods: {pods}"
        )

    def unreachable(self, pods: list[Pod]) -> bool:
        return all(pod.gone or not self.proxy.reachable(pod.name) for pod in pods)

    def old_pods_settled(self) -> bool:
        """Every old pod, and any other pod being deleted (a fault), can no longer receive a
        request (or, with --wait-for-exit, is gone). Argo Rollouts keeps old pods up after a
        blue-green switch (scaleDownDelaySeconds): there, out of the users' Service is enough."""
        if isinstance(self.controller, RolloutController) and not self.options.wait_for_exit:
            return self.unreachable(self.controller.old_pods())
        old = {pod.name for rs in self.controller.old for pod in rs.pods}
        for pod in self.controller.pods():
            if pod.gone or not (pod.terminating or pod.name in old):
                continue
            if self.options.wait_for_exit or not pod.terminating:
                return False
            if not pod.sigterm_sent or self.proxy.reachable(pod.name):
                return False
        return True

    async def finish_faults(self, tasks: list[asyncio.Task]) -> list[FaultReport]:
        if not tasks:
            return []
        limit = max(1.0, self.options.time_limit - self.timeline.now())
        done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
            self.say("a fault was still running at the time limit")
        return [task.result() for task in tasks if task in done]

    async def run(self) -> Result:
        options = self.options
        deployment = self.source.deployment
        for service in self.services.values():
            await service.proxy.start()
        self.say(
            f"Service {self.target.service.name}:{self.target.service.port} emulated at "
            f"{self.proxy.host}:{self.proxy.port}, propagation delay "
            f"{options.propagation_delay:g}s +- {options.propagation_jitter:g}s"
        )
        self.controller.apply(deployment)
        self.controller.start()
        load: LoadProcess | None = None
        try:
            up = await self.wait_for(
                lambda: (
                    len(self.view.ready) == deployment.replicas
                    and sum(p.ready for p in self.controller.pods()) == deployment.replicas
                ),
                deployment.progress_deadline_seconds,
                f"{deployment.replicas} ready {deployment.template.version} pods",
            )
            if not up:
                raise RehearsalError(
                    f"{self.source.source}: the starting state never became ready "
                    f"(pod logs: {self.log_dir})"
                )
            for pod in self.controller.pods():  # the starting state counts as long available
                pod.ready_since -= deployment.min_ready_seconds
            load = LoadProcess(
                LoadConfig(
                    self.proxy.host,
                    self.proxy.port,
                    options.fresh_clients,
                    options.keepalive_clients,
                    request_timeout=options.request_timeout,
                    max_seconds=options.time_limit,
                ),
                self.log_dir / "load-records.json",
            )
            await load.start()
            load_started = self.timeline.now()
            capacity = None
            rate = options.rate
            if rate is None:
                self.say(f"measuring capacity for {options.capacity_seconds:g}s (closed loop)")
                capacity = await load.measure_capacity(options.capacity_seconds)
                rate = max(1.0, capacity * options.load_fraction)
                self.say(f"capacity {capacity:.0f} req/s; load {rate:.0f} req/s")
            load.set_rate(rate)
            steady_started = self.timeline.now()
            await asyncio.sleep(options.steady_seconds)
            rollout_started = self.timeline.now()
            self.say(f"rollout: applying {self.target.source}")
            self.controller.apply(self.target.deployment)
            fault_tasks = faults.start(
                faults.Cluster(
                    self.controller, self.proxy, self.timeline, self.target.disruption_budget
                ),
                options.faults,
            )
            limit = max(1.0, options.time_limit - self.timeline.now())
            await self.wait_for(
                lambda: self.controller.completed_at is not None or self.controller.failed_reason,
                limit,
                "the rollout to finish",
                load,
            )
            fault_reports = await self.finish_faults(fault_tasks)
            if self.controller.completed_at is not None:
                await self.wait_for(
                    self.old_pods_settled,
                    max(1.0, options.time_limit - self.timeline.now()),
                    "old pods to stop",
                    load,
                )
            elif getattr(self.controller, "aborted", False):
                await self.wait_for(
                    lambda: self.unreachable(self.controller.new.pods),
                    max(1.0, options.time_limit - self.timeline.now()),
                    "the aborted version to leave the Service",
                    load,
                )
            settled = self.timeline.now()
            await asyncio.sleep(options.tail_seconds)
            records = await load.stop()
            self.say("load stopped")
        finally:
            if load is not None:
                load.kill()
            await self.teardown()
        start = self.timeline.start
        records = [replace(r, started=r.started - start) for r in records]
        return Result(
            name=options.name,
            source=self.source,
            target=self.target,
            options=options,
            runtime=self.runtime.name,
            records=records,
            events=self.timeline.events,
            pods=[
                PodSummary(p.name, p.version, p.address, p.restarts, p.exit_codes, p.exit_reasons)
                for p in self.controller.pods()
            ],
            capacity=capacity,
            rate=rate,
            load_started=load_started,
            steady_started=steady_started,
            rollout_started=rollout_started,
            rollout_completed=self.controller.completed_at,
            rollout_failed=self.controller.failed_reason
            or ("" if self.controller.completed_at else "time limit"),
            settled=settled,
            startup_seconds=min(
                (
                    p.first_ready - p.created_at
                    for p in self.controller.pods()
                    if p.first_ready is not None
                ),
                default=0.0,
            ),
            final_versions=[
                p.version for p in self.controller.pods() if not p.terminating and not p.gone
            ],
            proxy_no_endpoint=self.proxy.no_endpoint,
            proxy_backend_failed=sum(self.proxy.backend_failed.values()),
            faults=fault_reports,
            aborted=getattr(self.controller, "abort_reason", ""),
            analyses=self.analysis_runs,
            view_history=list(self.view.history),
            failure_traces=failure_traces(
                [r for r in records if not r.ok],
                self.proxy.traces,
                self.log_dir,
                self.timeline.wall_start,
            ),
            notes=[*self.source.notes, *self.runtime.notes()],
        )

    async def teardown(self) -> None:
        await self.controller.stop()
        await asyncio.gather(
            *(pod.force_stop() for pod in self.controller.pods()), return_exceptions=True
        )
        await self.runtime.cleanup()
        for service in self.services.values():
            await service.proxy.stop()
        self.addresses.close()

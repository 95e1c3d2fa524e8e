"""One rehearsal: bring up the "from" state, load it, apply the "to" state, watch every request."""

import asyncio
import random
import shutil
from dataclasses import replace
from functools import partial

from tools.rehearsal.cluster import faults
from tools.rehearsal.cluster.autoscaling.pipeline import Autoscaling
from tools.rehearsal.cluster.deployment import DeploymentController
from tools.rehearsal.cluster.edge.proxy import EdgeProxy
from tools.rehearsal.cluster.faults import FaultReport
from tools.rehearsal.cluster.network import podnet
from tools.rehearsal.cluster.network.iptables import Proxier
from tools.rehearsal.cluster.network.service import EmulatedService, KernelRules
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.runtime import Runtime
from tools.rehearsal.cluster.node.shutdown import ShutdownObserver
from tools.rehearsal.cluster.rollouts.analysis import AnalysisRun, run_analysis
from tools.rehearsal.cluster.rollouts.controller import RolloutController
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.pod import PodTemplate
from tools.rehearsal.manifests.rollout import Analysis
from tools.rehearsal.manifests.workload import Workload, adopts
from tools.rehearsal.options import Options
from tools.rehearsal.report.traces import failure_traces
from tools.rehearsal.result import PodSummary, Result, replica_set_summaries
from tools.rehearsal.timeline import Timeline
from tools.rehearsal.traffic.load import LoadConfig, LoadProcess
from tools.rehearsal.traffic.shapes import STEP_SECONDS

# The starting pods stand for pods that have served this long: long available, and past the
# HPA's CPU initialization period (5 minutes).
STARTING_AGE = 3600.0


class Rehearsal:
    def __init__(
        self, source: Workload, target: Workload, runtime: Runtime, options: Options
    ) -> None:
        # A Rollout adopting the running Deployment (workloadRef) runs the same pod template.
        self.adopting = adopts(source, target)
        same = source.deployment.template.template_hash == target.deployment.template.template_hash
        if same and not self.adopting and options.hold_seconds <= 0:
            raise RehearsalError(
                f"{source.source} and {target.source} render the same pod template: "
                "nothing to roll out (with --hold SECONDS the run watches the pods that long "
                "without a rollout, e.g. what the HPA does)"
            )
        options.validate()
        runtime.check([source, target])
        self.source, self.target, self.runtime, self.options = source, target, runtime, options
        self.timeline = Timeline(print if options.progress else None)
        self.rng = random.Random(options.seed)
        if (source.rollout is None) != (target.rollout is None) and not self.adopting:
            raise RehearsalError(
                f"{source.source} and {target.source}: one renders a Rollout, the other not "
                "(a Rollout can take over from the Deployment through workloadRef)"
            )
        self.network = self.choose_network()
        # On the namespaces' network, each node's kube-proxy writes the rules of every Service.
        self.proxiers = (
            [Proxier(self.network, node) for node in range(options.nodes)]
            if isinstance(self.network, podnet.NamespaceNetwork)
            else []
        )
        # The Services: the users' one, and with a Rollout every one it manages; each with a
        # view and rules (or a proxy) on every node.
        ports = {service.name: service.port for service in target.services}
        ports[target.service.name] = target.service.port
        names = [target.service.name] + [
            service.name for service in target.services if target.rollout is not None
        ]
        self.services = {
            name: EmulatedService(
                name,
                self.timeline,
                options.node_lags(),
                self.rng,
                options.batch_period,
                source=f"service {name}" if name != target.service.name else "service",
                kernel=KernelRules(
                    self.network,
                    self.proxiers,
                    podnet.cluster_ip(index),
                    ports[name],
                    target.deployment.template.namespace,
                )
                if self.proxiers
                else None,
            )
            for index, name in enumerate(dict.fromkeys(names))
        }
        self.users = self.services[target.service.name]
        self.analysis_runs: list[AnalysisRun] = []
        self.log_dir = options.out_dir / f"{options.name}-pods"
        # Only this run's pods: logs of an earlier run with the same name would mislead.
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.pods_by_name: dict[str, Pod] = {}
        # With an exposure component the users come in through its proxy, not the Service.
        self.edge: EdgeProxy | None = None
        if target.exposure is not None:
            self.edge = EdgeProxy(
                target.exposure,
                self.users,
                self.pods_by_name.get,
                target.deployment.template.container_port,
                self.timeline,
                self.rng,
                self.log_dir,
                options.lag,
                options.alb_lag,
                options.tgb_requeue,
            )
        if target.rollout is None or self.adopting:
            self.controller = DeploymentController(self.timeline, self.make_pod, self.rng)
        else:
            self.controller = self.rollout_controller()
        # The HorizontalPodAutoscaler, when the render has one: it runs as in the cluster.
        self.autoscaling: Autoscaling | None = None
        if not options.pin_replicas and (source.autoscaler or target.autoscaler):
            self.autoscaling = Autoscaling(
                lambda: list(self.pods_by_name.values()),
                self.timeline,
                options.metric_resolution,
                options.hpa_sync_period,
            )
        self.released_at: float | None = None

    def choose_network(self) -> podnet.PodNetwork:
        problem = self.runtime.pod_network_problem()
        if problem is not None and self.options.network != "loopback":
            if self.options.network == "namespaces":
                raise RehearsalError(
                    f"--network namespaces: --runtime {self.runtime.name}: {problem}"
                    " (use --runtime process or podman)"
                )
            return podnet.LoopbackNetwork(
                self.options.pod_network, f"--runtime {self.runtime.name}: {problem}"
            )
        return podnet.choose(self.options.network, self.options.pod_network)

    def rollout_controller(self, workload: DeploymentController | None = None):
        return RolloutController(
            self.timeline,
            self.make_pod,
            self.rng,
            rollout=self.target.rollout,
            route=self.route,
            analyse=self.analyse,
            workload=workload,
        )

    def release(self) -> None:
        """Apply the target. An adoption creates the Rollout beside the running Deployment,
        whose controller keeps running (and rolls its own template if that changed too)."""
        self.released_at = self.timeline.now()
        if not self.adopting:
            self.controller.apply(self.target.deployment)
        else:
            deployment_controller = self.controller
            deployment_controller.apply(self.target.rollout.workload_ref.deployment)
            self.controller = self.rollout_controller(workload=deployment_controller)
            self.controller.apply(self.target.deployment)
            self.controller.start()
        self.release_autoscaler()

    def release_autoscaler(self) -> None:
        """The HPA as the new state has it: created, changed (its target may now be the
        Rollout) or deleted."""
        if self.autoscaling is None:
            return
        spec = self.target.autoscaler
        if spec is None:
            self.say("the new state has no HorizontalPodAutoscaler: it is deleted")
            asyncio.get_running_loop().create_task(self.autoscaling.stop())
        else:
            self.autoscaling.apply(spec, self.controller)

    def make_pod(self, name: str, template: PodTemplate) -> Pod:
        address = self.network.allocate(name, template.container_port)
        if self.edge is not None and self.edge.gate is not None:
            # The load balancer controller's webhook adds its readiness gate at the pod's
            # creation (the namespace carries elbv2.k8s.aws/pod-readiness-gate-inject).
            gates = (*template.readiness_gates, self.edge.gate)
            template = replace(template, readiness_gates=gates)
        pod = Pod(
            name,
            template,
            address,
            self.runtime,
            self.timeline,
            self.pod_changed,
            self.log_dir,
            self.network,
        )
        pod.observer = ShutdownObserver(
            name,
            address,
            template.container_port,
            self.options.path,
            partial(self.network.listening, name, address, template.container_port),
        )
        self.pods_by_name[name] = pod
        return pod

    def pod_changed(self, pod: Pod) -> None:
        for service in self.services.values():
            service.publish(pod)
        if self.edge is not None:
            self.edge.pod_changed()
        self.controller.wake.set()
        if isinstance(self.controller, RolloutController) and self.controller.workload:
            self.controller.workload.wake.set()

    def route(self, name: str, template_hash: str) -> None:
        """Argo Rollouts sets a managed Service's selector to one pod-template hash."""
        service = self.services[name]
        if service.template_hash != template_hash:
            self.timeline.record(
                f"service {name}", "selector", f"pod-template hash {template_hash}"
            )
            service.select(template_hash, self.controller.pods())

    async def analyse(self, analysis: Analysis, service: str) -> bool:
        # Node 0's entry points, and the node's namespace where the rules are the kernel's.
        entries = {name: emulated.entry_points[0] for name, emulated in self.services.items()}
        addresses = {name: entry.partition("@")[0] for name, entry in entries.items()}
        runs = await run_analysis(
            analysis,
            addresses,
            self.target.deployment.template.version,
            self.log_dir,
            number=len(self.analysis_runs) + 1,
            network=self.network.node_netns(0),
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

    def starting_state_up(self) -> bool:
        """Every pod the controller wants is ready and routed, in every view and the proxy."""
        replicas = self.controller.spec.replicas
        return (
            self.users.ready_everywhere(replicas)
            and sum(pod.ready for pod in self.controller.pods()) == replicas
            and (self.edge is None or len(self.edge.routed()) == replicas)
        )

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

    def reachable(self, pod: str) -> bool:
        """Can a user's request still reach this pod (through the exposure's proxy if there is
        one, else through the Service)?"""
        if self.edge is not None:
            return self.edge.reachable(pod)
        return self.users.reachable(pod)

    def unreachable(self, pods: list[Pod]) -> bool:
        return all(pod.gone or not self.reachable(pod.name) for pod in pods)

    def old_pods_settled(self) -> bool:
        """Every old pod, and any other pod being deleted (a fault), can no longer receive a
        request (or, with --wait-for-exit, is gone). Argo Rollouts keeps old pods up after a
        blue-green switch (scaleDownDelaySeconds): there, out of the users' Service is enough."""
        if isinstance(self.controller, RolloutController) and not self.options.wait_for_exit:
            # Pods the HPA removed terminate like any other.
            terminating = [pod for pod in self.controller.pods() if pod.terminating]
            return self.unreachable(self.controller.old_pods() + terminating)
        old = {pod.name for rs in self.controller.old for pod in rs.pods}
        for pod in self.controller.pods():
            if pod.gone or not (pod.terminating or pod.name in old):
                continue
            if self.options.wait_for_exit or not pod.terminating:
                return False
            # No route to it and no connection open to it: no request can reach it, whether
            # its preStop hook still waits or not.
            if self.reachable(pod.name):
                return False
        return True

    def freeze_views(self) -> None:
        """--freeze-view: that node's kube-proxy restarts; every Service's view on it freezes."""
        loop = asyncio.get_running_loop()
        for frozen in self.options.frozen_views:
            for service in self.services.values():
                loop.call_later(frozen.start, service.views[frozen.node].freeze, frozen.seconds)

    async def finish_faults(self, tasks: list[asyncio.Task]) -> list[FaultReport]:
        if not tasks:
            return []
        limit = max(1.0, self.options.time_limit - self.timeline.now())
        done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
            self.say("a fault was still running at the time limit")
        return [task.result() for task in tasks if task in done]

    async def bring_up(self) -> None:
        """The pod network, each node's rules, the Services, the exposure, then the source."""
        options = self.options
        await self.network.start(options.nodes)
        self.say(f"pod network: {self.network.describe()}")
        for proxier in self.proxiers:
            await proxier.start()
        for service in self.services.values():
            await service.start()
        where = [entry.partition("@")[0] for entry in self.users.entry_points]
        self.say(
            f"Service {self.target.service.name}:{self.target.service.port} emulated on "
            f"{options.nodes} node(s) at {', '.join(dict.fromkeys(where))}; endpoint lag "
            f"{options.lag.describe()}, EndpointSlice batch {options.batch_period:g}s"
        )
        if self.edge is not None:
            await self.edge.start()
            self.say(self.edge.describe(options.alb_lag))
        for service in self.services.values():
            service.lagging(False)  # until the starting state is up: see EndpointView.lagging
        self.controller.apply(self.source.deployment)
        if options.start_replicas is not None:
            self.controller.update_scale(options.start_replicas)  # as an HPA left it
        self.controller.start()

    async def run(self) -> Result:
        options = self.options
        deployment = self.source.deployment
        load: LoadProcess | None = None
        shaping: asyncio.Task | None = None
        try:  # whatever fails from here on, teardown removes what was started
            await self.bring_up()
            up = await self.wait_for(
                self.starting_state_up,
                deployment.progress_deadline_seconds,
                f"{self.controller.spec.replicas} ready {deployment.template.version} pods",
            )
            if not up:
                raise RehearsalError(
                    f"{self.source.source}: the starting state never became ready "
                    f"(pod logs: {self.log_dir})"
                )
            for pod in self.controller.pods():
                pod.backdate(STARTING_AGE)
            for service in self.services.values():
                service.lagging(True)
            load = LoadProcess(
                LoadConfig(
                    # The exposure's proxy, or each node's Service: clients spread over them.
                    self.edge.entry_points if self.edge else self.users.entry_points,
                    options.clients,
                    path=options.path,
                    expect_status=options.expect_status,
                    request_timeout=options.request_timeout,
                    max_seconds=options.time_limit,
                    seed=options.seed,
                ),
                self.log_dir / "load-records.json",
            )
            await load.start()
            load_started = self.timeline.now()
            if self.autoscaling is not None:
                self.autoscaling.start(self.source.autoscaler, self.controller)
            capacity = None
            rate = options.rate
            if rate is None:
                self.say(f"measuring capacity for {options.capacity_seconds:g}s (closed loop)")
                capacity = await load.measure_capacity(options.capacity_seconds)
                rate = max(1.0, capacity * options.load_fraction)
                self.say(f"capacity {capacity:.0f} req/s; load {rate:.0f} req/s")
            shaping = asyncio.get_running_loop().create_task(self.shape_load(load, rate))
            steady_started = self.timeline.now()
            await asyncio.sleep(options.steady_seconds)
            rollout_started = self.timeline.now()
            self.say(f"rollout: applying {self.target.source}")
            self.release()
            fault_tasks = faults.start(
                faults.Cluster(
                    self.controller, self.users, self.timeline, self.target.disruption_budget
                ),
                options.faults,
            )
            self.freeze_views()
            limit = max(1.0, options.time_limit - self.timeline.now())
            await self.wait_for(
                lambda: self.controller.completed_at is not None or self.controller.failed_reason,
                limit,
                "the rollout to finish",
                load,
            )
            fault_reports = await self.finish_faults(fault_tasks)
            await self.wait_for(
                lambda: self.timeline.now() >= rollout_started + options.hold_seconds,
                options.hold_seconds + 1,
                "the end of --hold",
                load,
            )
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
            if shaping is not None:
                shaping.cancel()
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
            proxy_no_endpoint=self.users.no_endpoint,
            proxy_backend_failed=sum(self.users.backend_failed.values()),
            faults=fault_reports,
            aborted=getattr(self.controller, "abort_reason", ""),
            analyses=self.analysis_runs,
            views=[view for service in self.services.values() for view in service.summaries()],
            failure_traces=failure_traces(
                [r for r in records if not r.ok],
                self.users.traces(),
                self.log_dir,
                self.timeline.wall_start,
                pods=self.pod_addresses() if self.proxiers and self.edge is None else None,
            ),
            notes=[
                *self.source.notes,
                *self.runtime.notes(),
                *self.autoscaler_notes(),
                *self.network_notes(),
            ],
            replica_sets=replica_set_summaries(self.controller),
            final_replicas=self.controller.spec.replicas,
            server_stops=[
                stop
                for pod in self.pods_by_name.values()
                if pod.observer is not None and (stop := pod.observer.result()) is not None
            ],
            autoscaling=self.autoscaling.summary() if self.autoscaling else None,
            edge=self.edge.summary(
                self.pod_addresses(),
                self.timeline.wall_start,
            )
            if self.edge
            else None,
        )

    def pod_addresses(self) -> dict[str, str]:
        return {pod.address: pod.name for pod in self.pods_by_name.values()}

    def network_notes(self) -> list[str]:
        notes = [f"pod network: {self.network.describe()}"]
        failures = {proxier.failure for proxier in self.proxiers if proxier.failure}
        notes += [f"kube-proxy rules NOT written: {failure}" for failure in failures]
        return notes

    def autoscaler_notes(self) -> list[str]:
        hpa = self.target.autoscaler or self.source.autoscaler
        if hpa is None or self.autoscaling is not None:
            return []
        return [
            f"HorizontalPodAutoscaler {hpa.name} NOT run (--pin-replicas): replicas fixed at"
            f" {self.controller.spec.replicas}"
        ]

    async def shape_load(self, load: LoadProcess, rate: float) -> None:
        """The load's rate along --load-shape, `rate` being its peak."""
        shape, sent = self.options.shape, None
        while True:
            since = None if self.released_at is None else self.timeline.now() - self.released_at
            wanted = max(1.0, rate * shape.fraction(since))
            if wanted != sent:
                load.set_rate(wanted)
                sent = wanted
            await asyncio.sleep(STEP_SECONDS)

    async def teardown(self) -> None:
        if self.autoscaling is not None:
            await self.autoscaling.stop()
        await self.controller.stop()
        await asyncio.gather(
            *(pod.force_stop() for pod in self.controller.pods()), return_exceptions=True
        )
        await self.runtime.cleanup()
        if self.edge is not None:
            await self.edge.stop()
        for service in self.services.values():
            await service.stop()
        for proxier in self.proxiers:
            await proxier.stop()
        await self.network.stop()

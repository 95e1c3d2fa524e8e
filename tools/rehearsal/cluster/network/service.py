"""A Service as the cluster runs it: the EndpointSlice controller publishing its endpoints, and
on every node a kube-proxy with its own view of them and its own rules (here a TCP proxy).

Clients on a node go through that node's proxy, so what loses requests is the worst view. The
Service's figures (connections, failures, traces) are the sum over its proxies.
"""

import random
from collections import Counter

from tools.rehearsal.cluster.network.endpointslice import EndpointSliceController
from tools.rehearsal.cluster.network.lag import Lag
from tools.rehearsal.cluster.network.proxy import ConnectionTrace, ServiceProxy
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView, ViewSummary
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.timeline import Timeline


class EmulatedService:
    """One view and one proxy per node (`lags`: each node's lag model); Argo Rollouts may narrow
    its selector to one pod-template hash (None: every pod of the workload)."""

    def __init__(
        self,
        name: str,
        timeline: Timeline,
        lags: list[Lag],
        rng: random.Random,
        batch_period: float = 0.0,
        source: str = "service",  # its views' events
        template_hash: str | None = None,
    ) -> None:
        self.name = name
        self.template_hash = template_hash
        self.views = [
            EndpointView(
                timeline,
                lag,
                random.Random(rng.random()),  # each node its own draws, all from the run's seed
                name=source if len(lags) == 1 else f"{source} node {node}",
                node=node,
            )
            for node, lag in enumerate(lags)
        ]
        self.proxies = [ServiceProxy(view) for view in self.views]
        self.slices = EndpointSliceController(self.views, batch_period)

    def summaries(self) -> list[ViewSummary]:
        return [view.summary(self.name) for view in self.views]

    def endpoint(self, pod: Pod) -> Endpoint | None:
        selected = self.template_hash in (None, pod.template.template_hash)
        return pod.endpoint() if selected else None

    def publish(self, pod: Pod) -> None:
        self.slices.pod_changed(pod.name, self.endpoint(pod))

    def select(self, template_hash: str, pods: list[Pod]) -> None:
        """The selector moves to one pod-template hash: one EndpointSlice update, every
        endpoint at once."""
        self.template_hash = template_hash
        self.slices.service_changed({pod.name: self.endpoint(pod) for pod in pods})

    async def start(self) -> None:
        for proxy in self.proxies:
            await proxy.start()

    async def stop(self) -> None:
        for proxy in self.proxies:
            await proxy.stop()

    @property
    def entry_points(self) -> tuple[str, ...]:
        """Each node's "host:port" of the Service: where that node's clients connect."""
        return tuple(f"{proxy.host}:{proxy.port}" for proxy in self.proxies)

    def ready_everywhere(self, count: int) -> bool:
        return all(len(view.ready) == count for view in self.views)

    def reachable(self, pod: str) -> bool:
        """Can a request still reach this pod through any node?"""
        return any(proxy.reachable(pod) for proxy in self.proxies)

    def open_connections(self, pod: str) -> int:
        return sum(proxy.open[pod] for proxy in self.proxies)

    @property
    def no_endpoint(self) -> int:
        return sum(proxy.no_endpoint for proxy in self.proxies)

    @property
    def backend_failed(self) -> Counter[str]:
        return sum((proxy.backend_failed for proxy in self.proxies), Counter())

    def traces(self) -> list[ConnectionTrace]:
        """Every node's connections, in order of acceptance (client ports are unique on the
        clients' address at any moment, so a port and a time find one connection)."""
        return sorted(
            (trace for proxy in self.proxies for trace in proxy.traces),
            key=lambda trace: trace.accepted,
        )

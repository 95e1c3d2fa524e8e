"""A Service as the cluster runs it: the EndpointSlice controller publishing its endpoints, and
on every node a kube-proxy with its own view of them and its own rules.

The rules are either the kernel's (NAT in each node's network namespace, written by the node's
iptables Proxier: iptables.py) or, on the loopback network, a TCP proxy per node (proxy.py).
Clients on a node go through that node's rules, so what loses requests is the worst view. The
Service's figures (connections, failures, traces) are the sum over its nodes; only the TCP
proxies see each connection (traces), the kernel's NAT shows its failures to the client alone.
"""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.endpointslice import EndpointSliceController
from tools.rehearsal.cluster.network.iptables import Proxier, ServicePort
from tools.rehearsal.cluster.network.lag import Lag
from tools.rehearsal.cluster.network.podnet import NamespaceNetwork
from tools.rehearsal.cluster.network.proxy import ConnectionTrace, ServiceProxy
from tools.rehearsal.cluster.network.sockets import (
    connections_to,
    dnat_destinations,
)
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView, ViewSummary
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.timeline import Timeline


@dataclass(frozen=True)
class KernelRules:
    """Where the Service's rules are the kernel's: the run's namespaces, each node's Proxier,
    and the Service's ClusterIP and port."""

    network: NamespaceNetwork
    proxiers: list[Proxier]
    cluster_ip: str
    port: int
    namespace: str = "default"


class EmulatedService:
    """One view per node (`lags`: each node's lag model), and the node's rules: `kernel` or a
    TCP proxy per node. Argo Rollouts may narrow its selector to one pod-template hash (None:
    every pod of the workload)."""

    def __init__(
        self,
        name: str,
        timeline: Timeline,
        lags: list[Lag],
        rng: random.Random,
        batch_period: float = 0.0,
        source: str = "service",  # its views' events
        template_hash: str | None = None,
        kernel: KernelRules | None = None,
    ) -> None:
        self.name = name
        self.template_hash = template_hash
        self.kernel = kernel
        self.nodes = len(lags)  # views beyond these are others' (a gateway's, behind it)
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
        self.proxies = [] if kernel else [ServiceProxy(view) for view in self.views]
        if kernel is not None:
            for view, proxier in zip(self.views, kernel.proxiers, strict=True):
                port = f"{kernel.namespace}/{name}:{kernel.port}"
                proxier.add(ServicePort(port, kernel.cluster_ip, kernel.port, view))
                view.on_apply = proxier.changed
        self.slices = EndpointSliceController(self.views, batch_period)
        self.ports: dict[str, int] = {}  # each published pod's port, to count its connections

    def lagging(self, on: bool) -> None:
        """Whether endpoint changes reach every view (the edge's too) after their lag, or at
        once."""
        for view in self.slices.views:
            view.lagging = on

    def summaries(self) -> list[ViewSummary]:
        return [view.summary(self.name) for view in self.views]

    def endpoint(self, pod: Pod) -> Endpoint | None:
        selected = self.template_hash in (None, pod.template.template_hash)
        return pod.endpoint() if selected else None

    def publish(self, pod: Pod) -> None:
        self.ports[pod.name] = pod.port
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
        """Each node's "host:port" of the Service, where that node's clients connect, and in
        the kernel's case "@" and the file of the node's network namespace they connect from."""
        if self.kernel is not None:
            return tuple(
                f"{self.kernel.cluster_ip}:{self.kernel.port}@{self.kernel.network.node_netns(i)}"
                for i in range(self.nodes)
            )
        return tuple(f"{proxy.host}:{proxy.port}" for proxy in self.proxies)

    async def open_connection(
        self, node: int = 0
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A client's connection to the Service from `node`."""
        if self.kernel is None:
            proxy = self.proxies[node]
            return await asyncio.open_connection(proxy.host, proxy.port)
        sock = netns.socket_in(self.kernel.network.node_netns(node))
        try:
            address = (self.kernel.cluster_ip, self.kernel.port)
            await asyncio.get_running_loop().sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    def pod_of(self, node: int, client_port: int) -> str:
        """The pod a client's connection through `node` went to ("" when unknown): from the
        proxy's records, or the node's conntrack table."""
        if self.kernel is None:
            traces = self.proxies[node].traces
            found = next((t for t in reversed(traces) if t.client_port == client_port), None)
            return found.pod if found else ""
        network = self.kernel.network
        key = (client_port, self.kernel.cluster_ip)
        table = network.node_namespace(node).proc_net("nf_conntrack")
        address = dnat_destinations(table, {key}).get(key)
        return network.pod_at(address) if address else ""

    def ready_everywhere(self, count: int) -> bool:
        if self.kernel is not None and not all(p.in_sync for p in self.kernel.proxiers):
            return False
        return all(len(view.ready) == count for view in self.views[: self.nodes])

    def reachable(self, pod: str) -> bool:
        """Can a request still reach this pod through any node: a route to it in a node's rules,
        or a connection still open to it?"""
        if any(view.routable(pod) for view in self.views[: self.nodes]):
            return True
        if self.kernel is not None and not all(p.in_sync for p in self.kernel.proxiers):
            return True  # a view has moved on, the node's rules not yet
        return self.open_connections(pod) > 0

    def open_connections(self, pod: str) -> int:
        if self.kernel is None:
            return sum(proxy.open[pod] for proxy in self.proxies)
        namespace = self.kernel.network.pod_namespace(pod)
        if namespace is None or pod not in self.ports:
            return 0
        return connections_to(namespace.path, self.ports[pod], self.kernel.network.control_plane)

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

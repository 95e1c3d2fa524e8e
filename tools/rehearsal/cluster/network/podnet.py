"""The pod network: where pods get their IPs, and where the rehearsal's control plane and each
node's clients stand.

Two kinds, chosen per run (`--network`):

- NamespaceNetwork, as a bridge CNI plugin builds it (containernetworking/plugins
  plugins/main/bridge): a "cluster" namespace holds the bridge; each node and each pod is a
  namespace of its own with a veth pair into that bridge and an address on one flat pod network.
  A server binds 0.0.0.0:containerPort as in its pod. The control plane (the kubelet's probes and
  hooks, the gateway and load balancer stand-ins) runs in the cluster namespace: the rehearsal's
  thread moves there for the run. Nothing is routed from the host's own namespace: the pod network
  is reachable only from inside the namespaces the run made.
- LoopbackNetwork, everywhere else (not root, not Linux): each pod is a loopback address of the
  host (addresses.py) that its server must bind to.
"""

import contextlib
import ipaddress
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

from tools.rehearsal.cluster.network import netns, sockets
from tools.rehearsal.cluster.network.addresses import AddressPool
from tools.rehearsal.errors import RehearsalError

POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/16")
BRIDGE = "cni0"
BRIDGE_ADDRESS = POD_NETWORK[1]  # the cluster namespace's: the control plane's source address
FIRST_NODE = 10  # node i is 10.244.0.(10 + i)
FIRST_POD = 258  # pods from 10.244.1.2 on
FIRST_SERVICE = 10  # the k-th Service's ClusterIP is 10.96.0.(10 + k)


@dataclass(frozen=True)
class PodAddress:
    address: str  # the pod IP
    netns: str | None = None  # the file of its network namespace; None: the host's loopback


async def ip(namespace: netns.Namespace, *commands: str) -> None:
    """`ip` commands run in `namespace`, in one `ip -batch`."""
    await netns.run(namespace.path, "ip", "-batch", "-", stdin="\n".join(commands).encode())


class PodNetwork(ABC):
    kind = ""

    @abstractmethod
    async def start(self, nodes: int) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def allocate(self, pod: str, port: int) -> str:
        """The pod's IP, chosen when the pod is created."""

    @abstractmethod
    async def sandbox(self, pod: str) -> PodAddress:
        """The pod's network, made before its first container starts (the kubelet's
        RunPodSandbox); the same one for each restart."""

    async def remove(self, pod: str) -> None:
        """The pod is gone: its network goes (the kubelet's StopPodSandbox)."""
        return

    @abstractmethod
    def node_netns(self, index: int) -> str | None:
        """The file of node `index`'s network namespace, where its clients connect from; None:
        the host's own (its clients on loopback)."""

    @abstractmethod
    def listening(self, pod: str, address: str, port: int) -> bool:
        """Whether the pod's network has a socket listening on `port` at `address` (or on every
        address): its server's, until it stops accepting."""

    def describe(self) -> str:
        return self.kind


class LoopbackNetwork(PodNetwork):
    """Each pod a loopback address of the host; the nodes' clients on 127.0.1.1."""

    kind = "loopback"

    def __init__(self, pod_network: str = "127.0.0.0/24", why: str = "") -> None:
        self.pool = AddressPool(pod_network)
        self.addresses: dict[str, str] = {}
        self.why = why  # why not namespaces

    async def start(self, nodes: int) -> None:
        return

    async def stop(self) -> None:
        self.pool.close()

    def allocate(self, pod: str, port: int) -> str:
        self.addresses[pod] = self.pool.allocate(port)
        return self.addresses[pod]

    async def sandbox(self, pod: str) -> PodAddress:
        return PodAddress(self.addresses[pod])

    def node_netns(self, index: int) -> str | None:
        return None

    def listening(self, pod: str, address: str, port: int) -> bool:
        return sockets.listening(None, address, port)  # the host's: every pod's address is there

    def describe(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"loopback: pods are 127.0.0.x addresses of this host{why}"


class NamespaceNetwork(PodNetwork):
    kind = "namespaces"

    def __init__(self) -> None:
        self.cluster: netns.Namespace | None = None
        self.nodes: list[netns.Namespace] = []
        self.pods: dict[str, netns.Namespace] = {}
        self.addresses: dict[str, str] = {}
        self.links = 0  # veth pairs made: each one's name in the cluster namespace
        self.allocated = 0
        self.home: int | None = None  # the thread's own namespace, to return to

    async def start(self, nodes: int) -> None:
        self.cluster = await netns.create("cluster")
        # The control plane's sockets and processes from now on: in the cluster namespace, where
        # every node's and pod's namespace is made, each with a TCP table of its own.
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        with open(self.cluster.path) as cluster:
            netns.setns(cluster.fileno())
        own_tcp_tables()
        await ip(
            self.cluster,
            "link set lo up",
            f"link add {BRIDGE} type bridge",
            f"addr add {BRIDGE_ADDRESS}/{POD_NETWORK.prefixlen} dev {BRIDGE}",
            f"link set {BRIDGE} up",
        )
        for index in range(nodes):
            node = await netns.create(f"node-{index}")
            self.nodes.append(node)
            await self.attach(node, str(POD_NETWORK[FIRST_NODE + index]), service_route=True)

    async def attach(self, namespace: netns.Namespace, address: str, service_route=False) -> None:
        """A veth pair from the bridge to `namespace`, which gets `address` on its eth0."""
        self.links += 1
        outside = f"veth{self.links}"
        await ip(
            self.cluster,
            f"link add {outside} type veth peer name eth0 netns {namespace.pid}",
            f"link set {outside} master {BRIDGE} up",
        )
        commands = [
            "link set lo up",
            f"addr add {address}/{POD_NETWORK.prefixlen} dev eth0",
            "link set eth0 up",
        ]
        if service_route:
            # kube-proxy's rules rewrite a ClusterIP before routing; the route only lets the
            # first packet leave (a node routes Service addresses to its default gateway).
            commands.append(f"route add {SERVICE_NETWORK} dev eth0")
        await ip(namespace, *commands)

    async def stop(self) -> None:
        if self.home is not None:
            netns.setns(self.home)
            os.close(self.home)
            self.home = None
        for namespace in [*self.pods.values(), *self.nodes, self.cluster]:
            if namespace is not None:
                await namespace.close()
        self.pods, self.nodes, self.cluster = {}, [], None

    def allocate(self, pod: str, port: int) -> str:
        index = FIRST_POD + self.allocated
        if index >= POD_NETWORK.num_addresses - 1:
            raise RehearsalError(f"no free pod address left in {POD_NETWORK}")
        self.allocated += 1
        self.addresses[pod] = str(POD_NETWORK[index])
        return self.addresses[pod]

    async def sandbox(self, pod: str) -> PodAddress:
        if pod not in self.pods:
            namespace = await netns.create(pod)
            self.pods[pod] = namespace
            await self.attach(namespace, self.addresses[pod])
        return PodAddress(self.addresses[pod], self.pods[pod].path)

    async def remove(self, pod: str) -> None:
        namespace = self.pods.pop(pod, None)
        if namespace is not None:
            await namespace.close()

    def node_netns(self, index: int) -> str | None:
        return self.nodes[index].path

    def listening(self, pod: str, address: str, port: int) -> bool:
        namespace = self.pods.get(pod)
        return namespace is not None and sockets.listening(namespace.path, address, port)

    @property
    def control_plane(self) -> str:
        """The address the kubelet's probes and hooks come from."""
        return str(BRIDGE_ADDRESS)

    def node_namespace(self, index: int) -> netns.Namespace:
        return self.nodes[index]

    def pod_at(self, address: str) -> str:
        return next((pod for pod, ip in self.addresses.items() if ip == address), "")

    def pod_namespace(self, pod: str) -> netns.Namespace | None:
        return self.pods.get(pod)

    def describe(self) -> str:
        return (
            f"namespaces: each pod in its own network namespace on {POD_NETWORK} (bridge"
            f" {BRIDGE}), Services as kube-proxy's iptables rules in each node's namespace"
        )


# Namespaces share the host's TCP hash table unless their parent sets this (Linux 6.1,
# Documentation/networking/ip-sysctl.rst); listing a namespace's connections (sock_diag or
# /proc/net/tcp), as the rehearsal does many times a second, walks every bucket of it: 10 ms for
# the 262 144 of a 24 GiB host, 0.65 ms for this size, which still holds 8 192 TIME_WAIT sockets
# a namespace.
CHILD_TCP_TABLE = 16384


def own_tcp_tables() -> None:
    """Give every namespace made from the calling thread's one a TCP hash table of its own."""
    setting = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
    with contextlib.suppress(OSError), open(setting, "w") as entries:
        entries.write(str(CHILD_TCP_TABLE))  # without it (before Linux 6.1): the shared table


def cluster_ip(index: int) -> str:
    return str(SERVICE_NETWORK[FIRST_SERVICE + index])


def choose(requested: str, pod_network: str) -> PodNetwork:
    """The network a run uses: `requested` is auto, namespaces or loopback."""
    why_not = netns.available()
    if requested == "namespaces" and why_not:
        raise RehearsalError(f"--network namespaces: not possible here: {why_not}")
    if requested == "loopback" or why_not:
        return LoopbackNetwork(pod_network, why_not or "")
    return NamespaceNetwork()

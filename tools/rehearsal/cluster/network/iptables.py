"""One node's kube-proxy in iptables mode: the node's Service rules, written into its network
namespace from that node's (late) view of each Service's endpoints.

Modelled on kubernetes pkg/proxy/iptables/proxier.go (syncProxyRules): a KUBE-SERVICES chain
matches each ClusterIP:port and jumps to the Service's KUBE-SVC- chain, which picks one
endpoint's KUBE-SEP- chain at random (`-m statistic --mode random --probability 1/(n-i)` for
the i-th of n), and the KUBE-SEP- chain DNATs to the pod. The endpoints are the ready ones, or,
only when none is ready, the serving terminating ones (pkg/proxy/topology.go
CategorizeEndpoints); a Service with neither is REJECTed in the filter table, so a client's
connect is refused. Each sync rewrites every chain in one iptables-restore, atomically, as
kube-proxy's full syncs do; connections already established keep their DNAT in conntrack.

Here no rule masquerades: a node's clients reach pods on the same bridge, and the pods answer
them directly.
"""

import asyncio
import base64
import hashlib
from dataclasses import dataclass

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.cluster.network.podnet import NamespaceNetwork
from tools.rehearsal.cluster.network.view import Endpoint, EndpointView


@dataclass(frozen=True)
class ServicePort:
    """One Service port as the node's kube-proxy knows it, and the view it learns endpoints
    from."""

    name: str  # namespace/name:port, as kube-proxy names it in its comments
    cluster_ip: str
    port: int
    view: EndpointView


def chain(prefix: str, *parts: str) -> str:
    """kube-proxy's chain names: a prefix and a hash (servicePortChainName and kin)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def endpoints_used(view: EndpointView) -> list[Endpoint]:
    return sorted(view.usable, key=lambda e: e.address)


def restore_input(services: list[ServicePort]) -> str:
    """The iptables-restore input of every Service on the node."""
    nat = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]",
    ]
    rules = ['-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    filter_ = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":KUBE-SERVICES - [0:0]",
        "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "
        '"kubernetes service portals" -j KUBE-SERVICES',
    ]
    for service in services:
        match = f"-d {service.cluster_ip}/32 -p tcp -m tcp --dport {service.port}"
        endpoints = endpoints_used(service.view)
        if not endpoints:
            filter_.append(
                f'-A KUBE-SERVICES -m comment --comment "{service.name} has no endpoints" '
                f"{match} -j REJECT --reject-with icmp-port-unreachable"
            )
            continue
        svc = chain("KUBE-SVC-", service.name)
        nat.append(f":{svc} - [0:0]")
        rules.append(
            f'-A KUBE-SERVICES -m comment --comment "{service.name} cluster IP" {match} -j {svc}'
        )
        for index, endpoint in enumerate(endpoints):
            target = f"{endpoint.address}:{endpoint.port}"
            sep = chain("KUBE-SEP-", service.name, target)
            nat.append(f":{sep} - [0:0]")
            left = len(endpoints) - index
            pick = f" -m statistic --mode random --probability {1 / left:0.10f}" if left > 1 else ""
            rules.append(
                f'-A {svc} -m comment --comment "{service.name} -> {target}"{pick} -j {sep}'
            )
            rules.append(
                f'-A {sep} -m comment --comment "{service.name}" -p tcp -m tcp'
                f" -j DNAT --to-destination {target}"
            )
    return "\n".join([*nat, *rules, "COMMIT", *filter_, "COMMIT", ""])


RETRY_SECONDS = 1.0


class Proxier:
    """One node's kube-proxy: rewrites the node's rules whenever one of its views changes.

    Syncs never overlap: a change during a sync makes one more sync after it, with everything
    learnt by then (kube-proxy's BoundedFrequencyRunner, without a minimum interval)."""

    def __init__(self, network: NamespaceNetwork, node: int) -> None:
        self.network = network
        self.node = node
        self.services: list[ServicePort] = []
        self.dirty = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.syncs = 0
        self.syncing = False
        self.failure: str | None = None

    def add(self, service: ServicePort) -> None:
        self.services.append(service)

    async def start(self) -> None:
        await self.sync()
        self.task = asyncio.get_running_loop().create_task(self.loop())

    def changed(self) -> None:
        self.dirty.set()

    @property
    def in_sync(self) -> bool:
        """The rules hold everything the views know."""
        return self.syncs > 0 and not self.dirty.is_set() and not self.syncing

    async def loop(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            await self.sync()
            if self.failure is not None:
                await asyncio.sleep(RETRY_SECONDS)  # kube-proxy retries a failed sync, not at once

    async def sync(self) -> None:
        self.syncing = True
        try:
            await netns.run(
                self.network.node_namespace(self.node).path,
                "iptables-restore",
                stdin=restore_input(self.services).encode(),
            )
            self.syncs += 1
        except OSError as error:
            self.failure = self.failure or str(error)
            self.dirty.set()  # not in sync: the next sync tries again
        finally:
            self.syncing = False

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

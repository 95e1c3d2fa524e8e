"""The EndpointSlice controller's batching: when a Service's endpoints are published.

kubernetes pkg/controller/endpointslice/endpointslice_controller.go: a pod added, changed or
deleted queues its Services' sync after `endpointUpdatesBatchPeriod` (`queue.AddAfter`;
kube-controller-manager `--endpointslice-updates-batch-period`, 0 by default), and the workqueue
holds one pending sync per Service however many pods change meanwhile; a change of the Service
itself (its selector) queues the sync at once (`queue.Add`). The sync publishes the endpoints as
they are then: changes within one period reach the nodes as one update, and a pod's states in
between are never published.
"""

import asyncio

from tools.rehearsal.cluster.network.view import Endpoint, EndpointView


class EndpointSliceController:
    """Publishes one Service's endpoint changes to every node's view, batched."""

    def __init__(self, views: list[EndpointView], batch_period: float = 0.0) -> None:
        self.views = views
        self.batch_period = batch_period
        self.pending: dict[str, Endpoint | None] = {}  # each pod's latest, not yet published
        self.sync: asyncio.TimerHandle | None = None

    def pod_changed(self, pod: str, endpoint: Endpoint | None) -> None:
        self.pending[pod] = endpoint
        if self.batch_period <= 0:
            self.publish()
        elif self.sync is None:
            self.sync = asyncio.get_running_loop().call_later(self.batch_period, self.publish)

    def service_changed(self, endpoints: dict[str, Endpoint | None]) -> None:
        """The selector moved: every endpoint, and any batched pod change, in one update now."""
        self.pending.update(endpoints)
        self.publish()

    def publish(self) -> None:
        if self.sync is not None:
            self.sync.cancel()
            self.sync = None
        changes, self.pending = self.pending, {}
        if changes:
            for view in self.views:
                view.publish_all(changes)

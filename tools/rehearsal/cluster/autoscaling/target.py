"""What the HPA scales: its target's scale subresource (autoscaling/v1 Scale), which the
Deployment and the Argo Rollouts Rollout both serve."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Scale:
    spec_replicas: int  # spec.replicas: what the HPA reads as the current count and writes
    status_replicas: int  # status.replicas (a Rollout: status.HPAReplicas)
    # status.selector, the pods whose metrics count: every pod of the app (None), or only those
    # of one pod-template hash (a blue-green Rollout's active ReplicaSet).
    selector: str | None = None


class ScaleUpdateFailed(Exception):
    """update_scale could not write the scale (the HPA reports FailedRescale and retries at its
    next sync)."""


class ScaleTarget(Protocol):
    kind: str  # Deployment or Rollout

    def get_scale(self) -> Scale: ...

    def update_scale(self, replicas: int) -> None:
        """PUT the scale subresource: spec.replicas = replicas (the controller reacts); raises
        ScaleUpdateFailed when it cannot."""
        ...

"""The HPA controller's settings: kube-controller-manager's flags with their defaults
(kubernetes pkg/controller/podautoscaler/config/v1alpha1/defaults.go
RecommendedDefaultHPAControllerConfiguration), in seconds."""

from dataclasses import dataclass

from tools.rehearsal.cluster.autoscaling.behavior import (
    SCALE_UP_LIMIT_FACTOR,
    SCALE_UP_LIMIT_MINIMUM,
)


@dataclass(frozen=True)
class ControllerConfig:
    horizontal_pod_autoscaler_sync_period: float = 15.0
    horizontal_pod_autoscaler_tolerance: float = 0.1
    horizontal_pod_autoscaler_cpu_initialization_period: float = 300.0
    horizontal_pod_autoscaler_initial_readiness_delay: float = 30.0
    horizontal_pod_autoscaler_downscale_stabilization: float = 300.0
    # --feature-gates=HPAConfigurableTolerance (alpha in 1.33, beta and on since 1.35): the
    # tolerance of spec.behavior's rules replaces the flag's, per direction.
    hpa_configurable_tolerance: bool = True
    # Not flags: horizontal.go's scaleUpLimitFactor and scaleUpLimitMinimum, the cap of an HPA
    # without behavior (upstream's own tests raise the factor to 8).
    scale_up_limit_factor: float = SCALE_UP_LIMIT_FACTOR
    scale_up_limit_minimum: float = SCALE_UP_LIMIT_MINIMUM


DEFAULT_CONFIG = ControllerConfig()

"""The zero-downtime contract of the rendered overlays, one check per rule.

Each check takes an overlay (or all of them) and returns the problems it found; a problem names
the overlay, the resource and the field.

The pods are owned by the Deployment, or, when an overlay renders an Argo Rollouts Rollout
(components/rollout-*), by the Rollout. The timing contract is checked on the pod template the
pods run: the Rollout's own, or the Deployment its workloadRef names.
"""

from collections.abc import Callable

from tools.validate.invariants.common import Problems
from tools.validate.invariants.exposure import (
    check_alb_readiness_gate,
    check_alb_target_group,
    check_component_combination,
    check_exposure,
    check_exposure_timing,
)
from tools.validate.invariants.images import (
    check_image_pinned,
    check_only_image_differs,
    check_release_tags_differ,
)
from tools.validate.invariants.pod import (
    check_deployment,
    check_env,
    check_grace_period,
    check_liveness_not_on_ready,
    check_prestop,
    check_probe_ports,
    check_probe_timings_explicit,
    check_readiness_on_ready,
    check_settings,
)
from tools.validate.invariants.rollouts import (
    check_analysis_images,
    check_analysis_templates,
    check_analysis_volumes,
    check_blue_green_scale_down,
    check_canary_analysis_after_propagation,
    check_canary_steps,
    check_canary_surge,
    check_rollout,
    check_rollout_services,
)
from tools.validate.invariants.scaling import (
    check_autoscaler,
    check_disruption_budget,
    check_replicas,
    check_rolling_update,
    check_service,
)
from tools.validate.overlays import Overlay, Problem

OVERLAY_CHECKS: tuple[Callable[[Overlay], Problems], ...] = (
    check_deployment,
    check_readiness_on_ready,
    check_liveness_not_on_ready,
    check_probe_ports,
    check_probe_timings_explicit,
    check_env,
    check_settings,
    check_prestop,
    check_grace_period,
    check_rolling_update,
    check_replicas,
    check_autoscaler,
    check_disruption_budget,
    check_service,
    check_image_pinned,
    check_rollout,
    check_rollout_services,
    check_analysis_templates,
    check_analysis_volumes,
    check_analysis_images,
    check_blue_green_scale_down,
    check_canary_steps,
    check_canary_analysis_after_propagation,
    check_canary_surge,
    check_component_combination,
    check_exposure,
    check_exposure_timing,
    check_alb_target_group,
    check_alb_readiness_gate,
)
CROSS_OVERLAY_CHECKS: tuple[Callable[[list[Overlay]], Problems], ...] = (
    check_release_tags_differ,
    check_only_image_differs,
)


def check_overlays(overlays: list[Overlay]) -> list[Problem]:
    """Every problem of every overlay, then those between overlays."""
    problems = [
        problem for overlay in overlays for check in OVERLAY_CHECKS for problem in check(overlay)
    ]
    problems += [problem for check in CROSS_OVERLAY_CHECKS for problem in check(overlays)]
    return problems

"""The path from outside in the rehearsal: real pods behind the real proxy (HAProxy, the ALB
stand-in) and the emulated ALB target group, rendered from overlays with components/gateway-api
and aws-alb.

Both runs go side by side behind an ALB whose nodes learn of each deregistration 12 s late: the
components' preStop hook, its minimum lowered to 1 s and its in-service rule off so that only its
wait for the ALB's traffic to stop covers the lag, must lose nothing; a fixed preStop of 5 s (the
base's before the hook), then DRAIN_SECONDS, must lose requests to late deregistration. Scaled
down as
tests/test_rehearsal.py does (2 replicas, 1 worker) to keep the test short: the ALB checks its
targets every 2 s (AWS allows no less than 5), and the load balancer controller requeues every
2 s instead of 15 s (its --targetgroupbinding-requeue-duration).
"""

from pathlib import Path

import pytest

from tools.rehearsal import tolerance
from tools.rehearsal.cli import Plan, rehearse_side_by_side
from tools.rehearsal.cluster.edge.proxy import LATE_CAUSES
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.options import Options
from tools.repo import ROOT

COMPONENTS = ["gateway-api", "aws-alb"]
ALB_LAG = 12.0
FASTER_CHECKS = {
    "TargetGroupConfiguration": [
        variants.put("/spec/defaultConfiguration/healthCheckConfig/healthCheckInterval", 2),
        variants.put("/spec/defaultConfiguration/healthCheckConfig/healthCheckTimeout", 1),
    ]
}


def shrink(overlay: Path, directory: Path, fixed_pre_stop: int | None) -> list[dict]:
    """The env patched by index in the render with the components, which reorder it; the
    hook's minimum at 1 s, or a fixed preStop sleep."""
    rendered = variants.deployment(variants.write(overlay, [], directory, COMPONENTS))
    env = {"WEB_CONCURRENCY": "1", "DRAIN_SECONDS": "4", "GRACEFUL_TIMEOUT": "2"}
    if fixed_pre_stop is None:  # nothing but the wait for the ALB's requests to stop
        env |= {"PRESTOP_MIN_SECONDS": "1", "PRESTOP_MIN_SERVICE_SECONDS": "0"}
    ops = [
        variants.put("/spec/replicas", 2),
        variants.put("/spec/minReadySeconds", 1),
        *variants.env(rendered, env),
    ]
    if fixed_pre_stop is not None:
        ops += variants.fixed_pre_stop(rendered, fixed_pre_stop)
    return ops


@pytest.mark.rehearsal
def test_behind_an_alb_ours_loses_nothing_and_a_fixed_pre_stop_loses_requests(tmp_path):
    plans = []
    for name, fixed in (("ours", None), ("fixed", 5)):
        states = [
            load_overlay(
                variants.write(
                    ROOT / f"overlays/{v}",
                    shrink(ROOT / f"overlays/{v}", tmp_path / f"plain-{name}" / v, fixed),
                    tmp_path / name / v,
                    COMPONENTS,
                    kind_ops=FASTER_CHECKS | {variants.HPA: variants.hpa_min(2)},
                ),
                f"overlays/{v}+aws-alb ({name})",
            )
            for v in ("v1", "v2")
        ]
        options = Options(
            name=name,
            out_dir=tmp_path / "out",
            rate=60.0,
            alb_lag_delay=ALB_LAG,
            # The ALB's lag is the one under test: the controller's watch lags a fixed 0.5 s.
            propagation_delay=0.5,
            propagation_jitter=0.0,
            tgb_requeue=2.0,
            steady_seconds=0.5,
            tail_seconds=0.5,
            time_limit=150.0,
            progress=False,
            seed=5,
        )
        plans.append(Plan(*states, ProcessRuntime("app"), options))
    ours, naive = rehearse_side_by_side(plans)

    assert ours.target.exposure.kind == "aws-alb"
    found = tolerance.of(ours.target.deployment.template, "ours")
    assert found.floor < ALB_LAG < found.seconds  # the hook's wait, not its minimum, covers it
    assert ours.ok, ours.edge
    assert len(ours.records) > 1000
    # Every pod became ready only through its readiness gate, after its target was healthy.
    gates = [e for e in ours.events if e.kind == "condition" and e.detail.endswith("=True")]
    assert len(gates) == 4
    # The fixed preStop: a pod stops listening 5 + 4 s after it starts terminating, while the
    # ALB still routes to it for 12 s; the proxy's log names the cause.
    assert tolerance.of(naive.target.deployment.template, "fixed").seconds < ALB_LAG
    assert len(naive.failed) > 0
    late = sum(naive.edge.causes.get(cause, 0) for cause in LATE_CAUSES)
    assert late >= len(naive.failed) * 0.9, naive.edge.causes

"""The HorizontalPodAutoscaler acting in a real rehearsal (real server processes, their CPU read
from their cgroups by the emulated metrics-server), scaled down as tests/test_rehearsal.py scales
every process-heavy test (2 replicas, 1 worker, short delays) and with a CPU request low enough
that the tests' modest load drives the HPA (its target is a share of the request).

- during a rollout the HPA scales the Deployment up, the Deployment controller shares the new
  count between the old and the new ReplicaSet (sync.go scale), and nothing is lost;
- with no rollout, the HPA removes pods under load (the manifests' request, a load it needs its
  minimum for, its scale-down window shortened to 10 s): ours loses nothing, the naive design
  loses the requests of the kept-alive clients on the pods it removes.
"""

from pathlib import Path

import pytest

from tests.test_rehearsal import SMALL_HPA, V1, V2, options, rehearse, small
from tools.rehearsal.cli import Plan, rehearse_side_by_side
from tools.rehearsal.cluster.autoscaling.pipeline import HPA_PHASE, METRICS_PHASE
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.demo.ours import rescales_during_rollout
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay

CONTAINER = variants.CONTAINER
# 120 requests/s over two one-worker pods keeps each near 60m of CPU: above 70 % of this.
CPU_REQUEST = "40m"
# The release 2 s before the HPA's first sync with a full window of metrics (as the demo's).
RELEASE_AT = METRICS_PHASE + 15 + HPA_PHASE - 2


def hungry(overlay: Path) -> list[dict]:
    return [*small(overlay), variants.put(f"{CONTAINER}/resources/requests/cpu", CPU_REQUEST)]


@pytest.mark.rehearsal
def test_the_hpa_scales_the_deployment_during_its_rollout_and_nothing_is_lost(tmp_path):
    source = load_overlay(variants.write(V1, hungry(V1), tmp_path / "v1", kind_ops=SMALL_HPA))
    target = load_overlay(variants.write(V2, hungry(V2), tmp_path / "v2", kind_ops=SMALL_HPA))
    result = rehearse(source, target, options(tmp_path, release_at=RELEASE_AT))
    assert result.ok, result.rollout_failed
    during = rescales_during_rollout(result)
    assert during and during[0].desired_replicas > 2, result.autoscaling.syncs
    events = [e for e in result.events if e.kind == "proportional scale"]
    assert events, "the new count was not shared between the ReplicaSets"
    assert result.final_versions == ["v2"] * result.final_replicas
    assert result.final_replicas == during[-1].desired_replicas


@pytest.mark.rehearsal
def test_pods_the_hpa_removes_under_load_lose_nothing_of_ours_and_cut_the_naive_designs(
    tmp_path,
):
    hpa = "HorizontalPodAutoscaler"
    quicker = {hpa: SMALL_HPA[hpa] + variants.hpa_scale_down(window=10)[hpa]}
    plans = []
    for server, ops in (("app", []), ("naive", variants.naive(variants.deployment(V2)))):
        state = variants.write(V2, [*small(V2), *ops], tmp_path / server, kind_ops=quicker)
        workload = load_overlay(state, f"v2 ({server})")
        opts = options(
            tmp_path / server,
            rate=60.0,
            keepalive_clients=12,
            start_replicas=4,
            release_at=6.0,
            hold_seconds=14.0,
            name=server,
        )
        plans.append(Plan(workload, workload, ProcessRuntime(server), opts))
    ours, naive = rehearse_side_by_side(plans)
    for result in (ours, naive):
        removed = [s for s in result.autoscaling.syncs if s.rescaled and s.desired_replicas < 4]
        assert removed and removed[0].desired_replicas == 2, result.autoscaling.syncs
    assert ours.ok and not ours.failed
    assert naive.failed, "the naive design's removed pods cut nothing"
    assert {r.client for r in naive.failed} <= {"keep-alive", "python-requests", "go-net-http"}

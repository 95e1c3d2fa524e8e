"""The HorizontalPodAutoscaler removing pods in a real rehearsal (real server processes, their
CPU read from their cgroups by the emulated metrics-server), scaled down as tests/test_rehearsal.py
scales every process-heavy test (2 replicas, 1 worker, short delays), where the HPA scaling the
Deployment up during its rollout is rehearsed too.

With no rollout, the HPA removes pods under load (the manifests' request, a load it needs its
minimum for, its scale-down window shortened to 10 s): ours loses nothing, the naive design
loses the requests of the kept-alive clients on the pods it removes.
"""

import pytest

from tests.test_rehearsal import V2, options, small
from tools.rehearsal.cli import Plan, rehearse_side_by_side
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay


@pytest.mark.rehearsal
def test_pods_the_hpa_removes_under_load_lose_nothing_of_ours_and_cut_the_naive_designs(
    tmp_path,
):
    quicker = {variants.HPA: [*variants.hpa_min(2), *variants.hpa_scale_down(window=10)]}
    plans = []
    for server, ops in (("app", []), ("naive", variants.naive(variants.deployment(V2)))):
        state = variants.write(V2, [*small(V2), *ops], tmp_path / server, kind_ops=quicker)
        workload = load_overlay(state, f"v2 ({server})")
        opts = options(
            tmp_path / server,
            rate=60.0,
            keepalive_clients=12,
            start_replicas=4,
            steady_seconds=1.0,
            hold_seconds=19.0,
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

"""The fallback network where no namespace can be made (not root, not Linux): pods are 127.0.0.x
addresses of this host and each node's Service a TCP relay (tools/rehearsal/cluster/network/
podnet.py LoopbackNetwork, proxy.py). Run here as root with `network="loopback"`: ours rolls out
losing nothing, and the naive design loses requests in the same harness; the run says which
network it used."""

from pathlib import Path

import pytest

from tests.test_rehearsal import V1, V2, options, rehearse, small, variant
from tools.rehearsal.cluster.node.runtime import ProcessRuntime
from tools.rehearsal.manifests import variants

LOOPBACK = "pod network: loopback"


@pytest.mark.rehearsal
def test_on_loopback_ours_loses_nothing_and_the_naive_design_loses_requests(tmp_path: Path):
    ours = rehearse(
        variant(tmp_path, V1, small(V1), "v1"),
        variant(tmp_path, V2, small(V2), "v2"),
        options(tmp_path, network="loopback"),
    )

    def naive(overlay: Path, name: str):
        ops = [op for op in small(overlay) if not op["path"].endswith("/lifecycle")]
        return variant(tmp_path, overlay, ops + variants.naive(variants.deployment(overlay)), name)

    naive_result = rehearse(
        naive(V1, "naive-v1"),
        naive(V2, "naive-v2"),
        options(tmp_path, network="loopback", name="naive"),
        ProcessRuntime("naive"),
    )
    for result in (ours, naive_result):
        assert result.rollout_completed is not None
        assert any(note.startswith(LOOPBACK) for note in result.notes), result.notes
        assert all(pod.address.startswith("127.") for pod in result.pods)
    assert ours.failed == [] and len(ours.records) > 1000
    assert len(naive_result.failed) > 0

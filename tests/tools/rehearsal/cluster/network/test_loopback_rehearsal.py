"""The fallback network where no namespace can be made (not root, not Linux): pods are 127.0.0.x
addresses of this host and each node's Service a TCP relay (tools/rehearsal/cluster/network/
podnet.py LoopbackNetwork, proxy.py). Run here as root with `network="loopback"`: ours rolls out
losing nothing, and the same pods lose requests in the same harness when every view learns of a
deletion later than they keep accepting (preStop 1 s + DRAIN_SECONDS 4 s, every view 6 s late);
the run says which network it used."""

from pathlib import Path

import pytest

from tests.test_rehearsal import V1, V2, options, small, variant
from tools.rehearsal.cli import Plan, rehearse_side_by_side
from tools.rehearsal.cluster.node.runtime import ProcessRuntime

LOOPBACK = "pod network: loopback"


@pytest.mark.rehearsal
def test_on_loopback_ours_loses_nothing_and_a_view_later_than_its_contract_loses_requests(
    tmp_path: Path,
):
    source = variant(tmp_path, V1, small(V1, pre_stop=1), "v1")
    target = variant(tmp_path, V2, small(V2, pre_stop=1), "v2")
    ours, late = rehearse_side_by_side(
        [
            Plan(source, target, ProcessRuntime("app"), options(tmp_path, network="loopback")),
            Plan(
                source,
                target,
                ProcessRuntime("app"),
                options(
                    tmp_path,
                    network="loopback",
                    name="late",
                    propagation_delay=6.0,
                    propagation_jitter=0.0,
                ),
            ),
        ]
    )
    for result in (ours, late):
        assert result.rollout_completed is not None
        assert any(note.startswith(LOOPBACK) for note in result.notes), result.notes
        assert all(pod.address.startswith("127.") for pod in result.pods)
    assert ours.failed == [] and len(ours.records) > 500
    # New connections from relays still routing to pods that had stopped listening (the relay
    # accepted them, so the client sees them reset, where the kernel's NAT refuses them).
    assert len(late.failed) > 0

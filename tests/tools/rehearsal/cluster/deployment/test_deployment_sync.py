"""sync.go's scale and isScalingEvent, against kubernetes' own TestScale table
(pkg/controller/deployment/sync_test.go).

Upstream runs each case through both scale and scaleV2 with the same expectations; the cases of
the DeploymentPodReplacementPolicy feature (alpha, off by default: TerminationComplete's partial
scaling, the replicas-before-scale annotation) are not ported, as the emulation leaves that feature
off. The two "is not partial with empty policy" cases are: they are the default behaviour with
terminating pods present.
"""

from dataclasses import dataclass, field, replace

import pytest

from tests.emulation import TableReplicaSet, deployment
from tools.rehearsal.cluster.deployment_util import (
    is_scaling_event,
    max_surge,
    scale,
    set_replicas_annotations,
)
from tools.rehearsal.manifests.deployment import Deployment

NEW, OLD, OLDER = 2.0, 1.0, 0.0  # the table's newTimestamp, oldTimestamp, olderTimestamp


def d(replicas: int, max_surge: int = 0, max_unavailable: int = 0) -> Deployment:
    """The table's newDeployment: maxSurge and maxUnavailable 0 unless given."""
    return deployment("v1", replicas, max_surge, max_unavailable)


def rs(name: str, replicas: int, created_at: float, **status) -> TableReplicaSet:
    return TableReplicaSet(name, replicas, created_at, **status)


@dataclass
class Case:
    deployment: Deployment
    old_deployment: Deployment  # the ReplicaSets' annotations were set from it
    new: TableReplicaSet | None
    old: list[TableReplicaSet]
    expected_new: int | None
    expected_old: list[int]
    # desiredReplicasAnnotations: a ReplicaSet annotated from another size than old_deployment's
    desired: dict[str, int] = field(default_factory=dict)


CASES = {
    "normal scaling event: 10 -> 12": Case(
        d(12), d(10), rs("foo-v1", 10, NEW), [], expected_new=12, expected_old=[]
    ),
    "normal scaling event: 10 -> 5": Case(
        d(5), d(10), rs("foo-v1", 10, NEW), [], expected_new=5, expected_old=[]
    ),
    "proportional scaling: 5 -> 10": Case(
        d(10), d(5), rs("foo-v2", 2, NEW), [rs("foo-v1", 3, OLD)], 4, [6]
    ),
    "proportional scaling: 5 -> 3": Case(
        d(3), d(5), rs("foo-v2", 2, NEW), [rs("foo-v1", 3, OLD)], 1, [2]
    ),
    "proportional scaling: 9 -> 4": Case(
        d(4), d(9), rs("foo-v2", 8, NEW), [rs("foo-v1", 1, OLD)], 4, [0]
    ),
    "proportional scaling: 7 -> 10": Case(
        d(10),
        d(7),
        rs("foo-v3", 2, NEW),
        [rs("foo-v2", 3, OLD), rs("foo-v1", 2, OLDER)],
        3,
        [4, 3],
    ),
    "proportional scaling: 13 -> 8": Case(
        d(8),
        d(13),
        rs("foo-v3", 2, NEW),
        [rs("foo-v2", 8, OLD), rs("foo-v1", 3, OLDER)],
        1,
        [5, 2],
    ),
    # Scales up the new replica set.
    "leftover distribution: 3 -> 4": Case(
        d(4),
        d(3),
        rs("foo-v3", 1, NEW),
        [rs("foo-v2", 1, OLD), rs("foo-v1", 1, OLDER)],
        2,
        [1, 1],
    ),
    # Scales down the older replica set.
    "leftover distribution: 3 -> 2": Case(
        d(2),
        d(3),
        rs("foo-v3", 1, NEW),
        [rs("foo-v2", 1, OLD), rs("foo-v1", 1, OLDER)],
        1,
        [1, 0],
    ),
    # Scales up the latest replica set first.
    "proportional scaling (no new rs): 4 -> 5": Case(
        d(5), d(4), None, [rs("foo-v2", 2, OLD), rs("foo-v1", 2, OLDER)], None, [3, 2]
    ),
    "proportional scaling: 6 -> 0": Case(
        d(0),
        d(6),
        rs("foo-v3", 3, NEW),
        [rs("foo-v2", 2, OLD), rs("foo-v1", 1, OLDER)],
        0,
        [0, 0],
    ),
    "proportional scaling: 0 -> 6": Case(
        d(6),
        d(6),
        rs("foo-v3", 0, NEW),
        [rs("foo-v2", 0, OLD), rs("foo-v1", 0, OLDER)],
        6,
        [0, 0],
    ),
    # foo-v2 was annotated at 3 replicas: it alone grows.
    "failed rs update": Case(
        d(5),
        d(5),
        rs("foo-v3", 2, NEW),
        [rs("foo-v2", 1, OLD), rs("foo-v1", 1, OLDER)],
        2,
        [2, 1],
        desired={"foo-v2": 3},
    ),
    "deployment with surge pods": Case(
        d(20, max_surge=2),
        d(10, max_surge=2),
        rs("foo-v2", 6, NEW),
        [rs("foo-v1", 6, OLD)],
        11,
        [11],
    ),
    "change both surge and size": Case(
        d(50, max_surge=6),
        d(10, max_surge=3),
        rs("foo-v2", 5, NEW),
        [rs("foo-v1", 8, OLD)],
        22,
        [34],
    ),
    # The new template has no ReplicaSet yet.
    "change both size and template": Case(
        d(14), d(10), None, [rs("foo-v2", 7, NEW), rs("foo-v1", 3, OLD)], None, [10, 4]
    ),
    "saturated but broken new replica set does not affect old pods": Case(
        d(2, 1, 1),
        d(2, 1, 1),
        rs("foo-v2", 2, NEW, available_replicas=0),
        [rs("foo-v1", 1, OLD)],
        2,
        [1],
    ),
    # Terminating pods are not counted (status.terminatingReplicas 2).
    "scaling event with terminating pods is not partial with empty policy:: 10 -> 14": Case(
        d(14), d(10), rs("foo-v1", 10, NEW), [], expected_new=14, expected_old=[]
    ),
    "proportional scaling with terminating pods is not partial with empty policy: 5 -> 10": Case(
        d(10), d(5), rs("foo-v2", 2, NEW), [rs("foo-v1", 3, OLD)], 4, [6]
    ),
}


def annotate(replica_set: TableReplicaSet, old_deployment: Deployment, desired: dict[str, int]):
    """As the table's loop does: each ReplicaSet annotated from old_deployment's size, or from
    its own desiredReplicasAnnotations entry."""
    size = desired.get(replica_set.name, old_deployment.replicas)
    set_replicas_annotations(replica_set, replace(old_deployment, replicas=size))


@pytest.mark.parametrize("name", CASES)
def test_scale_shares_the_new_size_as_kubernetes_does(name):
    case = CASES[name]
    for replica_set in [case.new, *case.old] if case.new else case.old:
        annotate(replica_set, case.old_deployment, case.desired)
    # The Deployment's status.replicas: only read without a max-replicas annotation.
    status_replicas = sum(r.replicas for r in case.old) + (case.new.replicas if case.new else 0)

    scaling = scale(case.deployment, case.new, case.old, 0, status_replicas)

    sizes = {share.replica_set.name: share.after for share in scaling.shares}
    if case.new is not None:
        assert sizes.get(case.new.name, case.new.replicas) == case.expected_new
    assert [sizes.get(r.name, r.replicas) for r in case.old] == case.expected_old


def test_the_leftover_of_a_proportional_scale_goes_to_the_first_in_the_scaling_order():
    case = CASES["leftover distribution: 3 -> 4"]
    for replica_set in [case.new, *case.old]:
        annotate(replica_set, case.old_deployment, {})
    scaling = scale(case.deployment, case.new, case.old, 0, 3)
    assert scaling.how == "proportional"
    assert (scaling.allowed, scaling.to_add) == (4, 1)
    assert [(s.replica_set.name, s.proportion, s.leftover) for s in scaling.shares] == [
        ("foo-v3", 0, 1),
        ("foo-v2", 0, 0),
        ("foo-v1", 0, 0),
    ]
    assert scaling.describe() == (
        "4 replicas, 4 with maxSurge: +1 over 3 ReplicaSets: foo-v3 1 -> 2 (+0, leftover +1), "
        "foo-v2 1 -> 1 (+0), foo-v1 1 -> 1 (+0)"
    )


def test_a_saturated_new_replica_set_takes_the_old_ones_to_zero():
    """sync.go scale: the new ReplicaSet holds the whole size, all available (an adoption during
    a saturated new ReplicaSet)."""
    new = rs("foo-v2", 4, NEW, desired_replicas=4, max_replicas=4)
    old = [rs("foo-v1", 2, OLD, desired_replicas=4, max_replicas=4)]
    scaling = scale(d(4), new, old, 0, 6)
    assert scaling.how == "saturated"
    assert [(s.replica_set.name, s.after) for s in scaling.shares] == [("foo-v1", 0)]


def test_recreate_leaves_more_than_one_active_replica_set_as_it_is():
    recreate = replace(d(6), strategy_type="Recreate")
    new = rs("foo-v2", 2, NEW, desired_replicas=4, max_replicas=4)
    old = [rs("foo-v1", 2, OLD, desired_replicas=4, max_replicas=4)]
    scaling = scale(recreate, new, old, 0, 4)
    assert (scaling.how, scaling.shares) == ("none", ())


def test_a_scaling_event_is_an_active_replica_set_annotated_with_another_size():
    """isScalingEvent: only active ReplicaSets count, and only their desired-replicas annotation."""
    spec = d(5, max_surge=1)
    assert max_surge(spec) == 1
    scaled_down = rs("foo-v1", 0, OLD, desired_replicas=3)
    unannotated = rs("foo-v2", 2, NEW)
    assert not is_scaling_event(spec, [scaled_down, unannotated])
    assert is_scaling_event(spec, [scaled_down, rs("foo-v2", 2, NEW, desired_replicas=3)])
    assert not is_scaling_event(spec, [rs("foo-v2", 2, NEW, desired_replicas=5)])

"""rolling.go's decisions, against kubernetes' own tables (pkg/controller/deployment/
rolling_test.go): reconcileNewReplicaSet, reconcileOldReplicaSets, cleanupUnhealthyReplicas,
scaleDownOldReplicaSetsForRollingUpdate.

The DeploymentPodReplacementPolicy cases of reconcileNewReplicaSet (alpha, off by default) are not
ported; the one with an empty policy is, being the default behaviour with terminating pods.
"""

import pytest

from tests.emulation import TableReplicaSet, deployment
from tools.rehearsal.cluster.deployment_util import (
    cleanup_unhealthy_replicas,
    reconcile_new_replica_set,
    reconcile_old_replica_sets,
    scale_down_old_replica_sets_for_rolling_update,
)

# TestDeploymentController_reconcileNewReplicaSet: deployment replicas, maxSurge, old replicas,
# new replicas, the new ReplicaSet's expected size (None: no scaling). maxUnavailable is 0.
NEW_CASES = {
    "should not scale up when old replica set is fully saturated": (10, 0, 10, 0, None),
    "should scale up according to the maxSurge when old replica set is fully saturated": (
        10,
        2,
        10,
        0,
        2,
    ),
    "should scale up according to the maxSurge": (10, 2, 5, 0, 7),
    "should not scale when maxSurge is fully saturated": (10, 2, 10, 2, None),
    "should scale down when there are replicas above maxSurge": (10, 2, 2, 11, 10),
    "should scale up according to the maxSurge with empty policy and ignore terminating pods": (
        10,
        2,
        5,
        0,
        7,
    ),
}


@pytest.mark.parametrize("name", NEW_CASES)
def test_reconcile_new_replica_set(name):
    replicas, surge, old_replicas, new_replicas, expected = NEW_CASES[name]
    new = TableReplicaSet("foo-v2", new_replicas)
    old = TableReplicaSet("foo-v1", old_replicas)
    spec = deployment("v2", replicas, max_surge=surge, max_unavailable=0)
    size = reconcile_new_replica_set(spec, [new, old], new)
    assert size == (new_replicas if expected is None else expected)


# TestDeploymentController_reconcileOldReplicaSets (unnamed scenarios, named here by upstream's
# comments): deployment replicas, maxUnavailable, old replicas, new replicas, available old pods,
# available new pods, the old ReplicaSet's expected size (None: no scaling). maxSurge is 0.
OLD_CASES = {
    "0: maxUnavailable 0 and maxSurge 0 resolve to maxUnavailable 1": (10, 0, 10, 0, 10, 0, 9),
    "1": (10, 2, 10, 0, 10, 0, 8),
    "2: expect unhealthy replicas from old replica sets been cleaned up": (10, 2, 10, 0, 8, 0, 8),
    "3: expect 1 unhealthy replica from old replica sets been cleaned up, and 1 ready pod been "
    "scaled down": (10, 2, 10, 0, 9, 0, 8),
    "4: the unavailable pods from the newRS would not make us scale down old RSs in a further "
    "step": (10, 2, 8, 2, 8, 0, None),
}


@pytest.mark.parametrize("name", OLD_CASES)
def test_reconcile_old_replica_sets(name):
    replicas, unavailable, old_replicas, new_replicas, old_ready, new_ready, expected = OLD_CASES[
        name
    ]
    new = TableReplicaSet("foo-new", new_replicas, available_replicas=new_ready)
    old = TableReplicaSet("foo-old", old_replicas, available_replicas=old_ready)
    spec = deployment("v2", replicas, max_surge=0, max_unavailable=unavailable)
    resizes = reconcile_old_replica_sets(spec, [old, new], [old], new, 0)
    if expected is None:
        assert resizes == []
    else:
        assert resizes and resizes[-1].replicas == expected


# TestDeploymentController_cleanupUnhealthyReplicas: old replicas, available pods, maxCleanupCount,
# the pods expected cleaned up.
CLEANUP_CASES = [(10, 8, 1, 1), (10, 8, 3, 2), (10, 8, 0, 0), (10, 10, 3, 0)]


@pytest.mark.parametrize(("replicas", "ready", "max_cleanup", "expected"), CLEANUP_CASES)
def test_cleanup_unhealthy_replicas(replicas, ready, max_cleanup, expected):
    old = TableReplicaSet("foo-v2", replicas, available_replicas=ready)
    resizes = cleanup_unhealthy_replicas([old], max_cleanup, 0)
    assert sum(replicas - resize.replicas for resize in resizes) == expected


# TestDeploymentController_scaleDownOldReplicaSetsForRollingUpdate: deployment replicas,
# maxUnavailable, available pods, old replicas, the old ReplicaSet's expected size (None: no
# scaling). maxSurge is 0; the old ReplicaSet is every ReplicaSet.
SCALE_DOWN_CASES = [
    (10, 0, 10, 10, 9),
    (10, 2, 10, 10, 8),
    (10, 2, 8, 10, None),
    (10, 2, 10, 0, None),
    (10, 2, 1, 10, None),
]


@pytest.mark.parametrize(
    ("replicas", "unavailable", "ready", "old_replicas", "expected"), SCALE_DOWN_CASES
)
def test_scale_down_old_replica_sets_for_rolling_update(
    replicas, unavailable, ready, old_replicas, expected
):
    old = TableReplicaSet("foo-v2", old_replicas, available_replicas=ready)
    spec = deployment("v2", replicas, max_surge=0, max_unavailable=unavailable)
    resizes = scale_down_old_replica_sets_for_rolling_update(spec, [old], [old], 0)
    assert [resize.replicas for resize in resizes] == ([] if expected is None else [expected])


def test_old_replica_sets_shrink_oldest_first():
    """ReplicaSetsByCreationTimestamp: cleanup and scale-down both start with the oldest."""
    older = TableReplicaSet("foo-a", 2, created_at=0.0)
    newer = TableReplicaSet("foo-b", 2, created_at=1.0)
    new = TableReplicaSet("foo-c", 0, created_at=2.0)
    spec = deployment("v3", 4, max_surge=0, max_unavailable=3)
    resizes = reconcile_old_replica_sets(spec, [newer, older, new], [newer, older], new, 0)
    assert [(r.replica_set.name, r.replicas) for r in resizes] == [("foo-a", 0), ("foo-b", 1)]

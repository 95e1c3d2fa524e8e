"""deployment_util.go's arithmetic, against kubernetes' own tables (pkg/controller/deployment/util/
deployment_util_test.go): TestNewRSNewReplicas, TestGetReplicaSetFraction, TestMaxUnavailable,
TestMinAvailable, TestResolveFenceposts, TestDeploymentComplete, TestDeploymentProgressing,
TestReplicasAnnotationsNeedUpdate, TestAnnotationUtils.
"""

from dataclasses import replace

import pytest

from tests.emulation import TableReplicaSet, deployment
from tools import rollingupdate
from tools.rehearsal.cluster.deployment_util import (
    DeploymentStatus,
    deployment_complete,
    deployment_progressing,
    is_saturated,
    max_unavailable,
    min_available,
    new_rs_new_replicas,
    replica_set_fraction,
    replicas_annotations_need_update,
    round_half_away,
    set_replicas_annotations,
)


def recreate(replicas: int):
    return replace(deployment("v1", replicas), strategy_type="Recreate")


# TestNewRSNewReplicas: strategy, deployment replicas, new ReplicaSet replicas, maxSurge, expected.
# Every ReplicaSet (not counting the new one) holds 5; maxUnavailable is 1.
NEW_RS_CASES = {
    "can not scale up - to newRSReplicas": ("RollingUpdate", 1, 5, 1, 5),
    "scale up - to depReplicas": ("RollingUpdate", 6, 2, 10, 6),
    "recreate - to depReplicas": ("Recreate", 3, 1, 1, 3),
}


@pytest.mark.parametrize("name", NEW_RS_CASES)
def test_new_rs_new_replicas(name):
    strategy, replicas, new_replicas, surge, expected = NEW_RS_CASES[name]
    spec = replace(deployment("v2", replicas, surge, 1), strategy_type=strategy)
    new = TableReplicaSet("new", new_replicas)
    assert new_rs_new_replicas(spec, [TableReplicaSet("rs5", 5)], new) == expected


# TestGetReplicaSetFraction: deployment replicas, its status.replicas, maxSurge, the ReplicaSet's
# replicas, its max-replicas annotation (None: absent), expected fraction.
FRACTION_CASES = {
    "empty deployment always scales to 0": (0, 0, 0, 10, None, -10),
    "unsynced deployment does not scale when max-replicas annotation is missing (removed by a 3rd "
    "party)": (10, 0, 0, 5, None, 0),
    "unsynced deployment does not scale when max-replicas annotation is incorrectly set to 0 (by a "
    "3rd party)": (10, 0, 0, 5, 0, 0),
    "scale up by 1/5 should increase RS replicas by 1/5 when max-replicas annotation is missing "
    "(removed by a 3rd party)": (120, 100, 0, 50, None, 10),
    "scale up by 1/5 should increase RS replicas by 1/5 when max-replicas annotation is "
    "incorrectly set to 0 (by a 3rd party)": (120, 100, 0, 50, 0, 10),
    "scale up by 1/5 should increase RS replicas by 1/5": (120, 0, 0, 50, 100, 10),
    "scale up with maxSurge by 1/5 should increase RS replicas approximately by 1/5": (
        120,
        0,
        10,
        50,
        110,
        9,
    ),
    "scale down by 1/6 should decrease RS replicas by 1/6": (10, 0, 0, 6, 12, -1),
    "scale down with maxSurge by 1/6 should decrease RS replicas approximately by 1/6": (
        100,
        0,
        10,
        50,
        130,
        -8,
    ),
}


@pytest.mark.parametrize("name", FRACTION_CASES)
def test_replica_set_fraction(name):
    replicas, status_replicas, surge, rs_replicas, annotated, expected = FRACTION_CASES[name]
    spec = deployment("v1", replicas, max_surge=surge, max_unavailable=1)
    rs = TableReplicaSet("nginx", rs_replicas, max_replicas=annotated)
    assert replica_set_fraction(rs, spec, status_replicas) == expected


def test_fractions_round_half_away_from_zero_as_go_math_round():
    # Python's round() would give 2 (to even); integer.RoundToInt32 gives 3.
    assert round_half_away(5, 2) == 3
    assert round_half_away(2 * 5, 4) == 3  # "proportional scaling (no new rs): 4 -> 5"
    assert [round_half_away(n, 4) for n in range(5)] == [0, 0, 1, 1, 1]


# TestMaxUnavailable: replicas, maxUnavailable (maxSurge 1), expected.
MAX_UNAVAILABLE_CASES = {
    "maxUnavailable less than replicas": (10, 5, 5),
    "maxUnavailable equal replicas": (10, 10, 10),
    "maxUnavailable greater than replicas": (5, 10, 5),
    "maxUnavailable with replicas is 0": (0, 10, 0),
    "maxUnavailable less than replicas with percents": (10, "50%", 5),
    "maxUnavailable equal replicas with percents": (10, "100%", 10),
    "maxUnavailable greater than replicas with percents": (5, "100%", 5),
}


@pytest.mark.parametrize("name", MAX_UNAVAILABLE_CASES)
def test_max_unavailable(name):
    replicas, unavailable, expected = MAX_UNAVAILABLE_CASES[name]
    assert max_unavailable(deployment("v1", replicas, 1, unavailable)) == expected


def test_max_unavailable_with_recreate_deployment_strategy():
    assert max_unavailable(recreate(3)) == 0


# TestMinAvailable: replicas, maxUnavailable (maxSurge 1), expected.
MIN_AVAILABLE_CASES = {
    "replicas greater than maxUnavailable": (10, 5, 5),
    "replicas equal maxUnavailable": (10, 10, 0),
    "replicas less than maxUnavailable": (5, 10, 0),
    "replicas is 0": (0, 10, 0),
    "replicas greater than maxUnavailable with percents": (10, "60%", 4),
    "replicas equal maxUnavailable with percents": (10, "100%", 0),
    "replicas less than maxUnavailable with percents": (5, "100%", 0),
}


@pytest.mark.parametrize("name", MIN_AVAILABLE_CASES)
def test_min_available(name):
    replicas, unavailable, expected = MIN_AVAILABLE_CASES[name]
    assert min_available(deployment("v1", replicas, 1, unavailable)) == expected


def test_min_available_with_recreate_deployment_strategy():
    assert min_available(recreate(10)) == 0


# TestResolveFenceposts: maxSurge, maxUnavailable, desired, expected (surge, unavailable). An
# unset value (nil upstream) is 0 there; this project's manifest reader defaults it to 25% before.
@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("0%", "0%", 0, (0, 1)),
        ("39%", "39%", 10, (4, 3)),
        (0, "39%", 10, (0, 3)),
        ("39%", 0, 10, (4, 0)),
        (0, 0, 10, (0, 1)),
    ],
)
def test_resolve_fenceposts(surge, unavailable, desired, expected):
    assert rollingupdate.resolve(surge, unavailable, desired) == rollingupdate.Fenceposts(*expected)


@pytest.mark.parametrize("value", ["oops", "urg"])
def test_resolve_fenceposts_refuses_what_is_no_int_or_percent(value):
    with pytest.raises(rollingupdate.RollingUpdateError):
        rollingupdate.parse_int_or_percent(value, "maxSurge")


# TestDeploymentComplete: desired, current, updated, available, maxUnavailable, maxSurge.
COMPLETE_CASES = {
    "not complete: min but not all pods become available": ((5, 5, 5, 4, 1, 0), False),
    "not complete: min availability is not honored": ((5, 5, 5, 3, 1, 0), False),
    "complete": ((5, 5, 5, 5, 0, 0), True),
    "not complete: all pods are available but not updated": ((5, 5, 4, 5, 0, 0), False),
    "not complete: still running old pods": ((1, 2, 1, 1, 0, 1), False),
    "not complete: one replica deployment never comes up": ((1, 1, 1, 0, 1, 1), False),
}


@pytest.mark.parametrize("name", COMPLETE_CASES)
def test_deployment_complete(name):
    (desired, current, updated, available, unavailable, surge), expected = COMPLETE_CASES[name]
    spec = deployment("v1", desired, surge, unavailable)
    status = DeploymentStatus(current, updated, ready_replicas=0, available_replicas=available)
    assert deployment_complete(spec, status) == expected


# TestDeploymentProgressing: the old and the new status (current, updated, ready, available).
PROGRESSING_CASES = {
    "progressing: updated pods": ((10, 4, 4, 4), (10, 6, 4, 4), True),
    "not progressing": ((10, 4, 4, 4), (10, 4, 4, 4), False),
    "progressing: old pods removed": ((10, 4, 6, 6), (8, 4, 6, 6), True),
    "not progressing: less new pods": ((10, 7, 3, 3), (10, 6, 3, 3), False),
    "progressing: less overall but more new pods": ((10, 4, 7, 7), (8, 8, 5, 5), True),
    "progressing: more ready pods": ((10, 10, 9, 8), (10, 10, 10, 8), True),
    "progressing: more available pods": ((10, 10, 10, 9), (10, 10, 10, 10), True),
}


@pytest.mark.parametrize("name", PROGRESSING_CASES)
def test_deployment_progressing(name):
    old, new, expected = PROGRESSING_CASES[name]
    assert deployment_progressing(DeploymentStatus(*old), DeploymentStatus(*new)) == expected


# TestReplicasAnnotationsNeedUpdate, against desired 10 and max 20.
ANNOTATION_CASES = {
    "test Annotations nil": (None, None, True),
    "test desiredReplicas update": (8, 20, True),
    "test maxReplicas update": (10, 16, True),
    "test needn't update": (10, 20, False),
}


@pytest.mark.parametrize("name", ANNOTATION_CASES)
def test_replicas_annotations_need_update(name):
    desired, maximum, expected = ANNOTATION_CASES[name]
    rs = TableReplicaSet("hello", 0, desired_replicas=desired, max_replicas=maximum)
    assert replicas_annotations_need_update(rs, 10, 20) == expected


def test_annotation_utils_set_replicas_annotations_and_is_saturated():
    """TestAnnotationUtils: SetReplicasAnnotations(10, 11), then IsSaturated of a ReplicaSet
    annotated 1, with 1 replica available, for a Deployment of 1."""
    rs = TableReplicaSet("nginx", 0)
    assert set_replicas_annotations(rs, deployment("v1", 10, max_surge=1))
    assert (rs.desired_replicas, rs.max_replicas) == (10, 11)
    assert not set_replicas_annotations(rs, deployment("v1", 10, max_surge=1))

    rs = TableReplicaSet("nginx", 1, desired_replicas=1, available_replicas=1)
    assert is_saturated(deployment("v1", 1), rs, 0)
    rs.available_replicas = 0
    assert not is_saturated(deployment("v1", 1), rs, 0)


def test_recreate_has_no_surge_in_its_max_replicas_annotation():
    """MaxSurge is 0 for a Recreate Deployment, whatever its rollingUpdate says."""
    rs = TableReplicaSet("nginx", 0)
    set_replicas_annotations(
        rs, replace(deployment("v1", 4, max_surge=2), strategy_type="Recreate")
    )
    assert (rs.desired_replicas, rs.max_replicas) == (4, 4)

"""The PodDisruptionBudget's arithmetic and the eviction subresource's decision, against cases of
kubernetes pkg/registry/core/pod/storage/eviction_test.go (TestEvictionIgnorePDB, running pods)
and pkg/controller/disruption."""

import pytest

from tools.rehearsal.manifests.workload import BudgetStatus, DisruptionBudget


def budget(always_allow_unhealthy: bool, max_unavailable=1, min_available=None):
    return DisruptionBudget("foo", max_unavailable, min_available, always_allow_unhealthy)


# (upstream case, status, pod ready, allowed under AlwaysAllow, under IfHealthyBudget)
@pytest.mark.parametrize(
    ("case", "status", "ready", "always_allow", "if_healthy_budget"),
    [
        (
            "matching pdbs with no disruptions allowed, pod running, pod healthy,"
            " unhealthy pod not ours",
            BudgetStatus(0, 2, 2),
            True,
            False,
            False,
        ),
        (
            "matching pdbs with disruptions allowed, pod running, pod healthy, healthy pod ours,"
            " deletes pod by honoring the PDB",
            BudgetStatus(1, 3, 3),
            True,
            True,
            True,
        ),
        (
            "matching pdbs with no disruptions allowed, pod running, pod unhealthy,"
            " unhealthy pod ours",
            BudgetStatus(0, 2, 2),
            False,
            True,
            True,
        ),
        # Upstream runs this case under AlwaysAllow only: "IfHealthyBudget would not skip the
        # PDB check", whose desiredHealthy of 0 turns off the fast path.
        (
            "matching pdbs with no disruptions allowed, pod running, pod unhealthy,"
            " unhealthy pod ours, skips the PDB check and deletes",
            BudgetStatus(0, 0, 0),
            False,
            True,
            False,
        ),
        # The last ready pod has turned unready (a probe timed out under load), the other is
        # still starting: the budget is not met.
        ("the only pod left turned unready", BudgetStatus(0, 0, 1), False, True, False),
    ],
)
def test_the_eviction_subresource_decides_as_upstream(
    case, status, ready, always_allow, if_healthy_budget
):
    assert budget(True).allows_eviction(ready, status) is always_allow
    assert budget(False).allows_eviction(ready, status) is if_healthy_budget


@pytest.mark.parametrize(
    ("spec", "expected", "healthy", "status"),
    [
        ({"max_unavailable": 1}, 2, 2, BudgetStatus(1, 2, 1)),
        ({"max_unavailable": 1}, 2, 1, BudgetStatus(0, 1, 1)),
        ({"max_unavailable": "100%"}, 2, 0, BudgetStatus(0, 0, 0)),
        ({"max_unavailable": "50%"}, 3, 3, BudgetStatus(2, 3, 1)),  # 2 unavailable: rounded up
        ({"max_unavailable": None, "min_available": "50%"}, 3, 3, BudgetStatus(1, 3, 2)),
        ({"max_unavailable": 1}, 0, 1, BudgetStatus(0, 1, 0)),  # none expected: none allowed
    ],
)
def test_the_status_is_the_disruption_controllers(spec, expected, healthy, status):
    assert budget(False, **spec).status(expected, healthy) == status

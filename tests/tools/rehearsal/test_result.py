"""The bound on what an aborted release may fail (tools/rehearsal/result.py), on made-up runs:
each node's rules pick a pod when a connection opens, and the connection keeps it, so chance
picks connections, each with all its requests.

Two nodes; the new version's pod joins node 0's view at NEW_JOINS_0 and node 1's at
NEW_JOINS_1, beside two old pods (a third of each view), and leaves both at NEW_LEAVES.
"""

import math
from dataclasses import replace

import pytest

from tests.tools.rehearsal.made_up import made_up_result
from tools.rehearsal.cluster.network.view import ViewSummary
from tools.rehearsal.result import FailureChance, PodSummary, Result
from tools.rehearsal.traffic.outcomes import OK, RequestRecord, connections

ROLLOUT_STARTED, NEW_JOINS_0, NEW_JOINS_1, NEW_LEAVES, SETTLED = 10.0, 12.0, 16.0, 20.0, 30.0
OLD = ("old-a", "old-b")


def history(joins: float) -> tuple:
    return ((0.0, OLD), (joins, (*OLD, "new")), (NEW_LEAVES, OLD))


def run(records: list[RequestRecord]) -> Result:
    result = made_up_result(records=records)
    old, new = result.source.deployment.template.version, result.target.deployment.template.version
    service = result.target.service.name
    return replace(
        result,
        pods=[
            *(PodSummary(name, old, "", 0, [], []) for name in OLD),
            PodSummary("new", new, "", 0, [], []),
        ],
        rollout_started=ROLLOUT_STARTED,
        rollout_failed="aborted",
        settled=SETTLED,
        aborted="analysis failed",
        views=[
            ViewSummary(service, 0, 2, 0.5, 0.0, history=history(NEW_JOINS_0)),
            ViewSummary(service, 1, 2, 0.5, 0.0, history=history(NEW_JOINS_1)),
        ],
    )


def request(t: float, node: int = 0, port: int = 0, reused: bool = False, client: str = "wget"):
    return RequestRecord(t, 0.01, OK, "v1", client, port=port, reused=reused, node=node)


def chance(expected: float, variance: float) -> FailureChance:
    return FailureChance(pytest.approx(expected), pytest.approx(math.sqrt(variance)))


def test_a_connection_is_a_new_one_and_the_requests_that_reused_it():
    records = [
        request(1.0, port=5000),
        request(2.0, port=5000, reused=True),
        request(3.0, port=5000, reused=True),
        request(3.5, port=5000, reused=True, client="go-net-http"),  # another client's
        request(4.0, port=5000),  # the port again, a new connection
        request(5.0, node=1, port=5000, reused=True),  # another node's
        request(6.0),  # no connection made
        request(7.0),
    ]
    assert [(c.node, c.opened, c.requests) for c in connections(records)] == [
        (0, 1.0, 3),
        (0, 3.5, 1),
        (0, 4.0, 1),
        (1, 5.0, 1),
        (0, 6.0, 1),
        (0, 7.0, 1),
    ]


def test_requests_on_connections_of_their_own_count_one_by_one():
    # One a second on node 0 from the rollout to the end: 8 while the new pod is a third of
    # the view (12-19 s), none of the others could reach it.
    result = run([request(t) for t in range(10, 30)])
    p = 1 / 3
    assert result.failure_chance == chance(8 * p, 8 * p * (1 - p))


def test_each_node_counts_by_its_own_view():
    # Node 1's view has the new pod from 16 s: 4 of its requests could reach it.
    result = run([request(t, node=1) for t in range(10, 30)])
    p = 1 / 3
    assert result.failure_chance == chance(4 * p, 4 * p * (1 - p))
    assert result.new_version_exposure == pytest.approx(4 * p)


def test_a_kept_alive_connection_opened_before_the_new_version_cannot_reach_it():
    kept = [request(5.0 + i / 10, port=6000, reused=i > 0) for i in range(200)]
    assert run(kept).failure_chance == FailureChance(0.0, 0.0)
    assert run(kept).failure_bound == 0


def test_a_kept_alive_connection_opened_beside_it_brings_every_request_it_carries():
    """200 requests on one connection opened at 13 s: a third of a chance that all fail. Each
    on a connection of its own, their count would vary by sqrt(200 p (1 - p)), 6.7; on one, by
    200 sqrt(p (1 - p)), 94."""
    kept = [request(13.0 + i / 100, port=6000, reused=i > 0) for i in range(200)]
    p = 1 / 3
    assert run(kept).failure_chance == chance(200 * p, 200**2 * p * (1 - p))


def test_the_bound_is_three_deviations_over_the_expectation_plus_one():
    assert FailureChance(66.7, 94.3).bound == math.ceil(66.7 + 3 * 94.3 + 1)
    assert FailureChance(0.0, 0.0).bound == 0

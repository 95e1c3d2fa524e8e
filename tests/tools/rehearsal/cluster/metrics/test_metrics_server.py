"""metrics-server scraping the kubelet's /metrics/resource of pods on fake containers with a
scripted usage, in virtual time: when a rate is first served, over which window, after a restart
or once a pod is gone, and what the HPA's metrics client then reads."""

import asyncio
from pathlib import Path

import pytest

from tests.emulation import Behaviour, FakeRuntime, run, steady, template
from tools.rehearsal.cluster.metrics.api import MetricsUnavailable, PodMetric
from tools.rehearsal.cluster.metrics.server import MetricsServer, UsageSample
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.resource_metrics import endpoint
from tools.rehearsal.timeline import Timeline

MIB = 1024 * 1024
CORES = 0.2505  # 250.5 millicores: served as 251m (rounded up) whatever the float noise
MEMORY = 40 * MIB
NO_METRICS = "no metrics returned from resource metrics API"


class Node:
    """Pods that start at 0 s, the kubelet serving them and a metrics-server scraping it."""

    def __init__(self, *names: str, resolution: float = 15) -> None:
        self.timeline = Timeline(clock=asyncio.get_running_loop().time)
        self.runtime = FakeRuntime({"v1": Behaviour(usage=steady(CORES, MEMORY), drain=1)})
        self.pods = [
            Pod(
                name,
                template("v1", pre_stop=None),
                f"127.0.0.{n}",
                self.runtime,
                self.timeline,
                lambda pod: None,
                Path("/nonexistent"),
            )
            for n, name in enumerate(names, 2)
        ]
        for pod in self.pods:
            pod.start()
        kubelet = endpoint(lambda: self.pods, self.timeline)
        self.server = MetricsServer(kubelet, self.timeline, resolution)

    async def at(self, t: float) -> None:
        await asyncio.sleep(t - self.timeline.now())

    async def stop(self) -> None:
        await self.server.stop()
        for pod in self.pods:
            await pod.force_stop()


def cpu(node: Node, *pods: str) -> dict[str, PodMetric]:
    return node.server.pod_metrics("cpu", pods)


def test_a_rate_is_served_from_the_second_scrape_over_the_window_between_the_two():
    async def scenario():
        node = Node("app-1")
        await node.at(0.5)
        node.server.start()
        await node.at(15)
        with pytest.raises(MetricsUnavailable, match=NO_METRICS):
            cpu(node, "app-1")
        before = node.server.top()
        await node.at(16)
        served = cpu(node, "app-1")
        await node.stop()
        return node, before, served

    node, before, served = run(scenario())
    assert node.server.scrapes == [0.5, 15.5]
    assert before == "error: metrics not available yet\n"
    assert served == {"app-1": PodMetric(251, 15.5, 15.0)}


def test_a_container_first_scraped_10_to_15_seconds_after_its_start_is_rated_from_its_start():
    async def scenario():
        node = Node("app-1")
        await node.at(12)
        node.server.start()
        await node.at(13)
        served = cpu(node, "app-1")
        await node.stop()
        return served

    assert run(scenario()) == {"app-1": PodMetric(251, 12.0, 12.0)}


def test_a_restarted_container_is_rated_again_once_two_scrapes_followed_its_start():
    async def scenario():
        node = Node("app-1")
        await node.at(0.5)
        node.server.start()
        await node.at(20)
        node.runtime.containers["app-1"][-1].crash()
        await node.at(31)  # scraped at 30.5, 9.5 s after the kubelet restarted it at 21 s
        with pytest.raises(MetricsUnavailable, match=NO_METRICS):
            cpu(node, "app-1")
        await node.at(46)
        served = cpu(node, "app-1")
        await node.stop()
        return node, served

    node, served = run(scenario())
    assert [c.started for c in node.runtime.containers["app-1"]] == [0.0, 21.0]
    assert served == {"app-1": PodMetric(251, 45.5, 15.0)}
    assert [(s.t, s.cpu) for s in node.server.history] == [(15.5, 251), (45.5, 251)]


def test_a_pod_that_is_gone_is_no_longer_served():
    async def scenario():
        node = Node("app-1", "app-2")
        await node.at(0.5)
        node.server.start()
        await node.at(20)
        node.pods[1].delete()  # SIGTERM; it exits 1 s later
        await node.at(31)
        both = cpu(node, "app-1", "app-2")
        with pytest.raises(MetricsUnavailable, match=NO_METRICS):
            cpu(node, "app-2")
        await node.stop()
        return node, both

    node, both = run(scenario())
    assert list(both) == ["app-1"]
    assert [(s.t, s.pod) for s in node.server.history] == [
        (15.5, "app-1"),
        (15.5, "app-2"),
        (30.5, "app-1"),
    ]


def test_the_hpa_reads_memory_in_milli_units_and_one_container_for_a_container_resource():
    async def scenario():
        node = Node("app-1")
        await node.at(0.5)
        node.server.start()
        await node.at(16)
        read = (
            node.server.pod_metrics("memory", ["app-1"]),
            node.server.pod_metrics("cpu", ["app-1"], container="app"),
            node.server.pod_metrics("cpu", ["app-1"], container="sidecar"),
            node.server.pod_metrics("ephemeral-storage", ["app-1"]),
            node.server.top(),
            node.server.top(["app-9"]),
            node.server.top(namespace="shop"),
        )
        await node.stop()
        return read

    memory, container, missing, unknown, top, other, elsewhere = run(scenario())
    assert memory == {"app-1": PodMetric(MEMORY * 1000, 15.5, 15.0)}
    assert container == {"app-1": PodMetric(251, 15.5, 15.0)}
    assert missing == {} and unknown == {}  # listed, but not summed: no error from the client
    assert top == (
        "NAME    CPU(cores)   MEMORY(bytes)   \n"  # kubectl's trailing padding
        "app-1   251m         40Mi            \n"
    )
    assert other == "error: metrics not available yet\n"
    assert elsewhere == "No resources found in shop namespace.\n"


def test_every_scrape_records_what_was_served_for_the_report():
    async def scenario():
        node = Node("app-1")
        node.server.start()
        await node.at(46)
        await node.stop()
        return node.server.history

    # Scraped as it starts, the container reports 0 s of CPU and is dropped (decode.go
    # checkContainerMetrics); 15 s after its start it is no longer fresh: a rate at 30 s.
    assert run(scenario()) == [
        UsageSample(30.0, "app-1", 251, MEMORY, 30.0, 15.0),
        UsageSample(45.0, "app-1", 251, MEMORY, 45.0, 15.0),
    ]


def test_a_kubelet_that_does_not_answer_in_time_leaves_no_metrics():
    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        server = MetricsServer(asyncio.Event().wait, timeline)
        await server.tick()
        return timeline.now(), server

    elapsed, server = run(scenario())
    assert elapsed == 10.0
    assert server.failures == ["timeout to access kubelet after 10s"]
    assert not server.storage.last and server.top() == "No resources found in default namespace.\n"


def test_the_resolution_is_validated_as_metrics_server_validates_its_flags():
    with pytest.raises(ValueError, match="at least 10s, but value 5s provided"):
        MetricsServer(asyncio.Event().wait, Timeline(), resolution=5)
    with pytest.raises(ValueError, match="larger than kubelet-request-timeout"):
        MetricsServer(asyncio.Event().wait, Timeline(), resolution=10)
    assert MetricsServer(asyncio.Event().wait, Timeline(), resolution=12).resolution == 12


def test_scrapes_keep_to_the_tickers_grid_however_long_each_takes():
    async def slow_kubelet() -> str:
        await asyncio.sleep(5)
        return ""

    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        server = MetricsServer(slow_kubelet, timeline)
        server.start()
        await asyncio.sleep(36)  # the third scrape, from 30 s, ends at 35 s
        await server.stop()
        return server.scrapes

    assert run(scenario()) == [0.0, 15.0, 30.0]

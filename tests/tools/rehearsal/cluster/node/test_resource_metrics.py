"""The kubelet's /metrics/resource text, against the kubelet's own test of its collector
(kubernetes pkg/kubelet/metrics/collectors/resource_metrics_test.go, "arbitrary container metrics
for different container, pods and namespaces"), and as rendered from the node's pods."""

import asyncio
from pathlib import Path

import pytest

from tests.emulation import Behaviour, FakeRuntime, run, steady, template
from tools.rehearsal.cluster.metrics.decode import decode
from tools.rehearsal.cluster.metrics.storage import MetricsPoint, PodRef
from tools.rehearsal.cluster.node.container import ContainerUsage
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.resource_metrics import (
    ContainerStats,
    WallClock,
    endpoint,
    exposition,
    format_value,
)
from tools.rehearsal.timeline import Timeline

MIB = 1024 * 1024
# The kubelet test's static timestamp, 1624396278302 ms, as the run's start on a clock at 0.
CLOCK = WallClock(start=0.0, start_ms=1624396278302)

EXPECTED = """\
# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="container_a",namespace="namespace_a",pod="pod_a"} 10 1624396278302
container_cpu_usage_seconds_total{container="container_a",namespace="namespace_b",pod="pod_b"} 10 1624396278302
container_cpu_usage_seconds_total{container="container_b",namespace="namespace_a",pod="pod_a"} 10 1624396278302
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="container_a",namespace="namespace_a",pod="pod_a"} 1000 1624396278302
container_memory_working_set_bytes{container="container_a",namespace="namespace_b",pod="pod_b"} 1000 1624396278302
container_memory_working_set_bytes{container="container_b",namespace="namespace_a",pod="pod_a"} 1000 1624396278302
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="container_a",namespace="namespace_a",pod="pod_a"} 1.624396248302e+09
container_start_time_seconds{container="container_a",namespace="namespace_b",pod="pod_b"} 1.624395678302e+09
container_start_time_seconds{container="container_b",namespace="namespace_a",pod="pod_a"} 1.624396158302e+09
# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE resource_scrape_error gauge
resource_scrape_error 0
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""  # noqa: E501 (the kubelet's lines)


def test_the_text_is_the_kubelets_for_the_same_containers():
    def stats(namespace: str, pod: str, container: str, age: float) -> ContainerStats:
        return ContainerStats(namespace, pod, container, ContainerUsage(10.0, 1000, -age, 0.0))

    given = [
        stats("namespace_a", "pod_a", "container_b", 120),  # in no particular order
        stats("namespace_b", "pod_b", "container_a", 600),
        stats("namespace_a", "pod_a", "container_a", 30),
    ]
    assert exposition(given, CLOCK) == EXPECTED


def test_without_containers_only_the_scrape_errors_are_served():
    assert exposition([], CLOCK).splitlines() == EXPECTED.splitlines()[-6:]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10.0, "10"),
        (1000, "1000"),
        (47185920, "4.718592e+07"),  # a working set of 45 MiB
        (0.5, "0.5"),
        (123456, "123456"),
        (1e6, "1e+06"),
        (1.6243962483020916e09, "1.6243962483020916e+09"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.0, "0"),
    ],
)
def test_values_are_written_as_go_writes_them(value, text):
    assert format_value(value) == text


def test_the_wall_clock_turns_run_seconds_into_the_kubelets_milliseconds_and_back():
    timeline = Timeline(clock=lambda: 100.0)
    clock = WallClock.of(timeline)
    assert clock.epoch_ms(115.0) == clock.start_ms + 15_000
    assert clock.run_seconds(clock.start_ms + 15_001) == 15.001


def test_the_node_serves_its_running_pods_containers_as_metrics_server_reads_them():
    async def scenario():
        timeline = Timeline(clock=asyncio.get_running_loop().time)
        runtime = FakeRuntime({"v1": Behaviour(usage=steady(0.25, 40 * MIB)), "v2": Behaviour()})
        pods = [
            Pod(
                name,
                template(version),
                address,
                runtime,
                timeline,
                lambda pod: None,
                Path("/nonexistent"),
            )
            for name, version, address in [
                ("app-1", "v1", "127.0.0.2"),
                ("app-2", "v1", "127.0.0.3"),
                ("app-3", "v2", "127.0.0.4"),  # a runtime that measures nothing
            ]
        ]
        for pod in pods:
            pod.start()
        await asyncio.sleep(20)
        runtime.containers["app-2"][-1].crash()
        get = endpoint(lambda: pods, timeline)
        text = await get()
        for pod in pods:
            await pod.force_stop()
        return text, WallClock.of(timeline)

    text, clock = run(scenario())
    assert 'pod="app-2"' not in text and 'pod="app-3"' not in text
    ns = 1_000_000
    (point,) = decode(text, 0)[PodRef("default", "app-1")].values()
    assert point == MetricsPoint(
        clock.start_ms * ns, (clock.start_ms + 20_000) * ns, 5 * 10**9, 40 * MIB
    )

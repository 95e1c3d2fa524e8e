"""What metrics-server takes from the kubelet's text, against the cases of its own test
(sigs.k8s.io/metrics-server pkg/scraper/client/resource/decode_test.go TestDecode; node points
are not kept here)."""

import calendar

import pytest

from tools.rehearsal.cluster.metrics.decode import decode
from tools.rehearsal.cluster.metrics.storage import SECOND, MetricsPoint, PodRef

COREDNS = PodRef("kube-system", "coredns-558bd4d5db-4dpjz")
LABELS = '{container="coredns",namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"}'


def utc(*fields: int, ms: int = 0) -> int:
    """A UTC time, in nanoseconds since the epoch."""
    return (calendar.timegm((*fields, 0, 0, 0)) * 1000 + ms) * 1_000_000


NORMAL = f"""
# HELP container_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{LABELS} 4.710169 1633253812125
# HELP container_memory_working_set_bytes [ALPHA] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{LABELS} 1.253376e+07 1633253812125
# TYPE container_start_time_seconds gauge
container_start_time_seconds{LABELS} 1.633252712e+9 1633253812125
# HELP node_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 357.35491 1633253809720
# HELP node_memory_working_set_bytes [ALPHA] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1.616273408e+09 1633253809720
# HELP pod_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the pod in core-seconds
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{{namespace="kube-system",pod="coredns-558bd4d5db-4dpjz"}} 4.67812 1633253803935
# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise
# TYPE scrape_error gauge
scrape_error 0
"""  # noqa: E501 (the kubelet's lines, verbatim)

NO_TIMESTAMP = f"""
container_cpu_usage_seconds_total{LABELS} 4.710169
container_memory_working_set_bytes{LABELS} 1.253376e+07
container_start_time_seconds{LABELS} 1.633252712e+9
node_cpu_usage_seconds_total 357.35491
"""

STARTED = utc(2021, 10, 3, 9, 18, 32)


def test_normal():
    point = MetricsPoint(STARTED, utc(2021, 10, 3, 9, 36, 52, ms=125), 4_710_169_000, 12_533_760)
    assert decode(NORMAL, 0) == {COREDNS: {"coredns": point}}


def test_without_timestamp_uses_default_time():
    default = utc(2077, 7, 7, 7, 7, 7)
    point = MetricsPoint(STARTED, default, 4_710_169_000, 12_533_760)
    assert decode(NO_TIMESTAMP, default // 1_000_000) == {COREDNS: {"coredns": point}}


@pytest.mark.parametrize(
    "text",
    [
        f"container_memory_working_set_bytes{LABELS} 1.253376e+07 1633253812125\n",
        f"container_cpu_usage_seconds_total{LABELS} 0 1633253812125\n"
        f"container_memory_working_set_bytes{LABELS} 1.253376e+07 1633253812125\n",
        f"container_cpu_usage_seconds_total{LABELS} 4.710169 1633253812125\n",
        f"container_cpu_usage_seconds_total{LABELS} 4.710169 1633253812125\n"
        f"container_memory_working_set_bytes{LABELS} 0 1633253812125\n",
    ],
    ids=[
        "No container CPU drops container metrics",
        "Empty container CPU drops container metrics",
        "No container Memory drops container metrics",
        "Empty container Memory drops container metrics",
    ],
)
def test_an_incomplete_container_drops_its_pod(text: str):
    assert decode(text, 0) == {}


def test_one_incomplete_container_drops_the_whole_pod():
    other = LABELS.replace('container="coredns"', 'container="sidecar"')
    text = NO_TIMESTAMP + f"container_cpu_usage_seconds_total{other} 1\n"
    assert decode(text, 0) == {}


def test_text_that_is_not_the_exposition_format_is_an_error():
    with pytest.raises(ValueError):
        decode("container_cpu_usage_seconds_total{container=} x y z\n", 0)


def test_cpu_is_kept_in_whole_nanoseconds_as_go_truncates_it():
    text = f"container_cpu_usage_seconds_total{LABELS} 0.1234567891 5\n"
    text += f"container_memory_working_set_bytes{LABELS} 1e6 5\n"
    (point,) = decode(text, 0)[COREDNS].values()
    assert point.cumulative_cpu == 123_456_789 and point.timestamp == 5 * SECOND // 1000

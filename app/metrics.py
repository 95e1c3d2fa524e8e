"""Prometheus request metrics, summed over every gunicorn worker at each scrape.

Imported by create_app only, so in the workers, after the master has set
PROMETHEUS_MULTIPROC_DIR (app/multiproc.py explains why that order matters). Without that
variable (the Flask test client, a single-process server) the app serves its own registry.
"""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from app.access_log import PROBE_PATHS

# The kubelet's probes and Prometheus's own scrapes are not requests of the service.
UNMEASURED_PATHS = PROBE_PATHS | {"/metrics"}
# Label values come from a bounded set, never from the raw request: a path no route matched
# (404, 405) and an unusual method each get one constant.
UNMATCHED_PATH = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
# From a millisecond (a plain /status) to the 30 s of the slowest /status?delay=.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
LABELS = ("method", "path", "status")


class RequestMetrics:
    """`http_requests_total` and `http_request_duration_seconds`, by method, route and status."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiproc_dir: str | None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total", "HTTP requests answered.", LABELS, registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time the app took to answer an HTTP request, in seconds.",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def observe(
        self, *, method: str, route: str | None, path: str, status: int, seconds: float
    ) -> None:
        """Count one answered request; `route` is the matched route's template, if any."""
        if path in UNMEASURED_PATHS:
            return
        labels = (
            method if method in METHODS else OTHER_METHOD,
            route or UNMATCHED_PATH,
            str(status),
        )
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format: every worker's samples, or this app's alone."""
        if self.multiproc_dir is None:
            return generate_latest(self.registry)
        # A fresh registry per scrape, as the library documents: the collector reads the files
        # of every process, live and dead, at each collection.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiproc_dir)
        return generate_latest(registry)

"""/metrics with real processes: every worker's requests counted once, across a worker's death.

gunicorn runs several worker processes, and each scrape is answered by one of them. The counts
are right only if every worker writes into the multiprocess directory that the master set up
before forking them (app/multiproc.py), and a scrape sums all of it. The failing counterpart
runs the same app under plain gunicorn, without that directory: each scrape then shows only the
requests of the worker that answered it.
"""

import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app import multiproc
from tools.repo import ROOT
from tools.serverprocess import ServerProcess, die_with_parent, free_port

# One batch: measured requests (200, 404 and 400), then probes and a scrape, which are not.
MEASURED = ["/status"] * 6 + ["/nope"] * 2 + ["/status?delay=soon"]
UNMEASURED = ["/ready", "/healthz", "/metrics"]
EXPECTED_PER_BATCH = {"200": 6, "404": 2, "400": 1}
MAX_BATCHES = 20


@dataclass
class Answer:
    path: str
    status: int
    worker: int


@dataclass
class Load:
    answers: list[Answer]

    def measured(self) -> list[Answer]:
        return [a for a in self.answers if a.path not in UNMEASURED]

    def by_status(self) -> dict[str, int]:
        return dict(Counter(str(a.status) for a in self.measured()))

    def workers(self) -> set[int]:
        return {a.worker for a in self.measured()}


def get(server: ServerProcess, path: str) -> Answer:
    # A new connection per request, so that the workers take turns accepting them.
    response = requests.get(server.url + path, headers={"Connection": "close"}, timeout=10)
    return Answer(path, response.status_code, int(response.headers["X-Worker-Pid"]))


def send_batches(server: ServerProcess, batches: int) -> Load:
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = (MEASURED + UNMEASURED) * batches
        return Load(list(pool.map(lambda path: get(server, path), paths)))


def send_until_spread(server: ServerProcess) -> Load:
    """Batches until more than one worker has answered measured requests."""
    load = Load([])
    for _ in range(MAX_BATCHES):
        load.answers += send_batches(server, 1).answers
        if len(load.workers()) > 1:
            return load
    raise AssertionError(f"one worker answered all {len(load.answers)} requests")


def scrape(server: ServerProcess) -> tuple[list[Sample], int]:
    """The samples of one scrape, and the worker that answered it."""
    response = requests.get(server.url + "/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    families = text_string_to_metric_families(response.text)
    return [s for f in families for s in f.samples], int(response.headers["X-Worker-Pid"])


def totals(samples: list[Sample], name: str) -> dict[str, int]:
    """The samples named `name`, summed by status."""
    by_status: Counter[str] = Counter()
    for sample in samples:
        if sample.name == name:
            by_status[sample.labels["status"]] += int(sample.value)
    return dict(by_status)


def requests_by_status(server: ServerProcess) -> dict[str, int]:
    return totals(scrape(server)[0], "http_requests_total")


def multiproc_dir(tmp: Path, server: ServerProcess) -> Path:
    """The default directory of a server started with TMPDIR=tmp (/tmp in a pod)."""
    return tmp / f"prometheus-multiproc-{server.pid}"


def writers(directory: Path) -> set[int]:
    """The processes with samples in a multiprocess directory (files named TYPE_PID.db)."""
    return {int(path.stem.rpartition("_")[2]) for path in directory.glob("*.db")}


def test_every_request_is_counted_once_over_all_workers(start_server, tmp_path):
    server = start_server("app", WEB_CONCURRENCY="3", TMPDIR=str(tmp_path))
    load = send_until_spread(server)
    batches = len(load.answers) // len(MEASURED + UNMEASURED)
    expected = {status: n * batches for status, n in EXPECTED_PER_BATCH.items()}
    assert load.by_status() == expected

    samples, _ = scrape(server)
    assert totals(samples, "http_requests_total") == expected
    assert totals(samples, "http_request_duration_seconds_count") == expected
    # Probes and scrapes are not counted; paths are route templates, or one constant.
    labels = [s.labels for s in samples if s.name == "http_requests_total"]
    assert {(label["method"], label["path"]) for label in labels} == {
        ("GET", "/status"),
        ("GET", "unmatched"),
    }
    buckets = [s for s in samples if s.name == "http_request_duration_seconds_bucket"]
    assert {s.labels["le"] for s in buckets} >= {"0.001", "1.0", "30.0", "+Inf"}


def test_a_killed_worker_loses_none_of_its_counts(start_server, tmp_path):
    server = start_server("app", WEB_CONCURRENCY="2", TMPDIR=str(tmp_path))
    load = send_until_spread(server)
    before = load.by_status()
    assert requests_by_status(server) == before

    workers = server.worker_pids()
    victim = next(iter(load.workers()))
    os.kill(victim, signal.SIGKILL)
    # Awaits gunicorn's replacement, answering /ready (a probe: not counted).
    server.wait_all_workers()
    assert server.worker_pids() != workers

    assert requests_by_status(server) == before
    assert victim in writers(multiproc_dir(tmp_path, server))

    more = send_batches(server, 2).by_status()
    assert requests_by_status(server) == dict(Counter(before) + Counter(more))


def test_every_worker_writes_to_the_masters_directory_which_goes_with_it(start_server, tmp_path):
    server = start_server("app", WEB_CONCURRENCY="3", TMPDIR=str(tmp_path))
    directory = multiproc_dir(tmp_path, server)
    assert writers(directory) == set()  # no request counted yet
    load = send_until_spread(server)
    assert writers(directory) == load.workers()
    server.signal(signal.SIGINT)
    assert server.wait(timeout=10) == 0
    assert not directory.exists()


def test_an_explicit_directory_starts_empty_and_stays(start_server, tmp_path):
    directory = tmp_path / "metrics"
    first = start_server("app", PROMETHEUS_MULTIPROC_DIR=str(directory))
    send_batches(first, 1)
    assert requests_by_status(first) == EXPECTED_PER_BATCH
    first.signal(signal.SIGINT)
    assert first.wait(timeout=10) == 0
    assert list(directory.glob("*.db"))  # kept: it is not the server's to remove

    # A restarted container finds the files of the last start in its emptyDir.
    second = start_server("app", PROMETHEUS_MULTIPROC_DIR=str(directory))
    assert requests_by_status(second) == {}
    send_batches(second, 1)
    assert requests_by_status(second) == EXPECTED_PER_BATCH


class PlainGunicorn(ServerProcess):
    """`gunicorn app:create_app()` without the app's configuration, so no multiprocess mode."""

    def __init__(self, log_dir: Path, workers: int):
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        self.log_dir = log_dir
        self.workers = workers
        environ = {name: value for name, value in os.environ.items() if name != multiproc.ENV}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                f"--bind={self.host}:{self.port}",
                f"--workers={workers}",
                "--worker-class=gthread",
                "--no-control-socket",
                "app:create_app()",
            ],
            cwd=ROOT,
            env=environ,
            preexec_fn=die_with_parent,
            start_new_session=True,  # as ServerProcess: stop() kills the master and its workers
            stdout=(log_dir / "stdout.log").open("w"),
            stderr=(log_dir / "stderr.log").open("w"),
        )


def test_without_multiprocess_mode_a_scrape_sees_one_worker(tmp_path):
    server = PlainGunicorn(tmp_path, workers=2)
    try:
        server.wait_all_workers()
        load = send_until_spread(server)
        samples, worker = scrape(server)
        scraped = sum(totals(samples, "http_requests_total").values())
        answered = [a for a in load.measured() if a.worker == worker]
        assert scraped == len(answered) < len(load.measured())
    finally:
        server.stop()


def test_the_master_imports_prometheus_client_only_after_the_directory_is_set():
    # Imported in the master before gunicorn_conf runs, `app` must not import prometheus_client:
    # the library picks its mode at import, and the workers inherit that choice.
    code = "import sys, app, app.__main__, tools.fixtures.broken.app; print(sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "'prometheus_client'" not in result.stdout


def test_prepare_makes_a_directory_per_master_and_clears_stale_samples(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "prometheus-multiproc-1" / "counter_7.db"
    stale.parent.mkdir()
    stale.write_bytes(b"from an earlier start")
    environ: dict[str, str] = {}
    directory = multiproc.prepare(environ, pid=1)
    assert directory == multiproc.MultiprocDir(stale.parent, owned=True)
    assert environ == {multiproc.ENV: str(stale.parent)}
    assert list(stale.parent.iterdir()) == []
    directory.remove()
    assert not stale.parent.exists()


def test_prepare_uses_an_explicit_directory_and_leaves_it(tmp_path):
    explicit = tmp_path / "metrics"
    environ = {multiproc.ENV: str(explicit)}
    directory = multiproc.prepare(environ, pid=1)
    assert directory == multiproc.MultiprocDir(explicit, owned=False)
    assert environ == {multiproc.ENV: str(explicit)}
    directory.remove()
    assert explicit.is_dir()

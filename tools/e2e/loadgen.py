"""HTTP load generator that counts every failed request. Standard library only.

Runs in the cluster as a Job (tools/e2e-job/ mounts this file from a ConfigMap), or anywhere:

    python loadgen.py --url http://zero-downtime-app/status --stop-file /run/loadgen/stop

Each worker thread sends GET requests in a loop, without retries. Every answer outside 2xx and
every connection error or timeout is a failure. Even-numbered workers keep one connection open
(keep-alive, as real clients do, so a pod going away under an open connection is seen); the
others open a new connection per request. The run stops when the stop file appears, after
--max-seconds, after --requests requests, or on SIGTERM/SIGINT, whichever comes first, so it
always ends. It then prints
one line `LOADGEN-SUMMARY {json}` (and writes the JSON to --summary-file) and exits 0: the
verdict is tools/e2e/check_load.py's job. Exit 2 means bad arguments.
"""

import argparse
import collections
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

SUMMARY_PREFIX = "LOADGEN-SUMMARY "
MAX_SAMPLES = 20
# How soon a waiting thread notices that the run is stopping.
POLL_SECONDS = 0.05


class Stop:
    """Whether the run is stopping: a plain attribute that a signal handler may set.

    Not a threading.Event: Event.set takes a lock, and a signal handler runs in the main thread
    between two bytecodes, possibly while that thread holds the same lock, which deadlocks.
    """

    def __init__(self):
        self.requested = False

    def request(self, *_signal):
        self.requested = True

    def sleep(self, seconds):
        """Sleep up to `seconds`, returning early (within POLL_SECONDS) once stopping."""
        end = time.monotonic() + seconds
        while not self.requested and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, POLL_SECONDS))


class Tally:
    """Counters shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.requests = 0
        self.ok = 0
        self.non_2xx = collections.Counter()
        self.errors = collections.Counter()
        self.versions = collections.Counter()
        self.samples = []

    def success(self, version):
        with self.lock:
            self.requests += 1
            self.ok += 1
            self.versions[version or "unknown"] += 1

    def failure(self, kind, detail):
        with self.lock:
            self.requests += 1
            if isinstance(kind, int):
                self.non_2xx[str(kind)] += 1
            else:
                self.errors[kind] += 1
            if len(self.samples) < MAX_SAMPLES:
                elapsed = round(time.monotonic() - self.started, 3)
                self.samples.append({"t": elapsed, "kind": str(kind), "detail": detail[:200]})

    def summary(self, url, stopped_by):
        with self.lock:
            return {
                "url": url,
                "seconds": round(time.monotonic() - self.started, 3),
                "stopped_by": stopped_by,
                "requests": self.requests,
                "ok": self.ok,
                "failures": self.requests - self.ok,
                "non_2xx": dict(self.non_2xx),
                "errors": dict(self.errors),
                "versions": dict(self.versions),
                "failure_samples": list(self.samples),
            }


def worker(url, keep_alive, timeout, pause, stop, tally):
    target = urllib.parse.urlsplit(url)
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    connection_class = (
        http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    )
    connection = None
    while not stop.requested:
        if connection is None:
            connection = connection_class(target.hostname, target.port, timeout=timeout)
        try:
            connection.request("GET", path, headers={"User-Agent": "loadgen"})
            response = connection.getresponse()
            response.read()
            if 200 <= response.status < 300:
                tally.success(response.getheader("X-App-Version"))
            else:
                tally.failure(response.status, response.reason)
            if not keep_alive or response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as error:
            tally.failure(type(error).__name__, str(error))
            connection.close()
            connection = None
        stop.sleep(pause)
    if connection is not None:
        connection.close()


def wait_for_stop(args, stop, tally):
    """Block until the stop file, the deadline or a signal; return what stopped the run."""
    deadline = time.monotonic() + args.max_seconds
    next_progress = time.monotonic() + args.progress_seconds
    while not stop.requested:
        if args.stop_file and os.path.exists(args.stop_file):
            return "stop-file"
        if time.monotonic() >= deadline:
            return "max-seconds"
        if args.requests and tally.requests >= args.requests:
            return "requests"
        if time.monotonic() >= next_progress:
            next_progress += args.progress_seconds
            print_progress(tally)
        stop.sleep(0.1)
    return "signal"


def print_progress(tally):
    with tally.lock:
        elapsed = time.monotonic() - tally.started
        counts = f"requests={tally.requests} ok={tally.ok} failures={tally.requests - tally.ok}"
    print(f"progress t={elapsed:.1f}s {counts}", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="e.g. http://zero-downtime-app/status")
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads (4)")
    parser.add_argument("--max-seconds", type=float, default=300, help="hard stop (300)")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--stop-file", help="stop as soon as this file exists")
    parser.add_argument("--summary-file", help="also write the summary JSON here")
    parser.add_argument("--timeout", type=float, default=5, help="per request, seconds (5)")
    parser.add_argument("--pause", type=float, default=0.01, help="between requests (0.01)")
    parser.add_argument("--progress-seconds", type=float, default=5, help="progress line (5)")
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        parser.error(f"--url {args.url!r}: not an http(s) URL")
    if not 1 <= args.concurrency <= 64:
        parser.error(f"--concurrency {args.concurrency}: must be 1..64")
    if args.max_seconds <= 0 or args.timeout <= 0 or args.pause < 0:
        parser.error("--max-seconds and --timeout must be > 0, --pause >= 0")
    if args.requests is not None and not 1 <= args.requests <= 1_000_000:
        parser.error(f"--requests {args.requests}: must be 1..1000000")
    return args


def run(args):
    """Send the load until the run stops; return the summary."""
    tally = Tally()
    stop = Stop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    threads = [
        threading.Thread(
            target=worker,
            args=(args.url, index % 2 == 0, args.timeout, args.pause, stop, tally),
            daemon=True,
        )
        for index in range(args.concurrency)
    ]
    print(f"loadgen: {args.concurrency} workers against {args.url}", flush=True)
    for thread in threads:
        thread.start()
    stopped_by = wait_for_stop(args, stop, tally)
    stop.request()
    for thread in threads:
        thread.join(args.timeout + 5)
    return tally.summary(args.url, stopped_by)


def main(argv=None):
    args = parse_args(argv)
    summary = run(args)
    if args.summary_file:
        with open(args.summary_file, "w") as out:
            json.dump(summary, out, indent=2)
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`zdt bench` (`make bench`): the server's throughput, latency, start-up time and memory.

Each figure for `python -m app` is printed beside the same figure for plain gunicorn serving the
naive fixture app with the same workers and threads, measured in the same run: the ratio is the
cost of the drain hook and the structured access log.
"""

import argparse
import os
import platform
import tempfile
from pathlib import Path

from tools.bench.closedloop import closed_loop
from tools.serverprocess import ServerProcess


def resident_mib(server: ServerProcess) -> float:
    """Resident memory of the gunicorn master and its workers, in MiB."""
    total_kib = 0
    for process in [server.pid, *server.worker_pids()]:
        for line in Path(f"/proc/{process}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def measure(server: str, concurrencies: list[int], seconds: float, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as log_dir:
        server = ServerProcess(
            server, Path(log_dir), APP_VERSION="bench", WEB_CONCURRENCY=str(workers)
        )
        try:
            figures = {"startup_s": server.wait_ready(timeout=30), "runs": []}
            for concurrency in concurrencies:
                result = closed_loop(server.host, server.port, "/status", concurrency, seconds)
                figures["runs"].append(result)
            figures["rss_mib"] = resident_mib(server)
        finally:
            server.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zdt bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load step")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY of the server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args(argv)

    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {python}")
    print(f"server: {args.workers} workers x 4 threads; load: keep-alive clients on loopback\n")
    ours = measure("app", args.concurrency, args.seconds, args.workers)
    baseline = measure("naive", args.concurrency, args.seconds, args.workers)

    header = f"{'GET /status':<22}{'app':>12}{'baseline':>12}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for mine, theirs in zip(ours["runs"], baseline["runs"], strict=True):
        c = mine.concurrency
        rows = [
            (f"c={c} throughput req/s", mine.throughput, theirs.throughput),
            (f"c={c} p50 ms", mine.percentile(50), theirs.percentile(50)),
            (f"c={c} p99 ms", mine.percentile(99), theirs.percentile(99)),
        ]
        for label, a, b in rows:
            print(f"{label:<22}{a:>12.1f}{b:>12.1f}{a / b:>8.2f}")
        if mine.errors or theirs.errors:
            print(f"{'':<22}errors: app {mine.errors}, baseline {theirs.errors}")
    for label, key in [("start to ready s", "startup_s"), ("RSS after load MiB", "rss_mib")]:
        a, b = ours[key], baseline[key]
        print(f"{label:<22}{a:>12.2f}{b:>12.2f}{a / b:>8.2f}")
    return 0

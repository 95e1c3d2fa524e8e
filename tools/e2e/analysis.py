"""An analysis for Argo Rollouts' job provider: N requests to a Service, every one answered 2xx,
by the expected version when one is given. Standard library only.

    python3 analysis.py --url http://zero-downtime-app-preview/status --requests 300 \\
        [--expect-version v2] [--await-version-seconds 30]

With an expected version it first waits, up to --await-version-seconds, for the Service to
answer with it (whatever the status): Argo Rollouts starts an analysis as soon as it has changed
the Service's selector, and the node the Job runs on may route to the old pods for a while yet
(endpoint lag has a long tail, docs/shutdown.md). Measured before, a good release would fail for
answers from the old version; after the wait, the measurement is of the new one. When the new
version never answers, the analysis goes on and fails on the versions it sees.

It runs the load generator beside it (loadgen.py) until N requests were sent (or --max-seconds)
and judges the summary with its check (check_load.py); the exit status is the verdict: 0 pass,
1 fail (the reasons are printed), 2 bad arguments. An AnalysisTemplate runs it as a Job
(components/rollout-analysis/), and the rollout rehearsal runs the same file against the
emulated preview or canary Service.
"""

import argparse
import http.client
import json
import sys
import time
import urllib.parse

import check_load
import loadgen

ANY = "any"  # no particular version expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="e.g. http://zero-downtime-app-preview/status")
    parser.add_argument("--requests", type=int, default=300, help="requests to send (300)")
    parser.add_argument(
        "--expect-version", default=ANY, help="every answer must be this version (any)"
    )
    parser.add_argument("--max-seconds", type=float, default=60, help="hard stop (60)")
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads (4)")
    parser.add_argument(
        "--await-version-seconds",
        type=float,
        default=30,
        help="wait this long at most for the expected version to answer first (30)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.await_version_seconds <= 600:
        parser.error(f"--await-version-seconds {args.await_version_seconds:g}: must be 0..600")
    load = loadgen.parse_args(
        [
            f"--url={args.url}",
            f"--requests={args.requests}",
            f"--max-seconds={args.max_seconds}",
            f"--concurrency={args.concurrency}",
            "--progress-seconds=10",
        ]
    )
    if args.expect_version not in ("", ANY):
        waited = await_version(args.url, args.expect_version, args.await_version_seconds)
        if waited is None:
            print(f"analysis: {args.expect_version} not answering after"
                  f" {args.await_version_seconds:g} s; measuring anyway", flush=True)  # fmt: skip
        else:
            print(f"analysis: {args.expect_version} answering after {waited:.1f} s", flush=True)
    summary = loadgen.run(load)
    print(loadgen.SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)
    expected = [args.expect_version] if args.expect_version not in ("", ANY) else []
    found = check_load.problems(summary, args.requests, expected, only=bool(expected))
    counts = f"{summary['requests']} requests, {summary['failures']} failed"
    if found:
        print(f"analysis FAILED: {counts}", *found, sep="\n", flush=True)
        return 1
    print(f"analysis passed: {counts}, versions {summary['versions']}", flush=True)
    return 0


def await_version(url: str, version: str, seconds: float) -> float | None:
    """Seconds until `url` first answered with X-App-Version `version`, a new connection per
    try; None when it has not within `seconds`."""
    target = urllib.parse.urlsplit(url)
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        try:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=2)
            try:
                connection.request("GET", target.path or "/", headers={"User-Agent": "analysis"})
                response = connection.getresponse()
                response.read()
                if response.getheader("X-App-Version") == version:
                    return waited
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            pass
        if waited >= seconds:
            return None
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())

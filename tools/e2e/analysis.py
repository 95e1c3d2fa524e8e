"""An analysis for Argo Rollouts' job provider: N requests to a Service, every one answered 2xx,
by the expected version when one is given. Standard library only.

    python3 analysis.py --url http://zero-downtime-app-preview/status --requests 300 \\
        [--expect-version v2]

It runs the load generator beside it (loadgen.py) until N requests were sent (or --max-seconds)
and judges the summary with its check (check_load.py); the exit status is the verdict: 0 pass,
1 fail (the reasons are printed), 2 bad arguments. An AnalysisTemplate runs it as a Job
(components/rollout-analysis/), and the rollout rehearsal runs the same file against the
emulated preview or canary Service.
"""

import argparse
import json
import sys

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
    args = parser.parse_args(argv)
    load = loadgen.parse_args(
        [
            f"--url={args.url}",
            f"--requests={args.requests}",
            f"--max-seconds={args.max_seconds}",
            f"--concurrency={args.concurrency}",
            "--progress-seconds=10",
        ]
    )
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


if __name__ == "__main__":
    sys.exit(main())

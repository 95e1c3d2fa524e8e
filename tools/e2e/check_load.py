"""Judge a load generator run: zero failed requests, enough requests, the expected versions seen.

    kubectl logs job/loadgen | zdt check-load - --expect-version v1 --expect-version v2
    kubectl logs job/loadgen | zdt check-load - --expect-version v1 --only
    python3 tools/e2e/check_load.py loadgen.log --min-requests 500    (standard library only)

Reads the last `LOADGEN-SUMMARY {json}` line of the log (loadgen.py beside this file prints it).
Exit 0 when the run passes, 1 when it fails (the reasons are printed), 2 when there is no usable
summary.
"""

import argparse
import json
import sys
from pathlib import Path

SUMMARY_PREFIX = "LOADGEN-SUMMARY "


class NoSummary(Exception):
    pass


def read_summary(text: str, source: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith(SUMMARY_PREFIX)]
    if not lines:
        raise NoSummary(f"{source}: no line starting with {SUMMARY_PREFIX.strip()!r}")
    try:
        summary = json.loads(lines[-1][len(SUMMARY_PREFIX) :])
    except json.JSONDecodeError as error:
        raise NoSummary(f"{source}: summary line is not JSON: {error}") from error
    if not isinstance(summary, dict) or not {"requests", "failures", "versions"} <= set(summary):
        raise NoSummary(f"{source}: summary lacks requests/failures/versions")
    return summary


def problems(
    summary: dict, min_requests: int, expected_versions: list[str], only: bool = False
) -> list[str]:
    """Why the run fails; `only`: every answer must come from an expected version."""
    found = []
    if summary["failures"]:
        found.append(
            f"{summary['failures']} of {summary['requests']} requests failed: "
            f"non-2xx {summary.get('non_2xx', {})}, errors {summary.get('errors', {})}"
        )
        samples = summary.get("failure_samples", [])
        found.extend(f"  at {s['t']}s {s['kind']}: {s['detail']}" for s in samples)
    if summary["requests"] < min_requests:
        found.append(f"only {summary['requests']} requests (expected at least {min_requests})")
    missing = [v for v in expected_versions if not summary["versions"].get(v)]
    if missing:
        found.append(f"versions {missing} never answered (seen: {summary['versions']})")
    others = {v: n for v, n in summary["versions"].items() if v not in expected_versions}
    if only and others:
        found.append(f"answers from other versions than {expected_versions}: {others}")
    return found


def main(argv: list[str] | None = None, prog: str = "zdt check-load") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("log", help="file with the load generator's output, or - for stdin")
    parser.add_argument("--min-requests", type=int, default=1)
    parser.add_argument("--expect-version", action="append", default=[], metavar="VERSION")
    parser.add_argument(
        "--only",
        action="store_true",
        help="every answer must come from an --expect-version (e.g. an aborted rollout's old one)",
    )
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.read() if args.log == "-" else Path(args.log).read_text()
        summary = read_summary(text, "stdin" if args.log == "-" else args.log)
    except (OSError, NoSummary) as error:
        print(f"check_load: {error}", file=sys.stderr)
        return 2
    found = problems(summary, args.min_requests, args.expect_version, only=args.only)
    counts = f"{summary['requests']} requests, {summary['failures']} failed"
    if found:
        print(f"FAIL: {counts}", *found, sep="\n")
        return 1
    print(f"PASS: {counts}, versions {summary['versions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="check_load.py"))

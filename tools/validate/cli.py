"""`zdt validate [ROOT]`: render every overlay and check it (what `make validate` runs).

Every overlay is checked as it is and as it would be with each opt-in component of components/
switched on (`overlays/v2+components/rollout-canary`), and with the combinations that go
together: each exposure alone and under each delivery component
(`overlays/v2+components/rollout-canary+components/gateway-api+components/aws-alb`). Prints a
summary per render, then every problem found by the invariants, the strict schema validation
and checkov; exits 1 when there is any. checkov is $CHECKOV, else checkov on PATH.
"""

import argparse
import sys
from pathlib import Path

from tools.kustomize import RenderError
from tools.repo import ROOT
from tools.validate.invariants import CROSS_OVERLAY_CHECKS, OVERLAY_CHECKS, check_overlays
from tools.validate.overlays import load_overlays, load_variants
from tools.validate.schema import SUPPORTED_KUBERNETES, schema_problems
from tools.validate.security import CheckovError, run_checkov
from tools.validate.summary import describe


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zdt validate", description="Render every overlay and check it."
    )
    parser.add_argument(
        "root",
        nargs="?",
        type=Path,
        default=ROOT,
        help="the directory that holds overlays/ (default: this repository)",
    )
    root = parser.parse_args(arguments).root
    config_file = root / ".checkov.yaml"
    try:
        overlays = load_overlays(root)
        variants = load_variants(root) if overlays else {}
    except RenderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not overlays:
        print(f"error: {root / 'overlays'}: no overlay (*/kustomization.yaml)", file=sys.stderr)
        return 1
    # The overlays as they are, then with each combination of components: the cross-overlay
    # checks compare the overlays of one group (both overlays switch components on alike).
    groups = [overlays, *variants.values()]
    renders = [overlay for group in groups for overlay in group]
    for overlay in renders:
        print("\n".join(describe(overlay)))

    problems = [problem for group in groups for problem in check_overlays(group)]
    for overlay in renders:
        problems += schema_problems(overlay)
    versions = " and ".join(SUPPORTED_KUBERNETES)
    print(
        f"checked: {len(OVERLAY_CHECKS)} invariants per overlay and {len(CROSS_OVERLAY_CHECKS)}"
        f" across overlays, on {len(overlays)} overlays alone and with each of"
        f" {len(variants)} component combinations ({', '.join(variants) or 'none'}); strict"
        " schemas of"
        f" Kubernetes {versions}, and of their CRDs for custom resources"
    )
    checkov_failed = False
    try:
        report = run_checkov(renders, config_file)
        problems += report.problems
        print(
            f"checkov: {report.passed} passed, {len(report.skipped)} skipped in {config_file.name}"
        )
    except CheckovError as error:
        print(f"error: {error}", file=sys.stderr)
        checkov_failed = True

    for problem in problems:
        print(f"problem: {problem}")
    if problems or checkov_failed:
        print(f"FAILED: {len(problems)} problem(s)" + (", checkov did not run" * checkov_failed))
        return 1
    print(f"OK: {len(overlays)} overlays, {len(renders)} renders")
    return 0

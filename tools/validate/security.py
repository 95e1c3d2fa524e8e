"""checkov over the rendered overlays, in one run, with the skips listed in .checkov.yaml."""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.repo import ROOT
from tools.validate.overlays import Overlay, Problem

CONFIG_FILE = ROOT / ".checkov.yaml"


class CheckovError(Exception):
    """checkov is missing or did not produce a report."""


@dataclass
class CheckovReport:
    passed: int = 0
    skipped: list[str] = field(default_factory=list)  # check ids skipped by the configuration
    problems: list[Problem] = field(default_factory=list)


def checkov_command() -> str:
    """The checkov binary: $CHECKOV, else checkov on PATH."""
    command = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not command or not shutil.which(command):
        raise CheckovError(
            "checkov not found: set CHECKOV to its path or put it on PATH"
            " (make validate installs it into .venv-checkov)"
        )
    return command


def skipped_checks(config_file: Path = CONFIG_FILE) -> list[str]:
    try:
        return yaml.safe_load(Path(config_file).read_text()).get("skip-check", [])
    except OSError as error:
        raise CheckovError(f"{config_file}: cannot read: {error.strerror}") from None


def run_checkov(overlays: list[Overlay], config_file: Path = CONFIG_FILE) -> CheckovReport:
    """Scan every overlay's rendered resources; each failed check becomes a problem."""
    command = checkov_command()
    skipped = skipped_checks(config_file)  # a missing configuration fails here, clearly
    with tempfile.TemporaryDirectory(prefix="checkov-") as directory:
        files = {}
        for overlay in overlays:
            path = Path(directory) / (overlay.name.replace("/", "-") + ".yaml")
            path.write_text(yaml.safe_dump_all(overlay.resources, sort_keys=False))
            files[str(path.resolve())] = overlay.name
        arguments = [command, "--config-file", str(config_file), "--framework", "kubernetes"]
        arguments += ["--skip-download", "--output", "json"]
        for path in files:
            arguments += ["--file", path]
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=300, check=False)
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CheckovError(
            f"checkov gave no report (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        ) from None
    report = report_from(reports if isinstance(reports, list) else [reports], files)
    report.skipped = skipped
    return report


def report_from(reports: list[dict], files: dict[str, str]) -> CheckovReport:
    report = CheckovReport()
    for part in reports:
        results = part.get("results", {})
        report.passed += len(results.get("passed_checks", []))
        for failed in results.get("failed_checks", []):
            overlay = files.get(failed.get("file_abs_path"), failed.get("file_path"))
            report.problems.append(
                Problem(
                    overlay,
                    failed["resource"],
                    f"checkov {failed['check_id']}",
                    failed["check_name"],
                )
            )
        if part.get("summary", {}).get("parsing_errors"):
            report.problems.append(
                Problem(", ".join(files.values()), "-", "checkov", "could not parse the manifests")
            )
    if report.passed == 0 and not report.problems:
        raise CheckovError("checkov ran no checks on the rendered manifests")
    return report

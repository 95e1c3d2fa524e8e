"""Argo Rollouts analyses, run for real: the AnalysisTemplate's Job command as a local process.

The template's container runs the repository's own load check from a ConfigMap mounted at
SCRIPTS_MOUNT (components/rollout-analysis/analysis-template.yaml); here the same files run from
tools/e2e/, and the `service` argument, a Service's name in the cluster, becomes the address of
the emulated Service. Its exit status is the verdict, as for a Job.
"""

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cluster.network import netns
from tools.rehearsal.manifests.rollout import Analysis
from tools.repo import ROOT

SCRIPTS_MOUNT = "/opt/load-check/"  # where the template mounts load-check-scripts
SCRIPTS = ROOT / "tools" / "e2e"
SERVICE_ARG = "service"
VERSION_ARG = "expected-version"
JOB_DEADLINE = 120.0  # the template's activeDeadlineSeconds


@dataclass
class AnalysisRun:
    template: str
    service: str
    argv: list[str]
    passed: bool
    verdict: str  # the command's last line
    log: Path
    seconds: float


def local_argv(argv: list[str]) -> list[str]:
    """The Job's command line on this machine: this Python, the scripts from tools/e2e."""
    local = [sys.executable if argv and argv[0].startswith("python") else argv[0]]
    return local + [part.replace(SCRIPTS_MOUNT, f"{SCRIPTS}/") for part in argv[1:]]


async def run_analysis(
    analysis: Analysis,
    addresses: dict[str, str],
    expected_version: str,
    log_dir: Path,
    number: int,
    network: str | None = None,
) -> list[AnalysisRun]:
    """Run every template of the analysis; `addresses` maps Service names to host:port. The
    Jobs run in the network namespace whose file is `network` (a node's), if given."""
    runs = []
    values = dict(analysis.args)
    service = values.get(SERVICE_ARG, "")
    if service in addresses:
        values[SERVICE_ARG] = addresses[service]
    values[VERSION_ARG] = expected_version
    for index, job in enumerate(analysis.jobs):
        argv = local_argv(job.argv(values))
        log = log_dir / f"analysis-{number}-{index + 1}-{job.template}.log"
        started = asyncio.get_running_loop().time()
        with open(log, "wb") as out, netns.preexec_in(network) as preexec:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, preexec_fn=preexec
            )
            try:
                status = await asyncio.wait_for(process.wait(), JOB_DEADLINE)
            except TimeoutError:
                process.kill()
                status = await process.wait()
        lines = log.read_text(errors="replace").strip().splitlines() or [f"exit {status}"]
        runs.append(
            AnalysisRun(
                template=job.template,
                service=service,
                argv=argv,
                passed=status == 0,
                verdict=next((line for line in lines if line.startswith("analysis ")), lines[-1]),
                log=log,
                seconds=asyncio.get_running_loop().time() - started,
            )
        )
    return runs

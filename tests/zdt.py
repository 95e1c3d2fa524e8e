"""Run the repository's command line the way the Makefile and the workflows do: `zdt`."""

import os
import subprocess
import sys
from pathlib import Path

from tools.repo import ROOT

# `make` installs the project into the virtual environment, which puts the script beside python.
SCRIPT = Path(sys.executable).with_name("zdt")


def zdt(
    *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

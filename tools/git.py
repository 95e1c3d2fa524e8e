"""git as a subprocess: the one helper every git call of the tools and the tests goes through."""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


class GitError(RuntimeError):
    """A git command failed; the message names it and git's last line of output."""


def run(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run `git ARGS` in `repo` and return the finished process, whatever its exit status."""
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        env=None if env is None else {**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> str:
    """The stripped stdout of `git ARGS`; GitError when it fails."""
    result = run(repo, *args, env=env, timeout=timeout)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)}: {detail[-1] if detail else 'failed'}")
    return result.stdout.strip()

"""git as a subprocess: the one helper every git call of the tools and the tests goes through."""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

# Seconds a git command may take before it is killed: ZDT_GIT_TIMEOUT, or 60.
TIMEOUT_VARIABLE = "ZDT_GIT_TIMEOUT"


class GitError(RuntimeError):
    """A git command failed, or did not finish in time; the message names it and the cause."""


def default_timeout() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE, "60")
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise GitError(f"{TIMEOUT_VARIABLE}={value!r}: not a positive number of seconds")
    return seconds


def run(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run `git ARGS` in `repo` and return the finished process, whatever its exit status.
    GitError when git cannot be started or runs longer than `timeout` seconds (then killed)."""
    timeout = default_timeout() if timeout is None else timeout
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            env=None if env is None else {**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)}: no answer after {timeout:g} s, stopped") from None
    except OSError as error:
        raise GitError(f"git {' '.join(args)}: cannot run git ({error.strerror})") from None


def output(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> str:
    """The stripped stdout of `git ARGS`; GitError when it fails."""
    result = run(repo, *args, env=env, timeout=timeout)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)}: {detail[-1] if detail else 'failed'}")
    return result.stdout.strip()

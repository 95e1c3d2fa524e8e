"""Commit the given paths as the release bot and push, rebasing when the branch moved on.

    zdt push --message "release: ... [skip ci]" overlays/v2

Nothing to commit is success. When the push is rejected because the branch moved on (git's
"fetch first" or "non-fast-forward"), the commit is rebased onto it and pushed again, up to
--attempts times with a growing pause. Any other refusal (a pre-receive hook or branch rule,
authentication, an unreachable remote) fails at once, with git's own message. A rebase conflict
(someone else changed the same lines, e.g. a newer release) is aborted and reported, never
resolved: the newer state on the branch wins. A git command that fails, or runs longer than
ZDT_GIT_TIMEOUT seconds (60), is one line naming it. Exit 0 pushed or nothing to do, 1 failed.
"""

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.git import GitError
from tools.git import output as git_output
from tools.git import run as git
from tools.release import ReleaseError

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# Author and committer of the tag commit, also when a rebase rewrites it.
IDENTITY = ("-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}")
# The reasons git gives for a ref the remote has moved past (git-push(1), OUTPUT): the only
# refusals a rebase can cure.
BEHIND = {"fetch first", "non-fast-forward"}


@dataclass(frozen=True)
class PushOutcome:
    """What one `git push --porcelain` did to the branch."""

    pushed: bool
    reason: str  # git's reason for a rejected ref, e.g. "fetch first"; empty when none was given
    message: str  # git's own output for a person: the remote's lines, errors, the ref's status

    @property
    def behind(self) -> bool:
        return not self.pushed and self.reason in BEHIND


def commit(repo: Path, paths: list[str], message: str) -> bool:
    """Commit the paths as the bot; return False when they hold no change."""
    git_output(repo, "add", "--", *paths)
    if git(repo, "diff", "--cached", "--quiet").returncode == 0:
        return False
    git_output(repo, *IDENTITY, "commit", "--quiet", "--message", message)
    return True


def push(repo: Path, remote: str, branch: str) -> PushOutcome:
    """Push HEAD to the branch once. With --porcelain git writes one line per ref to stdout,
    `<flag> TAB <from>:<to> TAB <summary> (<reason>)`, flag `!` for a rejected ref
    (git-push(1), OUTPUT); everything meant for a person goes to stderr."""
    result = git(repo, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}")
    rejected, reason, lines = False, "", [result.stderr.strip()]
    for line in result.stdout.splitlines():
        flag, _, rest = line.partition("\t")
        ref, _, summary = rest.partition("\t")
        if ref.endswith(f":refs/heads/{branch}"):
            rejected = flag == "!"
            reason = summary[summary.find("(") + 1 : -1] if summary.endswith(")") else ""
            lines.append(f"{ref}: {summary}")
    message = "\n".join(line for line in lines if line)
    return PushOutcome(result.returncode == 0 and not rejected, reason, message)


def push_with_retry(repo: Path, remote: str, branch: str, attempts: int, pause: float) -> int:
    """Push HEAD to remote/branch; return the attempt that succeeded."""
    for attempt in range(1, attempts + 1):
        outcome = push(repo, remote, branch)
        if outcome.pushed:
            return attempt
        if not outcome.behind:
            print(outcome.message, file=sys.stderr)
            because = f" ({outcome.reason})" if outcome.reason else ""
            raise ReleaseError(f"push to {remote}/{branch} failed{because}; not retried")
        if attempt == attempts:
            break
        print(
            f"push rejected ({outcome.reason}, attempt {attempt}/{attempts}); "
            f"rebasing onto {remote}/{branch}"
        )
        rebase = git(repo, *IDENTITY, "pull", "--rebase", "--quiet", remote, branch)
        if rebase.returncode != 0:
            git(repo, "rebase", "--abort")
            raise ReleaseError(
                f"rebase onto {remote}/{branch} failed (the same lines changed there): "
                "left as it is on the branch"
            )
        time.sleep(pause * attempt)
    raise ReleaseError(
        f"push to {remote}/{branch} still behind after {attempts} attempts: the branch keeps moving"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zdt push", description=__doc__)
    parser.add_argument("paths", nargs="+", help="files or directories to commit")
    parser.add_argument("--message", required=True)
    parser.add_argument("--remote", default="origin", help="a remote's name or a URL (origin)")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds, times the attempt")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="work tree (cwd)")
    args = parser.parse_args(argv)
    try:
        if not commit(args.repo, args.paths, args.message):
            print(f"nothing to commit in {' '.join(args.paths)}")
            return 0
        attempt = push_with_retry(args.repo, args.remote, args.branch, args.attempts, args.pause)
    except (ReleaseError, GitError) as error:
        print(f"zdt push: {error}", file=sys.stderr)
        return 1
    print(f"pushed to {args.remote}/{args.branch} (attempt {attempt})")
    return 0

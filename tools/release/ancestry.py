"""The --no-downgrade guard: only move an overlay forward along the git history.

The release workflow tags every image with the full SHA of the commit it was built from and
writes that tag into the overlay. "Forward" means the new tag's commit is the current tag's
commit or a descendant of it (`git merge-base --is-ancestor CURRENT NEW`), so a re-run of an
old workflow, or a run that lost a race, can never put an older build back. Commit dates are
not used: they are not ordered along the history (rebases, clock skew).

A current tag that is not a commit SHA (the hand-written seed tags such as `v2`) has no place in
the history, so any commit may replace it. A commit missing from the local clone is refused
rather than guessed: the caller needs the full history (actions/checkout `fetch-depth: 0`).
"""

import re
from pathlib import Path

from tools.git import run as git
from tools.release import ReleaseError

COMMIT_TAG = re.compile(r"[0-9a-f]{40}")


def check_forward(current: str, new: str, *, where: str, repo: Path) -> None:
    """Raise ReleaseError unless moving from tag `current` to tag `new` goes forward."""
    if current == new:
        return
    if not COMMIT_TAG.fullmatch(new):
        raise ReleaseError(
            f"--tag {new!r}: --no-downgrade needs the full 40-hex SHA of the commit built"
        )
    if not COMMIT_TAG.fullmatch(current):
        return
    if git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise ReleaseError(f"{repo}: not inside a git repository, cannot order the tags")
    for label, sha in ((f"{where} {current!r}", current), (f"--tag {new!r}", new)):
        if git(repo, "cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
            raise ReleaseError(f"{label}: commit not in the local history (fetch the full history)")
    result = git(repo, "merge-base", "--is-ancestor", current, new)
    if result.returncode == 1:
        raise ReleaseError(
            f"{where}: refusing to move backwards from {current} to {new} "
            "(the new commit does not descend from the current one)"
        )
    if result.returncode != 0:
        raise ReleaseError(f"{repo}: git merge-base failed: {result.stderr.strip()}")

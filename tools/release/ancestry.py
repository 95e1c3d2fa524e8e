"""The --no-downgrade guard: only move an overlay forward along the git history.

The release workflow tags every image with the full SHA of the commit it was built from and
writes that tag into the overlay. Where the offered tag stands relative to the current one
decides what `zdt bump --no-downgrade` does:

- the same commit, or a descendant of it (`git merge-base --is-ancestor CURRENT NEW`): forward,
  the overlay moves;
- an ancestor of it (the current commit already descends from the offered one): an older
  release, e.g. a re-run of an old workflow or a run overtaken by a newer one. Nothing to do:
  the newer release stays, and `zdt bump` says so and exits 0;
- neither (the two commits have diverged, e.g. history was rewritten): refused, exit 2. That is
  not a re-run; somebody has to look.

Commit dates are not used: they are not ordered along the history (rebases, clock skew).

A current tag that is not a commit SHA (the hand-written seed tags such as `v2`) has no place in
the history, so any commit may replace it. A commit missing from the local clone is refused
rather than guessed: the caller needs the full history (actions/checkout `fetch-depth: 0`).
"""

import enum
import re
from pathlib import Path

from tools.git import run as git
from tools.release import ReleaseError

COMMIT_TAG = re.compile(r"[0-9a-f]{40}")


class Order(enum.Enum):
    """Where the offered tag stands relative to the overlay's current one."""

    SAME = "same"
    FORWARD = "forward"
    # The current tag is no commit (a seed tag): any commit may replace it.
    UNORDERED = "unordered"
    # The offered commit is an ancestor of the current one: an older release.
    OLDER = "older"


def order(current: str, new: str, *, where: str, repo: Path) -> Order:
    """Order tag `new` against tag `current`; ReleaseError for what cannot be ordered."""
    if current == new:
        return Order.SAME
    if not COMMIT_TAG.fullmatch(new):
        raise ReleaseError(
            f"--tag {new!r}: --no-downgrade needs the full 40-hex SHA of the commit built"
        )
    if not COMMIT_TAG.fullmatch(current):
        return Order.UNORDERED
    if git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise ReleaseError(f"{repo}: not inside a git repository, cannot order the tags")
    for label, sha in ((f"{where} {current!r}", current), (f"--tag {new!r}", new)):
        if git(repo, "cat-file", "-e", f"{sha}^{{commit}}").returncode != 0:
            raise ReleaseError(f"{label}: commit not in the local history (fetch the full history)")
    if is_ancestor(current, new, repo):
        return Order.FORWARD
    if is_ancestor(new, current, repo):
        return Order.OLDER
    raise ReleaseError(
        f"{where}: refusing to move from {current} to {new}: the two commits have diverged "
        "(neither descends from the other)"
    )


def is_ancestor(older: str, newer: str, repo: Path) -> bool:
    result = git(repo, "merge-base", "--is-ancestor", older, newer)
    if result.returncode not in (0, 1):
        raise ReleaseError(f"{repo}: git merge-base failed: {result.stderr.strip()}")
    return result.returncode == 0

"""Set an overlay's image tag (and digest) the way `kustomize edit set image` does.

    zdt bump OVERLAY_DIR --image NAME --tag TAG [--digest sha256:HEX]
                [--new-name REPOSITORY] [--no-downgrade]

This is `kustomize edit set image NAME=NEWNAME:TAG[@DIGEST]` on the entry named NAME: it writes
`newTag`, writes `digest` when given and removes a stale one when not (kustomize replaces the
whole entry), and writes `newName` when --new-name is given (kept as it is otherwise, like
kustomize's `NAME=*:TAG`). Unlike kustomize it edits in place with ruamel.yaml round-trip, so
comments and layout survive, it never adds an entry (an unknown NAME is refused), and it leaves
the file untouched when nothing changes.

--no-downgrade keeps the overlay from moving backwards along the git history (see
tools.release.ancestry): a tag whose commit is an ancestor of the current one (an older release,
e.g. a re-run of an old workflow) leaves the file untouched and prints one notice line naming
the file, the field and both commits; a tag that cannot be ordered (not a commit SHA, missing
from the history, or diverged from the current one) is refused.
Exit status: 0 set, already set, or an older release left alone (notice); 2 refused (one line on
stderr naming file, field or value, or the git command that failed or ran out of time).
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tools.git import GitError
from tools.imageref import DIGEST, REPOSITORY, TAG, ImageRef
from tools.release import ReleaseError
from tools.release.ancestry import Order, order
from tools.release.kustomization import Kustomization, set_scalar


@dataclass(frozen=True)
class ImageUpdate:
    name: str
    tag: str
    digest: str | None = None
    new_name: str | None = None

    def validate(self) -> None:
        if not TAG.fullmatch(self.tag):
            raise ReleaseError(
                f"--tag {self.tag!r}: not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-], max 128)"
            )
        if self.digest is not None and not DIGEST.fullmatch(self.digest):
            raise ReleaseError(
                f"--digest {self.digest!r}: not a valid digest (sha256: and 64 lower-case hex)"
            )
        if self.new_name is not None and not REPOSITORY.fullmatch(self.new_name):
            raise ReleaseError(f"--new-name {self.new_name!r}: not a valid image repository")


def image_reference(entry) -> str:
    """The image reference kustomize renders for an `images:` entry."""
    repository = str(entry.get("newName") or entry.get("name"))
    tag, digest = entry.get("newTag"), entry.get("digest")
    return str(ImageRef(repository, tag and str(tag), digest and str(digest)))


class BumpResult(NamedTuple):
    changed: bool
    # The image reference the overlay renders after the call.
    reference: str
    # Set when --no-downgrade left an older release alone: the line to print.
    notice: str | None = None


def bump(overlay: Path, update: ImageUpdate, *, no_downgrade: bool = False) -> BumpResult:
    """Apply the update; return whether the file changed and the reference it now renders."""
    update.validate()
    kustomization = Kustomization(Path(overlay))
    entry = kustomization.image_entry(update.name)
    current_tag = entry.get("newTag")
    if no_downgrade and current_tag is not None:
        field = f"{kustomization.path}: images[{update.name}].newTag"
        where = order(str(current_tag), update.tag, where=field, repo=kustomization.path.parent)
        if where is Order.OLDER:
            notice = (
                f"{field}: current {current_tag} already descends from the offered {update.tag}: "
                "an older release, left unchanged"
            )
            return BumpResult(False, image_reference(entry), notice)

    before = kustomization.dump()
    if update.new_name is not None:
        set_scalar(entry, "newName", update.new_name)
    set_scalar(entry, "newTag", update.tag)
    if update.digest is not None:
        set_scalar(entry, "digest", update.digest)
    elif "digest" in entry:
        del entry["digest"]

    changed = kustomization.dump() != before
    if changed:
        kustomization.save()
    return BumpResult(changed, image_reference(entry))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zdt bump",
        description="Set an overlay's image tag and digest (kustomize edit set image, in place).",
    )
    parser.add_argument("overlay", type=Path, help="kustomization directory, e.g. overlays/v2")
    parser.add_argument("--image", required=True, help="the `name:` of the images entry")
    parser.add_argument("--tag", required=True, help="new tag (newTag)")
    parser.add_argument("--digest", help="image digest, sha256:<64 hex> (digest)")
    parser.add_argument("--new-name", help="image repository (newName); kept when omitted")
    parser.add_argument(
        "--no-downgrade",
        action="store_true",
        help="move only forward along the git history: an older commit is left alone (exit 0, "
        "a notice), one that cannot be ordered is refused (exit 2)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    update = ImageUpdate(args.image, args.tag, args.digest, args.new_name)
    try:
        result = bump(args.overlay, update, no_downgrade=args.no_downgrade)
    except (ReleaseError, GitError) as error:
        print(f"zdt bump: {error}", file=sys.stderr)
        return 2
    if result.notice:
        print(f"zdt bump: notice: {result.notice}")
        return 0
    state = "set" if result.changed else "already set, unchanged"
    print(f"{args.overlay}: {args.image} -> {result.reference} ({state})")
    return 0

"""Print one field of an overlay's images entry, e.g. the repository a release pushes to.

    zdt show overlays/v2 --image zero-downtime-app --field newName

--field is newName, newTag, digest, or reference (what kustomize renders: newName:newTag@digest).
Exit 2 with one line on stderr for an unknown overlay, image or a field the entry lacks.
"""

import argparse
import sys
from pathlib import Path

from tools.release import ReleaseError
from tools.release.bump import image_reference
from tools.release.kustomization import Kustomization

FIELDS = ("newName", "newTag", "digest", "reference")


def show(overlay: Path, image: str, field: str) -> str:
    kustomization = Kustomization(Path(overlay))
    entry = kustomization.image_entry(image)
    if field == "reference":
        return image_reference(entry)
    if not entry.get(field):
        raise ReleaseError(f"{kustomization.path}: images[{image}].{field}: not set")
    return str(entry[field])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zdt show", description=__doc__)
    parser.add_argument("overlay", type=Path)
    parser.add_argument("--image", required=True)
    parser.add_argument("--field", choices=FIELDS, default="reference")
    args = parser.parse_args(argv)
    try:
        print(show(args.overlay, args.image, args.field))
    except ReleaseError as error:
        print(f"zdt show: {error}", file=sys.stderr)
        return 2
    return 0

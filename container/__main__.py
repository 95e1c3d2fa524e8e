"""`python -m container VERSION...`: build the image for each APP_VERSION, print tag and size."""

import argparse
import sys

from container.engine import EngineError, find_engine
from container.image import build_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m container", description=__doc__)
    parser.add_argument("versions", nargs="+", metavar="VERSION", help="APP_VERSION, e.g. v1")
    args = parser.parse_args(argv)
    try:
        engine = find_engine()
        for version in args.versions:
            tag = build_image(engine, version)
            print(f"{tag}  {engine.image_size(tag) / 1e6:.0f} MB  ({engine.name})")
    except (EngineError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`zdt image build VERSION...`: build the service image for each APP_VERSION, with its size."""

import argparse
import sys

from tools.image.build import build_image
from tools.image.engine import EngineError, find_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zdt image", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build",
        help="build localhost/zero-downtime-app:VERSION with podman or docker",
        description="Build localhost/zero-downtime-app:VERSION (APP_VERSION=VERSION) with "
        "CONTAINER_ENGINE, else podman or docker, whichever works.",
    )
    build.add_argument("versions", nargs="+", metavar="VERSION", help="APP_VERSION, e.g. v1")
    args = parser.parse_args(argv)
    try:
        engine = find_engine()
        for version in args.versions:
            tag = build_image(engine, version)
            print(f"{tag}  {engine.image_size(tag) / 1e6:.0f} MB  ({engine.name})")
    except (EngineError, FileNotFoundError) as error:
        print(f"zdt image: error: {error}", file=sys.stderr)
        return 1
    return 0

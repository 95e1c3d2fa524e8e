"""Build the service image for an APP_VERSION with whichever engine is available.

The base image is `BASE_IMAGE` when set, else the local stand-in built by
tools/image/build-base-image.sh when the engine has it, else the Dockerfile's default (the
official Python image). Behind a TLS-intercepting proxy the CA bundle named by `BUILD_CA_BUNDLE`
(or, failing that, `PIP_CERT`, `SSL_CERT_FILE` or `REQUESTS_CA_BUNDLE`) is handed to pip as the
build secret `pip_ca`; it never ends up in a layer.
"""

import datetime
import os
from pathlib import Path

from tools.git import run as git
from tools.image.engine import Engine, EngineError
from tools.imageref import ImageRef
from tools.repo import ROOT

IMAGE_REPOSITORY = "localhost/zero-downtime-app"
STAND_IN_BASE = "localhost/python-base:3.11-bookworm"
CA_BUNDLE_VARIABLES = ("BUILD_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def image_tag(version: str) -> str:
    return str(ImageRef(IMAGE_REPOSITORY, version))


def local_image(reference: str) -> str:
    """The local build standing in for a registry reference to this image, matched by tag.

    `<any registry>/<path>/zero-downtime-app:<tag>` -> `localhost/zero-downtime-app:<tag>`, the
    image `zdt image build <tag>` builds (with APP_VERSION=<tag>, as CI tags its pushes).
    Raises ValueError for another image, or a reference without a tag (such as a digest).
    """
    image = ImageRef.parse(reference)
    expected = ImageRef.parse(IMAGE_REPOSITORY).name
    if image.name != expected:
        raise ValueError(f"image {reference!r} is not {expected}: there is no local build of it")
    if image.digest or not image.tag:
        raise ValueError(f"image {reference!r}: only a tag (:v1, ...) maps to a local build")
    return image_tag(image.tag)


def base_image(engine: Engine) -> str | None:
    """The base image to build on, or None for the Dockerfile's default."""
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    return STAND_IN_BASE if engine.image_exists(STAND_IN_BASE) else None


def ca_bundle() -> Path | None:
    for variable in CA_BUNDLE_VARIABLES:
        value = os.environ.get(variable)
        if value:
            path = Path(value)
            if not path.is_file():
                raise FileNotFoundError(f"{variable}={value}: no such CA bundle file")
            return path
    return None


def git_revision() -> str:
    result = git(ROOT, "rev-parse", "HEAD")
    return result.stdout.strip() if result.returncode == 0 else ""


def build_args(engine: Engine, version: str, tag: str) -> list[str]:
    """The `build` command line (without the engine name) for one APP_VERSION."""
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["build", "--file", str(ROOT / "Dockerfile"), "--tag", tag]
    args += ["--build-arg", f"APP_VERSION={version}", "--build-arg", f"BUILD_DATE={created}"]
    revision = git_revision()
    if revision:
        args += ["--build-arg", f"VCS_REF={revision}"]
    base = base_image(engine)
    if base:
        args += ["--build-arg", f"BASE_IMAGE={base}"]
    bundle = ca_bundle()
    if bundle:
        args += ["--secret", f"id=pip_ca,src={bundle}"]
    return [*args, str(ROOT)]


def build_image(engine: Engine, version: str, tag: str | None = None) -> str:
    """Build the image for APP_VERSION=version and return its tag."""
    tag = tag or image_tag(version)
    previous = image_id(engine, tag)
    engine.command(*build_args(engine, version, tag), timeout=900)
    if previous and previous != image_id(engine, tag):
        # The tag moved on: drop the untagged old image rather than let them pile up.
        # This fails harmlessly while a container still uses it.
        engine.run_quietly("rmi", previous)
    return tag


def image_id(engine: Engine, image: str) -> str | None:
    try:
        return engine.command("image", "inspect", "--format", "{{.Id}}", image).strip()
    except EngineError:
        return None

"""Image references: one parser for the manifest checks, the rehearsal, the image and releases."""

import pytest

from tools.image.build import local_image
from tools.imageref import DIGEST, REPOSITORY, TAG, ImageRef
from tools.rehearsal.manifests.pod import version_of


def test_image_references_split_into_repository_tag_and_digest():
    assert ImageRef.parse("registry:5000/a/b:v2@sha256:ab") == ImageRef(
        "registry:5000/a/b", "v2", "sha256:ab"
    )
    assert ImageRef.parse("registry:5000/a/b") == ImageRef("registry:5000/a/b", None, None)


@pytest.mark.parametrize(
    "reference",
    [
        "public.ecr.aws/alias/zero-downtime-app:v2",
        "public.ecr.aws/alias/zero-downtime-app:" + "a" * 40 + "@sha256:" + "0" * 64,
        "registry:5000/zero-downtime-app",
        "zero-downtime-app@sha256:" + "1" * 64,
    ],
)
def test_a_reference_reads_back_as_written(reference):
    assert str(ImageRef.parse(reference)) == reference


def test_the_name_is_the_last_path_component_whatever_the_registry():
    assert ImageRef.parse("registry:5000/a/zero-downtime-app:v1").name == "zero-downtime-app"
    assert ImageRef.parse("zero-downtime-app").name == "zero-downtime-app"


def test_the_grammar_accepts_docker_references_and_refuses_others():
    assert TAG.fullmatch("v1.2.3_rc-1") and not TAG.fullmatch("release/3")
    assert DIGEST.fullmatch("sha256:" + "a" * 64) and not DIGEST.fullmatch("sha256:" + "A" * 64)
    assert REPOSITORY.fullmatch("registry:5000/a/b") and not REPOSITORY.fullmatch("a/Upper")


def test_the_version_a_pod_reports_comes_from_the_same_parser():
    assert version_of("registry:5000/a/app:v7", ()) == "v7"
    assert version_of("registry:5000/a/app", ()) == "latest"
    assert version_of("a/app:v7@sha256:" + "ab" * 32, ()) == "ab" * 6


def test_a_local_build_stands_in_only_for_a_tag_of_this_image():
    assert local_image("public.ecr.aws/alias/zero-downtime-app:v2") == (
        "localhost/zero-downtime-app:v2"
    )
    with pytest.raises(ValueError, match="is not zero-downtime-app"):
        local_image("registry:5000/other:v2")
    with pytest.raises(ValueError, match="only a tag"):
        local_image("public.ecr.aws/alias/zero-downtime-app:v2@sha256:" + "0" * 64)

"""The render cache (tools/kustomize.py): its key, what kustomize reads, by content; renders
shared between processes."""

import shutil

from tools import kustomize
from tools.kustomize import inputs_digest
from tools.repo import ROOT


def copy(destination):
    for name in ("base", "overlays"):
        shutil.copytree(ROOT / name, destination / name)
    return destination


def write(directory, text):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(text)
    return directory


def test_a_copy_of_the_tree_has_the_same_digest_and_any_change_another(tmp_path):
    for name in ("base", "overlays"):
        shutil.copytree(ROOT / name, tmp_path / "a" / name)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    v2 = inputs_digest(tmp_path / "a/overlays/v2")
    assert v2 is not None and inputs_digest(tmp_path / "b/overlays/v2") == v2
    deployment = tmp_path / "b/base/deployment.yaml"
    deployment.write_text(deployment.read_text().replace("periodSeconds", "periodSeconds "))
    assert inputs_digest(tmp_path / "b/overlays/v2") != v2


def test_scalars_count_as_written(tmp_path):
    # PyYAML's safe loader reads both tags as the float 1.1; kustomize does not.
    tag = "images:\n  - name: app\n    newTag: {}\n"
    assert inputs_digest(write(tmp_path / "a", tag.format("1.1"))) != inputs_digest(
        write(tmp_path / "b", tag.format("1.10"))
    )


def test_a_remote_or_missing_reference_is_never_cached(tmp_path):
    remote = "resources:\n  - https://github.com/example/repo//deploy?ref=v1\n"
    assert inputs_digest(write(tmp_path / "remote", remote)) is None
    missing = "resources:\n  - ../nowhere\n"
    assert inputs_digest(write(tmp_path / "missing", missing)) is None


def test_processes_share_renders_through_the_directory_named_in_the_environment(
    tmp_path, monkeypatch
):
    shared = tmp_path / "renders"
    monkeypatch.setenv(kustomize.RENDER_CACHE, str(shared))
    monkeypatch.setattr(kustomize, "_renders", {})  # whatever this process rendered before
    overlay = copy(tmp_path / "tree")
    first = kustomize.render_text(overlay / "overlays/v1")
    assert len(list(shared.iterdir())) == 1

    # Another process: nothing rendered in it yet, and no kustomize to run.
    monkeypatch.setattr(kustomize, "_renders", {})

    def no_kustomize(*args, **kwargs):
        raise AssertionError("kustomize ran")

    monkeypatch.setattr(kustomize.subprocess, "run", no_kustomize)
    assert kustomize.render_text(copy(tmp_path / "elsewhere") / "overlays/v1") == first

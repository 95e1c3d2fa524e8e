"""Strict schema validation of rendered overlays.

Kubernetes' own kinds: kubernetes-validate --strict, for the oldest and the newest supported
Kubernetes. The oldest supported version is 1.30: the preStop `sleep` action is on by default
from there (before, it was absent or behind an alpha feature gate). The newest is the newest
schema that kubernetes-validate ships.

Custom resources (Argo Rollouts, Kyverno): their CRD's schema, strictly (tools/validate/crd.py).
"""

import functools

import kubernetes_validate
import kubernetes_validate.utils

from tools.validate import crd
from tools.validate.overlays import Overlay, Problem, resource_id

# kubernetes_validate.validate reads and parses the kind's JSON schema and the version's
# _definitions.json (megabytes) again for every resource (utils.schema_contents, called by
# name from utils.validate). The files are part of the installed package and do not change
# within a process: parse each once. Two thirds of the time of a full validation go otherwise.
kubernetes_validate.utils.schema_contents = functools.cache(
    kubernetes_validate.utils.schema_contents
)

OLDEST_KUBERNETES = "1.30"
NEWEST_KUBERNETES = "1.37"
SUPPORTED_KUBERNETES = (OLDEST_KUBERNETES, NEWEST_KUBERNETES)


def schema_problems(
    overlay: Overlay, versions: tuple[str, ...] = SUPPORTED_KUBERNETES
) -> list[Problem]:
    """Every resource of the overlay, validated strictly (unknown fields rejected)."""
    problems = []
    for resource in overlay.resources:
        if crd.crd_of(resource):
            problems += [
                Problem(overlay.name, resource_id(resource), field, message)
                for field, message in crd.validate(resource)
            ]
    for version in versions:
        for resource in overlay.resources:
            if crd.crd_of(resource):
                continue
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                field = ".".join(str(part) for part in error.path) or "(document)"
                message = f"invalid for Kubernetes {version}: {error.message}"
                problems.append(Problem(overlay.name, resource_id(resource), field, message))
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(
                    Problem(overlay.name, resource_id(resource), "apiVersion", error.message)
                )
    return problems

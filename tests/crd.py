"""Validate custom resources offline against the OpenAPI v3 schema their CRD ships, strictly.

`kubectl apply` (strict field validation) rejects fields a CRD's schema does not declare; a
plain JSON Schema validator would let them through. `strict_schema` closes every object that
lists its properties, unless the schema preserves unknown fields there.
"""

from pathlib import Path

import jsonschema
import yaml

from tools.repo import ROOT

DATA = ROOT / "tests" / "data"


def strict_schema(node):
    """The CRD's openAPIV3Schema as a JSON schema that, like `kubectl apply` (strict field
    validation), rejects unknown fields: `additionalProperties: false` on every object that
    lists its properties, unless it preserves unknown fields. x-kubernetes-* keys are dropped."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {k: strict_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    preserves = node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and not preserves:
        schema["additionalProperties"] = False
    return schema


def validator(crd_path: Path, version: str) -> jsonschema.Draft7Validator:
    """A strict validator for the CRD's schema of `version` (e.g. v1alpha1)."""
    crd = yaml.safe_load(crd_path.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = strict_schema(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, manifest: dict) -> list[str]:
    """One line per violation: the path in the manifest and the message."""
    found = validator.iter_errors(manifest)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]

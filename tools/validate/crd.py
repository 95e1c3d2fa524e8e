"""Custom resources validated offline against the OpenAPI v3 schema their CRD ships, strictly.

kubernetes-validate knows only Kubernetes' own kinds. The custom resources the components render
(Argo Rollouts' Rollout and AnalysisTemplate, Kyverno's ImageValidatingPolicy, Gateway API's
HTTPRoute and Gateway, the AWS Load Balancer Controller's LoadBalancerConfiguration and
TargetGroupConfiguration) are validated instead against unmodified copies of their CRDs in
tools/validate/crds/ (each directory's README names the source, release and commit). CEL rules
(x-kubernetes-validations) are not evaluated: the API server does that.

`kubectl apply` (strict field validation) rejects fields a CRD's schema does not declare; a
plain JSON Schema validator would let them through. `strict_schema` closes every object that
lists its properties, unless the schema preserves unknown fields there.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from tools.kustomize import SAFE_LOADER

CRDS = Path(__file__).parent / "crds"
ARGO_ROLLOUTS = "Argo Rollouts v1.9.1"
KYVERNO = "Kyverno v1.19.0"
GATEWAY_API = "Gateway API v1.6.1"
AWS_LOAD_BALANCER_CONTROLLER = "AWS Load Balancer Controller v3.5.0"


@dataclass(frozen=True)
class Crd:
    release: str  # whose CRD, e.g. "Argo Rollouts v1.9.1", for messages
    path: Path


# (API group, kind) -> the CRD that defines it.
KNOWN = {
    ("argoproj.io", "Rollout"): Crd(ARGO_ROLLOUTS, CRDS / "argo-rollouts" / "rollout-crd.yaml"),
    ("argoproj.io", "AnalysisTemplate"): Crd(
        ARGO_ROLLOUTS, CRDS / "argo-rollouts" / "analysis-template-crd.yaml"
    ),
    ("argoproj.io", "ClusterAnalysisTemplate"): Crd(
        ARGO_ROLLOUTS, CRDS / "argo-rollouts" / "cluster-analysis-template-crd.yaml"
    ),
    ("argoproj.io", "AnalysisRun"): Crd(
        ARGO_ROLLOUTS, CRDS / "argo-rollouts" / "analysis-run-crd.yaml"
    ),
    ("policies.kyverno.io", "ImageValidatingPolicy"): Crd(
        KYVERNO, CRDS / "kyverno" / "imagevalidatingpolicies-crd.yaml"
    ),
    ("gateway.networking.k8s.io", "GatewayClass"): Crd(
        GATEWAY_API, CRDS / "gateway-api" / "gatewayclasses-crd.yaml"
    ),
    ("gateway.networking.k8s.io", "Gateway"): Crd(
        GATEWAY_API, CRDS / "gateway-api" / "gateways-crd.yaml"
    ),
    ("gateway.networking.k8s.io", "HTTPRoute"): Crd(
        GATEWAY_API, CRDS / "gateway-api" / "httproutes-crd.yaml"
    ),
    ("gateway.k8s.aws", "LoadBalancerConfiguration"): Crd(
        AWS_LOAD_BALANCER_CONTROLLER,
        CRDS / "aws-load-balancer-controller" / "gateway.k8s.aws_loadbalancerconfigurations.yaml",
    ),
    ("gateway.k8s.aws", "TargetGroupConfiguration"): Crd(
        AWS_LOAD_BALANCER_CONTROLLER,
        CRDS / "aws-load-balancer-controller" / "gateway.k8s.aws_targetgroupconfigurations.yaml",
    ),
}


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


@cache
def load_crd(crd_path: Path) -> dict:
    return yaml.load(Path(crd_path).read_text(), Loader=SAFE_LOADER)


def served_versions(crd_path: Path) -> list[str]:
    return [v["name"] for v in load_crd(crd_path)["spec"]["versions"] if v.get("served")]


@cache
def validator(crd_path: Path, version: str) -> jsonschema.Draft7Validator:
    """A strict validator for the CRD's schema of `version` (e.g. v1alpha1)."""
    (served,) = [v for v in load_crd(crd_path)["spec"]["versions"] if v["name"] == version]
    schema = strict_schema(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, manifest: dict) -> list[str]:
    """One line per violation: the path in the manifest (a/b/0) and the message."""
    found = validator.iter_errors(manifest)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def group_version(resource: dict) -> tuple[str, str]:
    group, _, version = str(resource.get("apiVersion", "")).rpartition("/")
    return group, version


def crd_of(resource: dict) -> Crd | None:
    """The CRD that defines this resource's kind, if it is one of KNOWN."""
    return KNOWN.get((group_version(resource)[0], resource.get("kind")))


def is_cluster_scoped(resource: dict) -> bool | None:
    """Whether the resource's CRD says Cluster scope (None: not a known custom resource)."""
    crd = crd_of(resource)
    return None if crd is None else load_crd(crd.path)["spec"]["scope"] == "Cluster"


def validate(resource: dict) -> list[tuple[str, str]]:
    """(field, message) for every way a known custom resource breaks its CRD: the schema of its
    version, strictly, and its scope (a cluster-scoped kind takes no namespace)."""
    crd = crd_of(resource)
    if crd is None:
        raise ValueError(f"{resource.get('apiVersion')} {resource.get('kind')}: no CRD known")
    _, version = group_version(resource)
    served = served_versions(crd.path)
    if version not in served:
        return [
            (
                "apiVersion",
                f"{resource.get('apiVersion')} is not served by the CRD of {crd.release}"
                f" (served: {', '.join(served)})",
            )
        ]
    problems = [
        (
            ".".join(map(str, error.absolute_path)) or "(document)",
            f"invalid for {crd.release}: {error.message}",
        )
        for error in validator(crd.path, version).iter_errors(resource)
    ]
    namespace = resource.get("metadata", {}).get("namespace")
    if is_cluster_scoped(resource) and namespace:
        problems.append(
            (
                "metadata.namespace",
                f"is {namespace!r}, must not be set: {resource['kind']} is cluster-scoped in"
                f" the CRD of {crd.release}",
            )
        )
    return problems

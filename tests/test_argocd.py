"""argocd/: valid against Argo CD's own CRD schemas, consistent with what the overlays render."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from tools.kustomize import find, render
from tools.repo import ROOT

CRDS = ROOT / "tests" / "data" / "argocd"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


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


def validator(crd_file: str) -> jsonschema.Draft7Validator:
    crd = load(CRDS / crd_file)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


VALIDATORS = {
    "Application": validator("application-crd.yaml"),
    "AppProject": validator("appproject-crd.yaml"),
}
APPLICATION = load(ROOT / "argocd" / "application.yaml")
PROJECT = load(ROOT / "argocd" / "project.yaml")


def errors(manifest: dict) -> list[str]:
    found = VALIDATORS[manifest["kind"]].iter_errors(manifest)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def test_argocd_holds_exactly_the_project_and_the_application():
    kinds = sorted(load(path)["kind"] for path in (ROOT / "argocd").iterdir())
    assert kinds == ["AppProject", "Application"]


@pytest.mark.parametrize("manifest", [APPLICATION, PROJECT], ids=["Application", "AppProject"])
def test_manifest_matches_the_crd_schema(manifest):
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1"
    assert manifest["metadata"]["namespace"] == "argocd"
    assert errors(manifest) == []


@pytest.mark.parametrize(
    "path, value",
    [
        (("spec", "syncPolicy", "automated", "prun"), True),
        (("spec", "source", "targetRevison"), "main"),
        (("spec", "syncPolicy", "retry", "limit"), "five"),
        (("spec", "ignoreDifferences", 0, "jsonPointer"), ["/spec/replicas"]),
    ],
    ids=["unknown field", "misspelt field", "wrong type", "unknown field in a list item"],
)
def test_the_schema_check_catches_mistakes(path, value):
    broken = copy.deepcopy(APPLICATION)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert errors(broken)


RENDERED = render(ROOT / APPLICATION["spec"]["source"]["path"])


def test_application_tracks_an_overlay_on_main_that_renders():
    source = APPLICATION["spec"]["source"]
    assert source["targetRevision"] == "main"
    assert source["path"] == "overlays/v2"
    assert find(RENDERED, "Deployment")


def test_application_and_project_agree():
    spec = APPLICATION["spec"]
    assert spec["project"] == PROJECT["metadata"]["name"]
    assert PROJECT["spec"]["sourceRepos"] == [spec["source"]["repoURL"]]
    assert PROJECT["spec"]["destinations"] == [spec["destination"]]


def test_destination_is_the_namespace_the_overlay_renders():
    namespaces = {r["metadata"].get("namespace") for r in RENDERED}
    assert namespaces == {APPLICATION["spec"]["destination"]["namespace"]}


@pytest.mark.parametrize("overlay", ["overlays/v1", "overlays/v2"])
def test_project_allows_exactly_the_kinds_the_overlays_render(overlay):
    rendered = {(r["apiVersion"].rpartition("/")[0], r["kind"]) for r in render(ROOT / overlay)}
    allowed = {(e["group"], e["kind"]) for e in PROJECT["spec"]["namespaceResourceWhitelist"]}
    assert rendered == allowed


def test_project_allows_only_its_own_namespace_cluster_wide():
    namespace = APPLICATION["spec"]["destination"]["namespace"]
    assert PROJECT["spec"]["clusterResourceWhitelist"] == [
        {"group": "", "kind": "Namespace", "name": namespace}
    ]
    assert "CreateNamespace=true" in APPLICATION["spec"]["syncPolicy"]["syncOptions"]


def test_sync_is_automated_with_retry():
    policy = APPLICATION["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert policy["retry"]["limit"] > 0
    assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}


def test_sync_leaves_the_replica_count_to_the_hpa():
    (deployment,) = find(RENDERED, "Deployment")
    (hpa,) = find(RENDERED, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert APPLICATION["spec"]["ignoreDifferences"] == [
        {
            "group": "apps",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
            "jsonPointers": ["/spec/replicas"],
        }
    ]
    assert "RespectIgnoreDifferences=true" in APPLICATION["spec"]["syncPolicy"]["syncOptions"]

"""argocd/: valid against the CRD schemas of the oldest and the newest supported Argo CD (3.3.0
and 3.5.1, docs/argocd.md), consistent with what the overlays render."""

import copy
import fnmatch
from pathlib import Path

import pytest
import yaml

from tools.kustomize import find, render
from tools.repo import ROOT
from tools.validate import crd

# The supported range, oldest first: one directory of CRDs per end (tests/data/*/README.md).
DATA = ROOT / "tests" / "data"
SUPPORTED = {"3.3.0": DATA / "argocd-v3.3.0", "3.5.1": DATA / "argocd"}
OLDEST, NEWEST = SUPPORTED


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


CRD_FILES = {"Application": "application-crd.yaml", "AppProject": "appproject-crd.yaml"}


def validator(release: str, kind: str):
    """The strict validator of `kind` in Argo CD `release`, built on first use (crd.validator
    keeps it): collecting the tests on every worker does not build them all."""
    return crd.validator(SUPPORTED[release] / CRD_FILES[kind], "v1alpha1")


APPLICATION = load(ROOT / "argocd" / "application.yaml")
PROJECT = load(ROOT / "argocd" / "project.yaml")


def errors(manifest: dict, release: str) -> list[str]:
    return crd.errors(validator(release, manifest["kind"]), manifest)


def test_argocd_holds_exactly_the_project_and_the_application():
    kinds = sorted(load(path)["kind"] for path in (ROOT / "argocd").iterdir())
    assert kinds == ["AppProject", "Application"]


@pytest.mark.parametrize("release", SUPPORTED)
@pytest.mark.parametrize("manifest", [APPLICATION, PROJECT], ids=["Application", "AppProject"])
def test_manifest_matches_the_crd_schema_of_every_supported_release(manifest, release):
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1"
    assert manifest["metadata"]["namespace"] == "argocd"
    assert errors(manifest, release) == []


@pytest.mark.parametrize("release", SUPPORTED)
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
def test_the_schema_check_catches_mistakes(path, value, release):
    broken = copy.deepcopy(APPLICATION)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert errors(broken, release)


def test_the_oldest_release_rejects_a_field_only_the_newest_knows():
    # AppProject spec.sourceIntegrity is new in 3.4: valid for 3.5.1, unknown to 3.3.0. So the
    # check against the oldest schema is what keeps argocd/ inside the whole range.
    project = copy.deepcopy(PROJECT)
    project["spec"]["sourceIntegrity"] = {"git": {"policies": []}}
    assert errors(project, NEWEST) == []
    assert any("sourceIntegrity" in line for line in errors(project, OLDEST))


def test_a_cluster_resource_restricted_by_name_needs_3_3_or_newer():
    # The project limits each cluster-scoped kind it allows to one name. That field exists
    # from 3.3.0 on (older Argo CD does not know it), so at both ends of the range, with the same
    # meaning: a glob on the resource name, all names when empty.
    for entry in PROJECT["spec"]["clusterResourceWhitelist"]:
        assert "name" in entry
    for release in SUPPORTED:
        spec = validator(release, "AppProject").schema["properties"]["spec"]
        name = spec["properties"]["clusterResourceWhitelist"]["items"]["properties"]["name"]
        assert name["type"] == "string"
        assert "Glob patterns" in name["description"]
        assert "if no name is specified, all resources" in name["description"]


RENDERED = render(ROOT / APPLICATION["spec"]["source"]["path"])
# Each overlay with each opt-in component of components/ switched on, by component.


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


def namespaced(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r["metadata"].get("namespace")]


def group_kind(resource: dict) -> tuple[str, str]:
    return resource["apiVersion"].rpartition("/")[0], resource["kind"]


def project_problems(project: dict, resources: list[dict]) -> list[str]:
    """What the project would refuse to sync, or allows beyond what is rendered.

    As Argo CD decides it (IsGroupKindNamePermitted): a namespaced resource needs its group and
    kind in namespaceResourceWhitelist; a cluster-scoped one an entry of
    clusterResourceWhitelist with its group and kind and, if the entry names one, a name glob
    that matches. Beyond Argo CD: every namespaced entry must be rendered, and every
    cluster-scoped entry but the namespace must name a rendered resource exactly.
    """
    spec = project["spec"]
    problems = []
    allowed = {(e["group"], e["kind"]) for e in spec.get("namespaceResourceWhitelist", [])}
    rendered = {group_kind(r) for r in namespaced(resources)}
    problems += [f"{kind} is rendered but not allowed" for kind in sorted(rendered - allowed)]
    problems += [f"{kind} is allowed but not rendered" for kind in sorted(allowed - rendered)]
    cluster = spec.get("clusterResourceWhitelist", [])
    for resource in (r for r in resources if not r["metadata"].get("namespace")):
        if not any(
            (entry["group"], entry["kind"]) == group_kind(resource)
            and fnmatch.fnmatchcase(resource["metadata"]["name"], entry.get("name") or "*")
            for entry in cluster
        ):
            problems.append(f"cluster-scoped {resource['kind']} is not allowed")
    for entry in cluster:
        if entry["kind"] == "Namespace":
            continue
        if not entry.get("name") or not any(
            (entry["group"], entry["kind"]) == group_kind(r)
            and entry["name"] == r["metadata"]["name"]
            for r in resources
        ):
            problems.append(f"cluster-wide {entry['kind']} {entry.get('name')!r}: not rendered")
    return problems


def test_destination_is_the_namespace_the_overlay_renders():
    namespaces = {r["metadata"]["namespace"] for r in namespaced(RENDERED)}
    assert namespaces == {APPLICATION["spec"]["destination"]["namespace"]}


def union(overlay: str, variants: dict) -> list[dict]:
    """What the overlay renders alone and with each opt-in component switched on."""
    renders = [v for vs in variants.values() for v in vs if v.name.startswith(overlay + "+")]
    return render(ROOT / overlay) + [r for v in renders for r in v.resources]


@pytest.mark.parametrize("overlay", ["overlays/v1", "overlays/v2"])
def test_project_allows_exactly_the_kinds_the_overlays_render(overlay, rendered_variants):
    # With any one component switched on (the one line in the overlay), Argo CD may sync all of
    # it without a change to the project; and the project allows nothing that no render has.
    assert project_problems(PROJECT, union(overlay, rendered_variants)) == []
    for variants in rendered_variants.values():
        (variant,) = [v for v in variants if v.name.startswith(overlay + "+")]
        assert [p for p in project_problems(PROJECT, variant.resources) if "not allowed" in p] == []


@pytest.mark.parametrize(
    "group, kind",
    [
        ("argoproj.io", "Rollout"),
        ("argoproj.io", "AnalysisTemplate"),
        ("", "ConfigMap"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("gateway.k8s.aws", "LoadBalancerConfiguration"),
        ("gateway.k8s.aws", "TargetGroupConfiguration"),
    ],
)
def test_a_component_needs_its_kinds_in_the_project(group, kind, rendered_variants):
    narrow = copy.deepcopy(PROJECT)
    entries = narrow["spec"]["namespaceResourceWhitelist"]
    entries.remove({"group": group, "kind": kind})
    assert project_problems(narrow, union("overlays/v2", rendered_variants)) == [
        f"{(group, kind)} is rendered but not allowed"
    ]


def test_the_project_check_catches_a_missing_or_a_spare_kind(rendered_variants):
    missing = copy.deepcopy(PROJECT)
    missing["spec"]["namespaceResourceWhitelist"].pop()
    spare = copy.deepcopy(PROJECT)
    spare["spec"]["namespaceResourceWhitelist"].append({"group": "", "kind": "Secret"})
    wide = copy.deepcopy(PROJECT)
    wide["spec"]["clusterResourceWhitelist"].append({"group": "*", "kind": "*"})
    for broken in (missing, spare, wide):
        assert project_problems(broken, RENDERED)
        assert project_problems(broken, union("overlays/v2", rendered_variants))


def test_project_allows_only_its_own_namespace_cluster_wide(rendered_variants):
    namespace = APPLICATION["spec"]["destination"]["namespace"]
    entries = PROJECT["spec"]["clusterResourceWhitelist"]
    assert [e for e in entries if e["kind"] == "Namespace"] == [
        {"group": "", "kind": "Namespace", "name": namespace}
    ]
    # Anything else cluster-wide names one rendered resource (project_problems checks it): the
    # policy of components/verify-signatures (docs/release.md), and nothing else.
    assert all(e.get("name") for e in entries)
    (policy,) = find(union("overlays/v2", rendered_variants), "ImageValidatingPolicy")
    assert [e for e in entries if e["kind"] != "Namespace"] == [
        {"group": "policies.kyverno.io", "kind": policy["kind"], "name": policy["metadata"]["name"]}
    ]
    assert "CreateNamespace=true" in APPLICATION["spec"]["syncPolicy"]["syncOptions"]


def test_sync_is_automated_with_retry():
    policy = APPLICATION["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert policy["retry"]["limit"] > 0
    assert set(policy["retry"]["backoff"]) == {"duration", "factor", "maxDuration"}


def test_sync_leaves_the_replica_count_to_the_hpa(rendered_variants):
    (deployment,) = find(RENDERED, "Deployment")
    (hpa,) = find(RENDERED, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    # With a rollout component the HPA scales the Rollout, and Argo Rollouts the Deployment.
    rollouts = {
        r["metadata"]["name"]
        for variants in rendered_variants.values()
        for variant in variants
        for r in find(variant.resources, "Rollout")
    }
    (rollout,) = rollouts
    for variants in rendered_variants.values():
        for variant in variants:
            if find(variant.resources, "Rollout"):
                (hpa,) = find(variant.resources, "HorizontalPodAutoscaler")
                assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
                assert hpa["spec"]["scaleTargetRef"]["name"] == rollout
    assert APPLICATION["spec"]["ignoreDifferences"] == [
        {
            "group": "apps",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
            "jsonPointers": ["/spec/replicas"],
        },
        {
            "group": "argoproj.io",
            "kind": "Rollout",
            "name": rollout,
            "jsonPointers": ["/spec/replicas"],
        },
    ]
    assert "RespectIgnoreDifferences=true" in APPLICATION["spec"]["syncPolicy"]["syncOptions"]

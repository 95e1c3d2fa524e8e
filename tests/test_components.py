"""components/: opt-in kustomize Components.

verify-signatures holds a Kyverno ImageValidatingPolicy that admits this app's pods only when
their image digest carries a keyless cosign signature from this repository's release workflow
on main. Checked here, offline: the policy against Kyverno v1.19.0's CRD schema (strictly, as
`kubectl apply` does), the overlays unchanged without it, the one documented line that enables
it, and that what it matches and trusts is this app's repository and this repository's release
workflow. Kyverno actually verifying a signature is proven only on a cluster (docs/testing.md).
"""

import copy
import fnmatch
import re
import shutil
from urllib.parse import urlparse

import pytest
import yaml

from tests.test_argocd import PROJECT, project_problems
from tools.kustomize import find, render
from tools.repo import ROOT
from tools.validate import crd

COMPONENT = ROOT / "components" / "verify-signatures"
POLICY = yaml.safe_load((COMPONENT / "imagevalidatingpolicy.yaml").read_text())
KYVERNO_CRD = crd.CRDS / "kyverno" / "imagevalidatingpolicies-crd.yaml"
SCHEMA = crd.validator(KYVERNO_CRD, POLICY["apiVersion"].rpartition("/")[2])
# The line docs/release.md gives for an overlay's kustomization.yaml.
ENABLE = "components: [../../components/verify-signatures]"
DOC = ROOT / "docs" / "release.md"

IMAGE_NAME = "zero-downtime-app"
OVERLAYS = ("overlays/v1", "overlays/v2")
APPLICATION = yaml.safe_load((ROOT / "argocd" / "application.yaml").read_text())
RELEASE = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def overlay_entry(overlay: str) -> dict:
    kustomization = yaml.safe_load((ROOT / overlay / "kustomization.yaml").read_text())
    (entry,) = [e for e in kustomization["images"] if e["name"] == IMAGE_NAME]
    return entry


def release_identity(repo_url: str) -> str:
    """The certificate identity (SAN URI) of a keyless signature made by release.yml on main."""
    owner_repo = urlparse(repo_url).path.strip("/").removesuffix(".git")
    return f"https://github.com/{owner_repo}/.github/workflows/release.yml@refs/heads/main"


def test_the_policy_matches_kyverno_crd_schema():
    assert POLICY["kind"] == "ImageValidatingPolicy"
    assert POLICY["apiVersion"] == "policies.kyverno.io/v1"
    assert crd.errors(SCHEMA, POLICY) == []


def set_field(path: tuple, value):
    def change(policy):
        node = policy
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return change


KEYLESS = ("spec", "attestors", 0, "cosign", "keyless")
MISTAKES = {
    "unknown field": set_field(("spec", "validationFailureAction"), "Enforce"),
    "misspelt identity field": set_field((*KEYLESS, "identities", 0, "subjectRegex"), ".*"),
    "action outside the enum": set_field(("spec", "validationActions"), ["Enforce"]),
    "attestor without a name": set_field(("spec", "attestors", 0, "name"), None),
    "no validations": set_field(("spec", "validations"), None),
    "image reference with glob and expression": set_field(
        ("spec", "matchImageReferences", 0, "expression"), "true"
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_the_schema_check_catches_mistakes(mistake):
    broken = copy.deepcopy(POLICY)
    mistake(broken)
    assert crd.errors(SCHEMA, broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_component_is_opt_in(overlay):
    kustomization = yaml.safe_load((ROOT / overlay / "kustomization.yaml").read_text())
    assert "components" not in kustomization
    assert find(render(ROOT / overlay), "ImageValidatingPolicy") == []


@pytest.fixture
def enabled(tmp_path) -> tuple[list[dict], list[dict]]:
    """overlays/v2 rendered without and with the documented line (on a copy of the tree)."""
    for part in ("base", "overlays", "components"):
        shutil.copytree(ROOT / part, tmp_path / part)
    overlay = tmp_path / "overlays" / "v2"
    without = render(overlay)
    with (overlay / "kustomization.yaml").open("a") as file:
        file.write(ENABLE + "\n")
    return without, render(overlay)


def test_the_documented_line_adds_the_policy_and_nothing_else(enabled):
    assert ENABLE in DOC.read_text()
    without, with_policy = enabled
    (policy,) = find(with_policy, "ImageValidatingPolicy")
    assert [r for r in with_policy if r["kind"] != "ImageValidatingPolicy"] == without
    # Cluster-scoped: kustomize must not give it the base's namespace.
    assert "namespace" not in policy["metadata"]
    assert crd.errors(SCHEMA, policy) == []


# The entry argocd/project.yaml has for the component, and docs/release.md shows.
PROJECT_ENTRY = {
    "group": "policies.kyverno.io",
    "kind": "ImageValidatingPolicy",
    "name": POLICY["metadata"]["name"],
}


def refusals(project: dict, resources: list[dict]) -> list[str]:
    """What Argo CD would refuse to sync (tests/test_argocd.py checks nothing spare is allowed)."""
    return [p for p in project_problems(project, resources) if p.endswith("not allowed")]


def test_the_project_entry_lets_argo_cd_sync_the_policy(enabled):
    doc = DOC.read_text()
    for key, value in PROJECT_ENTRY.items():
        assert f"{key}: {value}" in doc
    _, with_policy = enabled
    # The project has the entry, so switching the component on needs no change there...
    assert PROJECT_ENTRY in PROJECT["spec"]["clusterResourceWhitelist"]
    assert refusals(PROJECT, with_policy) == []
    # ...without it the project refuses the cluster-scoped policy.
    project = copy.deepcopy(PROJECT)
    project["spec"]["clusterResourceWhitelist"].remove(PROJECT_ENTRY)
    assert refusals(project, with_policy) == ["cluster-scoped ImageValidatingPolicy is not allowed"]


def matches(policy: dict, image: str) -> bool:
    globs = [ref["glob"] for ref in policy["spec"]["matchImageReferences"]]
    return any(fnmatch.fnmatchcase(image, glob) for glob in globs)


def test_the_policy_matches_the_image_the_overlay_renders(enabled):
    _, with_policy = enabled
    (policy,) = find(with_policy, "ImageValidatingPolicy")
    (deployment,) = find(with_policy, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert matches(policy, container["image"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_policy_covers_exactly_the_overlays_repository(overlay):
    repository = overlay_entry(overlay)["newName"]
    digest = "sha256:" + "0" * 64
    for image in (repository, f"{repository}:v9", f"{repository}@{digest}"):
        assert matches(POLICY, f"{image}"), image
    assert matches(POLICY, f"{repository}:{'a' * 40}@{digest}")
    # Not a sibling repository, not another registry alias.
    for other in (f"{repository}-other:v1", repository.replace("/", "/x", 1) + ":v1"):
        assert not matches(POLICY, other), other


def identity_problems(policy: dict, repo_url: str) -> list[str]:
    """Why `policy` would trust anything but release.yml of `repo_url` on main (empty: nothing)."""
    problems = []
    spec = policy["spec"]
    attestors = {a["name"]: a for a in spec["attestors"]}
    for name, attestor in attestors.items():
        identities = attestor.get("cosign", {}).get("keyless", {}).get("identities", [])
        if not identities:
            problems.append(f"attestor {name}: not a keyless cosign attestor")
        for identity in identities:
            if set(identity) != {"issuer", "subject"}:
                problems.append(f"attestor {name}: matches by {sorted(identity)}, not exactly")
            if identity.get("issuer") != GITHUB_ISSUER:
                problems.append(f"attestor {name}: issuer {identity.get('issuer')}")
            if identity.get("subject") != release_identity(repo_url):
                problems.append(f"attestor {name}: subject {identity.get('subject')}")
    for validation in spec["validations"]:
        used = set(re.findall(r"attestors\.(\w+)", validation["expression"]))
        if not used or not used <= set(attestors):
            problems.append(f"validation uses attestors {sorted(used)}")
        if "verifyImageSignatures(" not in validation["expression"]:
            problems.append("validation does not verify image signatures")
    if spec.get("validationActions") != ["Deny"]:
        problems.append(f"validationActions {spec.get('validationActions')}")
    configuration = spec.get("validationConfigurations", {})
    if not configuration.get("required", True) or not configuration.get("verifyDigest", True):
        problems.append("unsigned or undigested images may pass")
    return problems


def test_the_policy_trusts_only_this_repositorys_release_workflow_on_main():
    repo_url = APPLICATION["spec"]["source"]["repoURL"]
    assert identity_problems(POLICY, repo_url) == []
    # The identity names a workflow that exists, releases from main and nothing else.
    assert (ROOT / ".github" / "workflows" / "release.yml").is_file()
    assert RELEASE[True]["push"]["branches"] == ["main"]
    assert RELEASE["jobs"]["tag-commit"]["if"] == "github.ref == 'refs/heads/main'"


BROKEN_IDENTITIES = {
    "another branch": set_field(
        (*KEYLESS, "identities", 0, "subject"),
        release_identity("https://github.com/example-org/zero-downtime-gitops.git").replace(
            "refs/heads/main", "refs/heads/dev"
        ),
    ),
    "another repository": set_field(
        (*KEYLESS, "identities", 0, "subject"),
        release_identity("https://github.com/someone-else/zero-downtime-gitops.git"),
    ),
    "any workflow": set_field(
        (*KEYLESS, "identities", 0),
        {"issuer": GITHUB_ISSUER, "subjectRegExp": "https://github.com/.*"},
    ),
    "another issuer": set_field(
        (*KEYLESS, "identities", 0, "issuer"), "https://accounts.google.com"
    ),
    "audit only": set_field(("spec", "validationActions"), ["Audit"]),
    "signature not required": set_field(("spec", "validationConfigurations", "required"), False),
    "unknown attestor": set_field(
        ("spec", "validations", 0, "expression"),
        "images.containers.map(i, verifyImageSignatures(i, [attestors.other])).all(e, e > 0)",
    ),
}


@pytest.mark.parametrize("mistake", BROKEN_IDENTITIES.values(), ids=BROKEN_IDENTITIES.keys())
def test_the_identity_check_catches_a_wider_trust(mistake):
    broken = copy.deepcopy(POLICY)
    mistake(broken)
    assert identity_problems(broken, APPLICATION["spec"]["source"]["repoURL"])


def test_the_policy_covers_the_apps_namespace_pods_and_deployments():
    constraints = POLICY["spec"]["matchConstraints"]
    namespace = APPLICATION["spec"]["destination"]["namespace"]
    assert constraints["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": namespace
    }
    (rule,) = constraints["resourceRules"]
    assert rule["resources"] == ["pods"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert POLICY["spec"]["autogen"]["podControllers"]["controllers"] == ["deployments"]
    assert POLICY["spec"]["failurePolicy"] == "Fail"


def test_the_documented_verify_command_checks_the_same_identity():
    doc = DOC.read_text()
    identity = release_identity(APPLICATION["spec"]["source"]["repoURL"])
    assert f"--certificate-identity {identity}" in doc
    assert f"--certificate-oidc-issuer {GITHUB_ISSUER}" in doc


def test_placeholders_are_the_ones_make_it_yours_replaces():
    readme = (ROOT / "README.md").read_text()
    text = (COMPONENT / "imagevalidatingpolicy.yaml").read_text()
    for placeholder in (
        overlay_entry("overlays/v2")["newName"],
        "example-org/zero-downtime-gitops",
    ):
        assert placeholder in text
        assert placeholder in readme
    assert "components/verify-signatures/imagevalidatingpolicy.yaml" in readme

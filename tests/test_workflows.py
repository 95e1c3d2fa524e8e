"""GitHub Actions workflows and Dependabot: linted, schema-checked, pinned, least privilege,
and consistent with the overlays and the Argo CD Application they drive."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.repo import ROOT

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOW_DIR.glob("*.yml"))
BIN = Path(sys.executable).parent
# owner/name[/path]@<40-hex commit> # vX.Y.Z
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$"
)


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


WORKFLOWS = {path.stem: load(path) for path in WORKFLOW_FILES}


def jobs():
    for name, workflow in WORKFLOWS.items():
        for job_id, job in workflow["jobs"].items():
            yield f"{name}.{job_id}", job


def steps(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").startswith(action + "@")]


def tool(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_three_workflows_exist():
    assert sorted(WORKFLOWS) == ["ci", "e2e", "release"]


def test_zizmor_finds_nothing():
    result = tool("zizmor", "--offline", "--format=plain", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_schema(path):
    result = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_schema_and_ecosystems():
    path = ROOT / ".github" / "dependabot.yml"
    result = tool("check-jsonschema", "--builtin-schema", "vendor.dependabot", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    ecosystems = {u["package-ecosystem"] for u in yaml.safe_load(path.read_text())["updates"]}
    assert ecosystems == {"github-actions", "pip"}


def test_every_action_is_pinned_to_a_commit_with_its_version():
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOW_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"^\s*(?:-\s+)?uses:", line):
                match = PINNED_USES.match(line)
                assert match, f"{path.name}:{number}: not pinned as owner/name@<sha> # vX.Y.Z"
                pins.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    assert pins
    # One version of each action across all workflows.
    assert {action: len(versions) for action, versions in pins.items() if len(versions) > 1} == {}


def test_permissions_are_explicit_and_least_privilege():
    for name, workflow in WORKFLOWS.items():
        assert workflow["permissions"] == {}, f"{name}: top-level permissions must be {{}}"
    writers = {}
    for job_name, job in jobs():
        assert "permissions" in job, f"{job_name}: no explicit permissions"
        writes = {scope for scope, access in job["permissions"].items() if access == "write"}
        if writes:
            writers[job_name] = writes
    assert writers == {"release.image": {"id-token"}, "release.tag-commit": {"contents"}}


def test_no_pull_request_target():
    for name, workflow in WORKFLOWS.items():
        assert "pull_request_target" not in workflow["on"], name


def test_checkout_keeps_no_credentials_except_where_the_job_pushes():
    for job_name, job in jobs():
        pushes = job["permissions"].get("contents") == "write"
        for step in steps(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is pushes, job_name


def test_ci_runs_the_readme_test_command_and_the_linters():
    ci_runs = [s.get("run", "") for job in WORKFLOWS["ci"]["jobs"].values() for s in job["steps"]]
    assert "make test" in ci_runs
    linters = ("hadolint Dockerfile", "zizmor", "vendor.github-workflows", "vendor.dependabot")
    for command in linters:
        assert any(command in run for run in ci_runs), command
    assert set(WORKFLOWS["ci"]["on"]) == {"pull_request", "push"}
    # The container tests run on the runner's Docker instead of being skipped.
    assert WORKFLOWS["ci"]["jobs"]["test"]["env"]["REQUIRE_CONTAINER_ENGINE"] == "1"


# The release workflow: ECR Public through OIDC, then the tag commit on the tracked overlay.

RELEASE = WORKFLOWS["release"]
IMAGE_JOB = RELEASE["jobs"]["image"]
TAG_JOB = RELEASE["jobs"]["tag-commit"]


def test_release_runs_one_at_a_time_without_cancelling():
    assert RELEASE["concurrency"] == {"group": "release", "cancel-in-progress": False}
    assert set(RELEASE["on"]) == {"push", "workflow_dispatch"}
    assert RELEASE["on"]["push"]["branches"] == ["main"]


def test_release_logs_in_to_ecr_public_with_oidc():
    (aws,) = steps(IMAGE_JOB, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_RELEASE_ROLE_ARN }}"
    assert aws["with"]["aws-region"] == "us-east-1"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
    (login,) = steps(IMAGE_JOB, "aws-actions/amazon-ecr-login")
    assert login["with"]["registry-type"] == "public"


def test_release_build_pushes_with_cache_provenance_and_sbom():
    (build,) = steps(IMAGE_JOB, "docker/build-push-action")
    options = build["with"]
    assert options["push"] is True
    assert "APP_VERSION=" in options["build-args"]
    assert options["cache-from"] and options["cache-to"]
    assert options["provenance"] == "mode=max"
    assert options["sbom"] is True
    (meta,) = steps(IMAGE_JOB, "docker/metadata-action")
    assert "type=sha,format=long,prefix=" in meta["with"]["tags"]
    assert "type=semver" in meta["with"]["tags"]


def test_release_bumps_the_overlay_argo_cd_tracks():
    application = yaml.safe_load((ROOT / "argocd" / "application.yaml").read_text())
    assert RELEASE["env"]["OVERLAY"] == application["spec"]["source"]["path"]
    overlay = yaml.safe_load((ROOT / RELEASE["env"]["OVERLAY"] / "kustomization.yaml").read_text())
    assert RELEASE["env"]["IMAGE_NAME"] in [image["name"] for image in overlay["images"]]


def test_release_pushes_to_the_repository_the_overlay_names():
    runs = " ".join(s.get("run", "") for s in IMAGE_JOB["steps"])
    assert 'zdt show "$OVERLAY" --image "$IMAGE_NAME" --field newName' in runs
    (meta,) = steps(IMAGE_JOB, "docker/metadata-action")
    assert meta["with"]["images"] == "${{ steps.settings.outputs.repository }}"


def test_release_tag_commit_is_guarded_and_skips_ci():
    runs = " ".join(s.get("run", "") for s in TAG_JOB["steps"])
    assert "zdt bump" in runs
    assert "--no-downgrade" in runs
    assert "--digest" in runs
    assert "--new-name" not in runs  # the repository stays the one the overlay names
    assert "zdt push" in runs
    assert "[skip ci]" in runs
    (checkout,) = steps(TAG_JOB, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0
    assert TAG_JOB["needs"] == "image"
    assert TAG_JOB["if"] == "github.ref == 'refs/heads/main'"


def test_e2e_rolls_v1_to_v2_on_kind_with_the_repo_scripts():
    (job,) = WORKFLOWS["e2e"]["jobs"].values()
    (kind,) = steps(job, "helm/kind-action")
    assert kind["with"]["registry"] is True
    runs = " ".join(s.get("run", "") for s in job["steps"])
    assert "tools/e2e/run.sh overlays/v1 overlays/v2" in runs
    for version in ("v1", "v2"):
        overlay = yaml.safe_load((ROOT / "overlays" / version / "kustomization.yaml").read_text())
        assert WORKFLOWS["e2e"]["env"]["IMAGE_NAME"] in [i["name"] for i in overlay["images"]]
    assert (ROOT / "tools" / "e2e" / "run.sh").stat().st_mode & 0o111
    loadgen = yaml.safe_load((ROOT / "tools" / "e2e" / "kustomization.yaml").read_text())
    (runtime,) = loadgen["images"]
    assert f"zdt bump tools/e2e --image {runtime['name']}" in runs

"""GitHub Actions workflows and Dependabot: linted, schema-checked, pinned, least privilege,
and consistent with the overlays and the Argo CD Application they drive.

The release workflow's promises (queued runs, one build per commit, installs before credentials,
the write token in the push step only, a signed digest) are checks that return what is wrong,
each fed a broken copy of the workflow too, so every check is seen to fail.
"""

import base64
import copy
import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import gitrepo
from tests.test_argocd import NEWEST as ARGOCD_NEWEST
from tools.repo import ROOT
from tools.validate import crd

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOW_DIR.glob("*.yml"))
BIN = Path(sys.executable).parent
# owner/name[/path]@<40-hex commit> # vX.Y.Z
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$"
)
LOCAL_USES = re.compile(r"^\s*uses:\s+\./\.github/workflows/[\w.-]+\.yml(\s+#.*)?$")


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
    # .github, as ci.yml runs it: the workflows and dependabot.yml (dependabot-cooldown).
    result = tool("zizmor", "--offline", "--format=plain", ".github")
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
    updates = yaml.safe_load(path.read_text())["updates"]
    assert {u["package-ecosystem"] for u in updates} == {"github-actions", "pip", "docker"}
    for update in updates:
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] == "weekly"
    assert cooldown_problems(updates) == []


# zizmor's dependabot-cooldown audit flags less than 7 days (its default minimum).
MINIMUM_COOLDOWN_DAYS = 7


def cooldown_problems(updates: list[dict]) -> list[str]:
    """Update entries that would propose a version the day it is published (empty: none)."""
    problems = []
    for update in updates:
        days = (update.get("cooldown") or {}).get("default-days", 0)
        if days < MINIMUM_COOLDOWN_DAYS:
            problems.append(f"{update['package-ecosystem']}: cooldown default-days {days}")
    return problems


def test_the_cooldown_check_catches_an_entry_without_one():
    updates = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())["updates"]
    updates[1].pop("cooldown", None)
    updates[2]["cooldown"] = {"default-days": 3}
    assert cooldown_problems(updates) == [
        "pip: cooldown default-days 0",
        "docker: cooldown default-days 3",
    ]


def test_zizmor_audits_dependabot_through_github_dir(tmp_path):
    # The counterpart of test_zizmor_finds_nothing: the same command on a copy of .github whose
    # dependabot.yml has no cooldown reports it, so the empty report above covers that file.
    copy_dir = tmp_path / ".github"
    copy_dir.mkdir()
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    for update in config["updates"]:
        update.pop("cooldown", None)
    (copy_dir / "dependabot.yml").write_text(yaml.safe_dump(config))
    result = tool("zizmor", "--offline", "--format=plain", str(copy_dir))
    assert result.returncode != 0
    assert (result.stdout + result.stderr).count("dependabot-cooldown") >= 3


# Dependabot's docker parser: a FROM line naming an image literally (no ${ARG}).
DEPENDABOT_FROM = re.compile(
    r"^FROM\s+(?P<image>[a-z0-9.\-/]+(?::\w[\w.-]*)?(?:@sha256:[0-9a-f]{64})?)"
    r"(?:\s+AS\s+(?P<stage>[\w-]+))?\s*$",
    re.M,
)


def base_image_problems(dockerfile: str) -> list[str]:
    """Why Dependabot would not keep BASE_IMAGE's default current (empty: it does)."""
    defaults = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.M)
    if len(defaults) != 1:
        return [f"Dockerfile: {len(defaults)} ARG BASE_IMAGE= lines with a default"]
    literal = {m["image"]: m["stage"] for m in DEPENDABOT_FROM.finditer(dockerfile)}
    if defaults[0] not in literal:
        return [f"Dockerfile: no FROM line Dependabot can read names {defaults[0]}"]
    stage = literal[defaults[0]]
    if stage and re.search(rf"--from={stage}\b|FROM\s+{stage}\b", dockerfile):
        return [f"Dockerfile: stage {stage} is used; it must only be read by Dependabot"]
    return []


def test_dependabot_sees_the_dockerfiles_base_image():
    assert base_image_problems((ROOT / "Dockerfile").read_text()) == []


def test_the_base_image_check_catches_a_stale_copy():
    dockerfile = (ROOT / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.M)
    # Dependabot moved the FROM line (here to another tag), the ARG still says the old one.
    moved = dockerfile.replace(f"FROM {default} AS", f"FROM {default}-moved AS")
    assert base_image_problems(moved)
    # Only the ARG: Dependabot would see nothing.
    assert base_image_problems(
        re.sub(r"^FROM public\S+ AS base-image.*$", "", dockerfile, count=1, flags=re.M)
    )
    # Built from: the stage must stay unused (an extra pull, and a second place that matters).
    assert base_image_problems(
        dockerfile.replace("FROM ${BASE_IMAGE} AS build", "FROM base-image-for-dependabot AS build")
    )


def test_every_action_is_pinned_to_a_commit_with_its_version():
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in WORKFLOW_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            # A workflow of this repository (./) runs from the caller's own commit.
            if re.match(r"^\s*(?:-\s+)?uses:", line) and not LOCAL_USES.match(line):
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


def test_checkout_never_keeps_credentials():
    # Not even where the job pushes: the release's push step gets the token for itself.
    for job_name, job in jobs():
        for step in steps(job, "actions/checkout"):
            assert step["with"]["persist-credentials"] is False, job_name


def shellcheck(script: str) -> subprocess.CompletedProcess:
    """shellcheck a `run:` block as the runner runs it (bash), with ${{ }} as a plain word."""
    body = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", script, flags=re.S)
    return subprocess.run(
        [str(BIN / "shellcheck"), "--shell=bash", "-"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "where, script",
    [
        (f"{name}.{step.get('name', index)}", step["run"])
        for name, job in jobs()
        for index, step in enumerate(job.get("steps", []))
        if "run" in step
    ],
)
def test_every_run_block_passes_shellcheck(where, script):
    result = shellcheck(script)
    assert result.returncode == 0, f"{where}: {result.stdout}"


def test_shellcheck_catches_a_broken_run_block():
    assert shellcheck(
        "repository=$(zdt show)\ndocker push $repository:${{ github.sha }}\n"
    ).returncode


def zizmor_target_problems(ci: dict) -> list[str]:
    """Why CI's zizmor could miss part of .github (empty: it audits all of it)."""
    runs = [
        s["run"]
        for job in ci["jobs"].values()
        for s in job["steps"]
        if "zizmor" in s.get("run", "")
    ]
    if len(runs) != 1:
        return [f"{len(runs)} zizmor steps"]
    target = shlex.split(runs[0])[-1].rstrip("/")
    return [] if target == ".github" else [f"zizmor audits {target}, not .github"]


def test_ci_audits_all_of_github_with_zizmor():
    assert zizmor_target_problems(WORKFLOWS["ci"]) == []


def test_the_zizmor_target_check_catches_the_workflows_alone():
    broken = copy.deepcopy(WORKFLOWS["ci"])
    (step,) = [s for s in broken["jobs"]["lint"]["steps"] if "zizmor" in s.get("run", "")]
    step["run"] = ".venv/bin/zizmor --format=github .github/workflows"
    assert zizmor_target_problems(broken) == ["zizmor audits .github/workflows, not .github"]


def test_ci_runs_the_readme_test_command_and_the_linters():
    ci_runs = [s.get("run", "") for job in WORKFLOWS["ci"]["jobs"].values() for s in job["steps"]]
    assert "make test" in ci_runs
    linters = ("hadolint Dockerfile", "zizmor", "vendor.github-workflows", "vendor.dependabot")
    for command in linters:
        assert any(command in run for run in ci_runs), command
    assert set(WORKFLOWS["ci"]["on"]) == {"pull_request", "push", "workflow_call"}
    # The container tests run on the runner's Docker instead of being skipped.
    assert WORKFLOWS["ci"]["jobs"]["test"]["env"]["REQUIRE_CONTAINER_ENGINE"] == "1"


# The release workflow: ECR Public through OIDC, then the tag commit on the tracked overlay.

RELEASE = WORKFLOWS["release"]
SETTINGS_JOB = RELEASE["jobs"]["settings"]
IMAGE_JOB = RELEASE["jobs"]["image"]
TAG_JOB = RELEASE["jobs"]["tag-commit"]
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def step_named(job: dict, name: str) -> dict:
    (step,) = [s for s in job["steps"] if s.get("name") == name]
    return step


def index_of(job: dict, predicate) -> int | None:
    return next((i for i, step in enumerate(job.get("steps", [])) if predicate(step)), None)


def uses(action: str):
    return lambda step: step.get("uses", "").startswith(action + "@")


def running(text: str):
    return lambda step: text in step.get("run", "")


def concurrency_problems(workflow: dict) -> list[str]:
    """Why a release run could be dropped or cut short (empty: every run waits its turn)."""
    concurrency = workflow.get("concurrency") or {}
    problems = []
    if not concurrency.get("group"):
        problems.append("no concurrency group: releases may run at the same time")
    if concurrency.get("cancel-in-progress") is not False:
        problems.append("cancel-in-progress must be false: a release stopped half-way")
    if concurrency.get("queue") != "max":
        problems.append("queue must be max: by default a newer run cancels the pending one")
    for name, job in workflow["jobs"].items():
        if "concurrency" in job:
            problems.append(f"job {name}: its own concurrency group")
    return problems


def test_release_queues_every_run_one_at_a_time():
    assert concurrency_problems(RELEASE) == []
    assert RELEASE["concurrency"]["group"] == "release"
    assert set(RELEASE["on"]) == {"push", "workflow_dispatch"}
    assert RELEASE["on"]["push"]["branches"] == ["main"]
    assert RELEASE["on"]["push"]["tags"] == ["v*.*.*"]


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.pop("queue"),
        lambda c: c.update({"queue": "single"}),
        lambda c: c.update({"cancel-in-progress": True}),
    ],
    ids=["default queue", "queue single", "cancel in progress"],
)
def test_the_concurrency_check_catches_a_dropping_queue(change):
    broken = copy.deepcopy(RELEASE)
    change(broken["concurrency"])
    assert concurrency_problems(broken)


# Tests gate the release: nothing is built, pushed or committed for a commit whose tests failed.

CI = WORKFLOWS["ci"]
CI_CALL = "./.github/workflows/ci.yml"
# Status functions that let a job run although a job it needs failed or was skipped. Without
# one, GitHub skips every job that needs a failed job (workflow syntax, jobs.<job_id>.needs).
RUN_AFTER_FAILURE = ("always()", "failure()", "cancelled()")


def needed(workflow: dict, name: str) -> set[str]:
    """Every job `name` waits for, directly or through other jobs."""
    direct = workflow["jobs"][name].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needed(workflow, job) for job in direct))


def gate_problems(release: dict, ci: dict) -> list[str]:
    """Why the release could build or deploy a commit whose tests failed (empty: it cannot)."""
    problems = []
    if "workflow_call" not in ci["on"]:
        problems.append("ci.yml has no workflow_call: the release cannot run it")
    callers = [name for name, job in release["jobs"].items() if job.get("uses") == CI_CALL]
    if len(callers) != 1:
        return [*problems, f"{len(callers)} jobs call {CI_CALL}"]
    (tests,) = callers
    if "secrets" in release["jobs"][tests]:
        problems.append(f"{tests}: secrets passed to the tests")
    for name, job in release["jobs"].items():
        ships = steps(job, "docker/build-push-action") or any(
            map(running("zdt push"), job.get("steps", []))
        )
        if ships and tests not in needed(release, name):
            problems.append(f"{name} does not wait for {tests}")
        if tests in needed(release, name):
            condition = str(job.get("if", ""))
            if any(function in condition for function in RUN_AFTER_FAILURE):
                problems.append(f"{name} runs even when {tests} failed (if: {condition})")
    # The called jobs test the release's own commit: github.sha, checkout's default.
    for name, job in ci["jobs"].items():
        for step in steps(job, "actions/checkout"):
            if "ref" in step.get("with", {}):
                problems.append(f"ci.yml {name} checks out {step['with']['ref']}, not the commit")
    if not any(s.get("run") == "make test" for job in ci["jobs"].values() for s in job["steps"]):
        problems.append("ci.yml does not run make test")
    # A called workflow sees the caller's name in github.workflow: without it in the group, the
    # release's tests and ci.yml's own run on the same push share a group, and one cancels the
    # other (GitHub: reusable workflows reference, jobs.<job_id>.permissions, the note).
    concurrency = ci.get("concurrency", {})
    if concurrency.get("cancel-in-progress") and "github.workflow" not in concurrency["group"]:
        problems.append("ci.yml's own run and the release's call share a concurrency group")
    return problems


def test_the_release_builds_nothing_before_the_commits_tests_pass():
    assert gate_problems(RELEASE, CI) == []
    assert RELEASE["jobs"]["tests"] == {
        "name": "Tests of this commit (ci.yml)",
        "uses": CI_CALL,
        "permissions": {"contents": "read"},
    }
    assert "tests" in needed(RELEASE, "image")
    assert "tests" in needed(RELEASE, "tag-commit")


def _build_without_tests(release, ci):
    release["jobs"]["image"]["needs"] = "settings"


def _build_always(release, ci):
    release["jobs"]["image"]["if"] = "always()"


def _commit_unless_cancelled(release, ci):
    release["jobs"]["tag-commit"]["if"] = "${{ !cancelled() }}"


def _no_tests_job(release, ci):
    del release["jobs"]["tests"]
    release["jobs"]["image"]["needs"] = ["settings"]


def _ci_not_callable(release, ci):
    del ci["on"]["workflow_call"]


def _ci_tests_main(release, ci):
    (checkout,) = steps(ci["jobs"]["test"], "actions/checkout")
    checkout["with"]["ref"] = "main"


def _ci_shared_group(release, ci):
    ci["concurrency"]["group"] = "ci-${{ github.ref }}"


def _secrets_inherited(release, ci):
    release["jobs"]["tests"]["secrets"] = "inherit"


@pytest.mark.parametrize(
    "change",
    [
        _build_without_tests,
        _build_always,
        _commit_unless_cancelled,
        _no_tests_job,
        _ci_not_callable,
        _ci_tests_main,
        _ci_shared_group,
        _secrets_inherited,
    ],
    ids=[
        "build without the tests",
        "build always",
        "commit unless cancelled",
        "no tests job",
        "ci not callable",
        "ci tests main",
        "shared concurrency group",
        "secrets inherited",
    ],
)
def test_the_gate_check_catches_a_release_that_skips_its_tests(change):
    release, ci = copy.deepcopy(RELEASE), copy.deepcopy(CI)
    change(release, ci)
    assert gate_problems(release, ci)


def test_release_logs_in_to_ecr_public_with_oidc():
    (aws,) = steps(IMAGE_JOB, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_RELEASE_ROLE_ARN }}"
    assert aws["with"]["aws-region"] == "us-east-1"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws["with"])
    (login,) = steps(IMAGE_JOB, "aws-actions/amazon-ecr-login")
    assert login["with"]["registry-type"] == "public"


def test_release_build_pushes_with_provenance_and_sbom():
    (build,) = steps(IMAGE_JOB, "docker/build-push-action")
    options = build["with"]
    assert options["push"] is True
    # The image reports the commit it was built from: the tag the overlay records.
    assert "APP_VERSION=${{ github.sha }}" in options["build-args"]
    assert options["provenance"] == "mode=max"
    assert options["sbom"] is True
    assert attestation_problems(options) == []


def cache_problems(job: dict) -> list[str]:
    """Why the signed build could restore layers another workflow wrote (empty: it cannot).
    GitHub Actions caches are scoped per branch, not per workflow, so any job on main can write
    entries a type=gha cache-from would restore, whatever its scope= (CodeQL's
    actions/cache-poisoning queries); the build takes no cache at all."""
    problems = []
    for step in steps(job, "docker/build-push-action"):
        options = step.get("with", {})
        if options.get("cache-from"):
            problems.append(
                f"the signed build restores a cache: cache-from {options['cache-from']!r}"
            )
        if "type=gha" in str(options.get("cache-to", "")):
            problems.append(f"the signed build writes the Actions cache: {options['cache-to']!r}")
    return problems


def test_the_signed_build_restores_no_cache():
    assert cache_problems(IMAGE_JOB) == []


@pytest.mark.parametrize(
    "cache",
    [
        {"cache-from": "type=gha", "cache-to": "type=gha,mode=max"},
        {"cache-from": "type=gha,scope=release"},
        {"cache-to": "type=gha,mode=max"},
    ],
    ids=["gha cache", "gha cache with a scope", "writes only"],
)
def test_the_cache_check_catches_a_gha_cache(cache):
    broken = copy.deepcopy(IMAGE_JOB)
    (build,) = steps(broken, "docker/build-push-action")
    build["with"].update(cache)
    assert cache_problems(broken)


def attestation_problems(options: dict) -> list[str]:
    """Why the attestation manifests could take the OCI 1.1 artifact form (artifactType and
    subject), BuildKit's default since v0.32.0 (exporter/containerimage/export.go,
    DefaultOCIArtifact), which ECR has been reported to refuse (empty: the legacy form)."""
    outputs = options.get("outputs", "")
    exporter = dict(item.partition("=")[::2] for item in outputs.split(",") if item)
    if exporter.get("type") not in ("image", "registry"):
        return [f"outputs {outputs!r}: not the image exporter that push: true pushes"]
    if exporter.get("oci-artifact") != "false":
        return [f"outputs {outputs!r}: attestations in BuildKit's default, OCI-artifact form"]
    return []


@pytest.mark.parametrize(
    "outputs", ["", "type=image", "type=image,oci-artifact=true", "type=local,dest=out"]
)
def test_the_attestation_check_catches_the_oci_artifact_form(outputs):
    assert attestation_problems({"outputs": outputs})
    (meta,) = steps(IMAGE_JOB, "docker/metadata-action")
    assert "type=sha,format=long,prefix=" in meta["with"]["tags"]
    assert "type=semver" in meta["with"]["tags"]


def test_release_bumps_the_overlay_argo_cd_tracks():
    application = yaml.safe_load((ROOT / "argocd" / "application.yaml").read_text())
    assert RELEASE["env"]["OVERLAY"] == application["spec"]["source"]["path"]
    overlay = yaml.safe_load((ROOT / RELEASE["env"]["OVERLAY"] / "kustomization.yaml").read_text())
    assert RELEASE["env"]["IMAGE_NAME"] in [image["name"] for image in overlay["images"]]


def test_release_pushes_to_the_repository_the_overlay_names():
    show = step_named(SETTINGS_JOB, "Read the repository from the overlay")
    assert 'zdt show "$OVERLAY" --image "$IMAGE_NAME" --field newName' in show["run"]
    assert SETTINGS_JOB["outputs"]["repository"] == "${{ steps.settings.outputs.repository }}"
    assert "settings" in IMAGE_JOB["needs"]
    (meta,) = steps(IMAGE_JOB, "docker/metadata-action")
    assert meta["with"]["images"] == "${{ needs.settings.outputs.repository }}"
    assert IMAGE_JOB["env"]["REPOSITORY"] == "${{ needs.settings.outputs.repository }}"


# One build per commit: a tag push or a re-run reuses the commit's digest.


def rebuild_problems(job: dict) -> list[str]:
    """Why a tag push or a re-run could build (and push) the commit again (empty: it cannot)."""
    problems = []
    lookup = index_of(job, running('imagetools inspect "$REPOSITORY:$GITHUB_SHA"'))
    builds = [i for i, s in enumerate(job["steps"]) if uses("docker/build-push-action")(s)]
    if lookup is None:
        problems.append("no step looks for the commit's image before building")
    if len(builds) != 1:
        problems.append(f"{len(builds)} build steps")
    for i in builds:
        if lookup is not None and i < lookup:
            problems.append("the build runs before the lookup")
        if job["steps"][i].get("if") != "steps.existing.outputs.digest == ''":
            problems.append("the build does not skip a commit whose image exists")
    retag = index_of(job, running("docker buildx imagetools create"))
    if retag is None:
        problems.append("no step adds the version tags to the existing digest")
    else:
        step = job["steps"][retag]
        if "--prefer-index=false" not in step["run"] or '"$REPOSITORY@$DIGEST"' not in step["run"]:
            problems.append("the version tags are not a carbon copy of the commit's digest")
        if step.get("if") != "startsWith(github.ref, 'refs/tags/v')":
            problems.append("the version tags are not added on vX.Y.Z tag pushes")
        if step.get("env", {}).get("DIGEST") != "${{ steps.image.outputs.digest }}":
            problems.append("the version tags do not point at the commit's digest")
    return problems


def test_a_tag_push_or_a_rerun_never_rebuilds():
    assert rebuild_problems(IMAGE_JOB) == []
    assert IMAGE_JOB["outputs"]["digest"] == "${{ steps.image.outputs.digest }}"
    digest = step_named(IMAGE_JOB, "The digest")
    assert digest["env"] == {
        "BUILT": "${{ steps.build.outputs.digest }}",
        "EXISTING": "${{ steps.existing.outputs.digest }}",
    }


def _drop_build_condition(job):
    (build,) = steps(job, "docker/build-push-action")
    del build["if"]


def _drop_version_tags(job):
    job["steps"] = [s for s in job["steps"] if "imagetools create" not in s.get("run", "")]


def _retag_by_building(job):
    _drop_version_tags(job)
    (build,) = steps(job, "docker/build-push-action")
    job["steps"].append(copy.deepcopy(build) | {"if": "startsWith(github.ref, 'refs/tags/v')"})


@pytest.mark.parametrize(
    "change",
    [_drop_build_condition, _drop_version_tags, _retag_by_building],
    ids=["build always", "no version tags", "version tags by a second build"],
)
def test_the_rebuild_check_catches_a_second_build(change):
    broken = copy.deepcopy(IMAGE_JOB)
    change(broken)
    assert rebuild_problems(broken)


# Installs before credentials; the write token in the push step only.

INSTALLS = ("make release-tools", "pip install", "make .venv", "requirements-dev", "uv pip")


def installs(step: dict) -> bool:
    return any(command in step.get("run", "") for command in INSTALLS) or uses(
        "actions/setup-python"
    )(step)


def holds_credentials(step: dict) -> bool:
    text = yaml.safe_dump({k: v for k, v in step.items() if k != "uses"})
    return (
        uses("aws-actions/configure-aws-credentials")(step)
        or uses("aws-actions/amazon-ecr-login")(step)
        or "github.token" in text
        or "secrets." in text
    )


def credential_problems(workflow: dict) -> list[str]:
    """Why a release job could run an install with a credential in scope, or leak the token."""
    problems = []
    workflow_text = yaml.safe_dump(workflow)
    for command in ("make .venv", "requirements-dev"):
        if command in workflow_text:
            problems.append(f"the dev tools are installed ({command})")
    for name, job in workflow["jobs"].items():
        if "github.token" in yaml.safe_dump(job.get("env", {})) or "secrets." in yaml.safe_dump(
            job.get("env", {})
        ):
            problems.append(f"{name}: a token in the job's environment, so in every step")
        job_steps = job.get("steps", [])
        if job["permissions"].get("id-token") == "write" and any(map(installs, job_steps)):
            problems.append(f"{name}: installs packages in the job that holds the OIDC token")
        first_credential = index_of(job, holds_credentials)
        last_install = max((i for i, s in enumerate(job_steps) if installs(s)), default=None)
        if None not in (first_credential, last_install) and last_install > first_credential:
            problems.append(f"{name}: an install after a credential is in scope")
        for step in steps(job, "actions/checkout"):
            if step.get("with", {}).get("persist-credentials") is not False:
                problems.append(f"{name}: checkout keeps the token in the clone")
        for step in steps(job, "actions/setup-python"):
            if job["permissions"].get("contents") == "write" and step["with"].get("token") != "":
                problems.append(f"{name}: setup-python gets the write token (its default)")
        if job["permissions"].get("contents") == "write":
            holders = [s.get("name") for s in job_steps if holds_credentials(s)]
            if holders != ["Commit and push"]:
                problems.append(f"{name}: the write token reaches {holders}")
    return problems


def test_release_jobs_install_only_the_release_tools_before_any_credential():
    assert credential_problems(RELEASE) == []
    assert step_named(SETTINGS_JOB, "Install the release commands")["run"] == "make release-tools"
    assert step_named(TAG_JOB, "Install the release commands")["run"] == "make release-tools"
    assert SETTINGS_JOB["permissions"] == {"contents": "read"}


def _install_after_login(workflow):
    job = workflow["jobs"]["tag-commit"]
    install = step_named(job, "Install the release commands")
    job["steps"].remove(install)
    job["steps"].append(install)


def _dev_tools(workflow):
    step_named(workflow["jobs"]["tag-commit"], "Install the release commands")["run"] = (
        "make .venv/.installed"
    )


def _token_in_job_env(workflow):
    workflow["jobs"]["tag-commit"]["env"] = {"GITHUB_TOKEN": "${{ github.token }}"}


def _persisted_checkout(workflow):
    (checkout,) = steps(workflow["jobs"]["tag-commit"], "actions/checkout")
    checkout["with"]["persist-credentials"] = True


def _setup_python_with_token(workflow):
    (setup,) = steps(workflow["jobs"]["tag-commit"], "actions/setup-python")
    del setup["with"]["token"]


def _python_in_the_oidc_job(workflow):
    job = workflow["jobs"]["image"]
    job["steps"].insert(1, {"name": "Install the release commands", "run": "make release-tools"})


@pytest.mark.parametrize(
    "change",
    [
        _install_after_login,
        _dev_tools,
        _token_in_job_env,
        _persisted_checkout,
        _setup_python_with_token,
        _python_in_the_oidc_job,
    ],
    ids=[
        "install after the token",
        "dev tools",
        "token in the job env",
        "checkout persists the token",
        "setup-python with the token",
        "install in the OIDC job",
    ],
)
def test_the_credential_check_catches_a_leak(change):
    broken = copy.deepcopy(RELEASE)
    change(broken)
    assert credential_problems(broken)


def run_push_step(tmp_path: Path, script: str, token: str) -> subprocess.CompletedProcess:
    """The push step's script in a fresh clone, with a stand-in `zdt push` that reports what
    git would send to GitHub and whether the clone's config holds it."""
    gitrepo.init(tmp_path)
    stub = tmp_path / ".venv-release" / "bin" / "zdt"
    stub.parent.mkdir(parents=True)
    stub.write_text(
        "#!/bin/sh\n"
        'git config --get "http.$GITHUB_SERVER_URL/.extraheader" || echo "no header"\n'
        'if grep -rq extraheader .git/config; then echo "header in .git/config"; fi\n'
    )
    stub.chmod(0o755)
    env = {
        **os.environ,
        **gitrepo.ISOLATED,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_TOKEN": token,
        "IMAGE_NAME": "zero-downtime-app",
        "OVERLAY": "overlays/v2",
        "TAG": "a" * 40,
    }
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


def test_the_push_step_hands_git_the_token_in_its_environment_only(tmp_path):
    push = step_named(TAG_JOB, "Commit and push")
    assert push["env"]["GITHUB_TOKEN"] == "${{ github.token }}"

    result = run_push_step(tmp_path, push["run"], "t0ken")

    assert result.returncode == 0, result.stderr
    basic = base64.b64encode(b"x-access-token:t0ken").decode()
    # The header actions/checkout would persist (AUTHORIZATION: basic, x-access-token:<token>),
    # masked in the log, and nothing written to the clone.
    assert result.stdout.splitlines() == [f"::add-mask::{basic}", f"AUTHORIZATION: basic {basic}"]


def test_without_the_push_step_git_has_no_token(tmp_path):
    # The same stand-in run the way every other step runs: no header, so no push.
    result = run_push_step(tmp_path, ".venv-release/bin/zdt push", "t0ken")

    assert result.stdout.splitlines() == ["no header"]


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


# The signed digest.


def signing_problems(job: dict) -> list[str]:
    """Why the pushed digest might go unsigned, or signed in a form ECR Public or Kyverno miss."""
    problems = []
    if job["permissions"].get("id-token") != "write":
        problems.append("no OIDC token for keyless signing")
    installer = index_of(job, uses("sigstore/cosign-installer"))
    sign = index_of(job, running("cosign sign "))
    verify = index_of(job, running("cosign verify "))
    pushes = [
        i
        for i, s in enumerate(job["steps"])
        if uses("docker/build-push-action")(s) or "imagetools create" in s.get("run", "")
    ]
    if installer is None:
        problems.append("cosign is not installed with sigstore/cosign-installer")
    if sign is None:
        problems.append("nothing signs")
        return problems
    step = job["steps"][sign]
    if installer is not None and installer > sign:
        problems.append("cosign is installed after the signing step")
    if pushes and sign < max(pushes):
        problems.append("the signature is made before the image is pushed")
    if '"$REPOSITORY@$DIGEST"' not in step["run"]:
        problems.append("the signature is not made on the pushed digest")
    if step.get("env", {}).get("DIGEST") != "${{ steps.image.outputs.digest }}":
        problems.append("the signed digest is not the one the overlay gets")
    if "--yes" not in step["run"]:
        problems.append("cosign sign would prompt")
    for flag in ("--new-bundle-format=false", "--use-signing-config=false"):
        if flag not in step["run"]:
            problems.append(f"signature storage is not the tag-based one ({flag})")
    if "--key" in step["run"]:
        problems.append("signed with a key, not keyless")
    if verify is None or verify < sign:
        problems.append("the signature is not verified after signing")
    else:
        command = job["steps"][verify]["run"]
        if f"--certificate-oidc-issuer {GITHUB_ISSUER}" not in command:
            problems.append("verify does not pin GitHub's OIDC issuer")
        if '--certificate-identity "$GITHUB_SERVER_URL/$GITHUB_WORKFLOW_REF"' not in command:
            problems.append("verify does not pin this workflow's identity")
    return problems


def test_the_image_job_signs_and_verifies_the_pushed_digest():
    assert signing_problems(IMAGE_JOB) == []
    (installer,) = steps(IMAGE_JOB, "sigstore/cosign-installer")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", installer["with"]["cosign-release"])


def _sign_by_tag(job):
    step_named(job, "Sign the digest")["run"] = 'cosign sign --yes "$REPOSITORY:$GITHUB_SHA"'


def _sign_before_push(job):
    sign = step_named(job, "Sign the digest")
    job["steps"].remove(sign)
    job["steps"].insert(index_of(job, uses("docker/build-push-action")), sign)


def _no_verify(job):
    job["steps"].remove(step_named(job, "Verify the signature as a cluster would"))


def _referrers_storage(job):
    sign = step_named(job, "Sign the digest")
    sign["run"] = sign["run"].replace("--new-bundle-format=false", "")


@pytest.mark.parametrize(
    "change",
    [_sign_by_tag, _sign_before_push, _no_verify, _referrers_storage],
    ids=["by tag", "before the push", "not verified", "another storage mode"],
)
def test_the_signing_check_catches_a_gap(change):
    broken = copy.deepcopy(IMAGE_JOB)
    change(broken)
    assert signing_problems(broken)


# Registry reads after the push: ECR Public may not serve a just-pushed manifest (or a moved
# tag's new digest) at once (aws/aws-for-fluent-bit#946), so each read goes through `retry`.

RETRY_SH = ROOT / "tools" / "retry.sh"
REGISTRY_READS = ("cosign sign", "cosign verify", "imagetools inspect", "imagetools create")
FUNCTION_START = re.compile(r"^(?P<name>\w+)\(\)\s*\{")
# `retry COMMAND`, also as an if's condition or in a command substitution.
RETRIED = re.compile(r"^(?:if !?\s*)?retry\s|\$\(retry\s")


def unretried_reads(job: dict) -> list[str]:
    """Every read of the registry after the image is pushed that is not retried (empty: none).
    A read is retried when its command starts with `retry`, or when it is inside a shell function
    (`name() {` ... `}`) that is only ever called as `retry name`."""
    problems = []
    build = index_of(job, uses("docker/build-push-action"))
    for step in job["steps"][build + 1 :]:
        script = step.get("run", "")
        if not any(read in script for read in REGISTRY_READS):
            continue
        where = step.get("name", "a step")
        lines = [line.strip() for line in script.replace("\\\n", " ").splitlines()]
        if ". tools/retry.sh" not in lines:
            problems.append(f"{where}: does not source tools/retry.sh")
        function, reading = None, set()
        for line in lines:
            start = FUNCTION_START.match(line)
            if start:
                function = start["name"]
            if any(read in line for read in REGISTRY_READS):
                if function:
                    reading.add(function)
                elif not RETRIED.search(line):
                    problems.append(f"{where}: not retried: {line}")
            if function and line.endswith("}"):
                function = None
        for name in sorted(reading):
            calls = [
                line
                for line in lines
                if re.search(rf"\b{name}\b", line) and not FUNCTION_START.match(line)
            ]
            if not calls or not all(re.search(rf"\bretry\s+{name}\b", line) for line in calls):
                problems.append(f"{where}: {name} reads the registry and is called without retry")
    return problems


def test_every_registry_read_after_the_push_is_retried():
    assert unretried_reads(IMAGE_JOB) == []
    assert RETRY_SH.is_file()


def _sign_once(job):
    step = step_named(job, "Sign the digest")
    step["run"] = step["run"].replace("retry cosign sign", "cosign sign")


def _verify_once(job):
    step = step_named(job, "Verify the signature as a cluster would")
    step["run"] = step["run"].replace("retry cosign verify", "cosign verify")


def _inspect_tags_once(job):
    step = step_named(job, "Add the version tags to the commit's image")
    step["run"] = step["run"].replace("retry resolves_to_digest", "resolves_to_digest")


def _create_once(job):
    step = step_named(job, "Add the version tags to the commit's image")
    step["run"] = step["run"].replace(
        "retry docker buildx imagetools create", "docker buildx imagetools create"
    )


def _retry_not_sourced(job):
    step = step_named(job, "Sign the digest")
    step["run"] = step["run"].replace(". tools/retry.sh", "")


@pytest.mark.parametrize(
    "change",
    [_sign_once, _verify_once, _inspect_tags_once, _create_once, _retry_not_sourced],
    ids=["sign", "verify", "tags inspected", "tags created", "retry not sourced"],
)
def test_the_retry_check_catches_a_single_read(change):
    broken = copy.deepcopy(IMAGE_JOB)
    change(broken)
    assert unretried_reads(broken)


def run_with_retry(
    tmp_path: Path, script: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """A bash script (as the runner runs it: -e, pipefail) in a directory holding tools/retry.sh."""
    (tmp_path / "tools").mkdir(exist_ok=True)
    (tmp_path / "tools" / "retry.sh").write_text(RETRY_SH.read_text())
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
        env={**os.environ, "RETRY_DELAY_SECONDS": "0", **(env or {})},
    )  # fmt: skip


# A command that fails until its Nth call, counting its calls in a file.
FLAKY = 'flaky() { echo call >> calls; [ "$(wc -l < calls)" -ge "$1" ]; }\n'


def test_retry_runs_until_the_command_succeeds(tmp_path):
    result = run_with_retry(tmp_path, ". tools/retry.sh\n" + FLAKY + "retry flaky 3\necho done\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert (tmp_path / "calls").read_text().count("call") == 3
    assert "flaky failed (exit 1, attempt 2/6), again in 0 s" in result.stderr


def test_retry_gives_up_after_its_attempts_with_the_commands_status(tmp_path):
    script = ". tools/retry.sh\n" + FLAKY + "retry flaky 99\necho not reached\n"
    result = run_with_retry(tmp_path, script, {"RETRY_ATTEMPTS": "4"})

    assert result.returncode == 1
    assert "not reached" not in result.stdout
    assert (tmp_path / "calls").read_text().count("call") == 4
    assert result.stderr.splitlines()[-1] == "retry: flaky failed 4 times (exit 1), giving up"


def test_retry_waits_longer_each_time_and_boundedly(tmp_path):
    # A stand-in sleep records the pauses: 5, 10, 20, 40, 80 by default, 155 s at most.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sleep").write_text('#!/bin/sh\necho "$1" >> pauses\n')
    (tmp_path / "bin" / "sleep").chmod(0o755)
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    script = "unset RETRY_DELAY_SECONDS\n. tools/retry.sh\n" + FLAKY + "retry flaky 99 || true\n"
    result = run_with_retry(tmp_path, script, env)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pauses").read_text().split() == ["5", "10", "20", "40", "80"]


# The version tags' check, run with a stand-in docker whose registry serves a moved tag's old
# digest at first.

NEW_DIGEST = "sha256:" + "2" * 64
OLD_DIGEST = "sha256:" + "1" * 64
STALE_DOCKER = """#!/bin/sh
echo "$*" >> docker.log
case "$*" in
*"imagetools inspect"*)
    echo read >> reads
    if [ "$(wc -l < reads)" -gt "$STALE_READS" ]; then digest=$NEW; else digest=$OLD; fi
    printf '{"digest": "%s"}\\n' "$digest" ;;
esac
"""


def run_version_tags(tmp_path: Path, stale_reads: int) -> subprocess.CompletedProcess:
    (tmp_path / "bin").mkdir()
    docker = tmp_path / "bin" / "docker"
    docker.write_text(STALE_DOCKER)
    docker.chmod(0o755)
    script = step_named(IMAGE_JOB, "Add the version tags to the commit's image")["run"]
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "REPOSITORY": "public.ecr.aws/a1b2c3d4/zero-downtime-app",
        "DIGEST": NEW_DIGEST,
        "TAGS": "public.ecr.aws/a1b2c3d4/zero-downtime-app:1.2.3\n",
        "NEW": NEW_DIGEST,
        "OLD": OLD_DIGEST,
        "STALE_READS": str(stale_reads),
        "RETRY_ATTEMPTS": "3",
    }
    return run_with_retry(tmp_path, script, env)


def test_the_version_tags_check_waits_for_the_registry_to_catch_up(tmp_path):
    result = run_version_tags(tmp_path, stale_reads=2)

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "reads").read_text().count("read") == 3


def test_the_version_tags_check_fails_on_a_tag_that_stays_elsewhere(tmp_path):
    result = run_version_tags(tmp_path, stale_reads=99)

    assert result.returncode == 1
    assert f"does not resolve to {NEW_DIGEST}" in result.stdout
    assert (tmp_path / "reads").read_text().count("read") == 3


def test_e2e_has_the_rolling_update_the_blue_green_abort_and_argo_cd():
    assert sorted(WORKFLOWS["e2e"]["jobs"]) == ["argocd", "blue-green-abort", "rollout"]


def test_e2e_rolls_v1_to_v2_on_kind_with_the_repo_scripts():
    job = WORKFLOWS["e2e"]["jobs"]["rollout"]
    (kind,) = steps(job, "helm/kind-action")
    assert kind["with"]["registry"] is True
    runs = " ".join(s.get("run", "") for s in job["steps"])
    # The e2e overlays wrap overlays/v1 and v2 (tests/test_e2e_kind.py).
    assert "tools/e2e/run.sh tools/e2e/kind/v1 tools/e2e/kind/v2" in runs
    # metrics-server before the rollout, and the HPA seen reading metrics after it.
    metrics = index_of(job, running("tools/e2e/apply-pinned.sh tools/e2e/metrics-server"))
    rollout = index_of(job, running("tools/e2e/run.sh"))
    hpa = index_of(job, running("--for=condition=ScalingActive"))
    assert None not in (metrics, rollout, hpa)
    assert metrics < rollout < hpa
    for version in ("v1", "v2"):
        overlay = yaml.safe_load((ROOT / "overlays" / version / "kustomization.yaml").read_text())
        assert WORKFLOWS["e2e"]["env"]["IMAGE_NAME"] in [i["name"] for i in overlay["images"]]
    assert (ROOT / "tools" / "e2e" / "run.sh").stat().st_mode & 0o111
    images = index_of(job, running("tools/e2e/images.sh"))
    assert images is not None and images < rollout


def test_e2e_aborts_a_broken_release_under_argo_rollouts_on_kind():
    job = WORKFLOWS["e2e"]["jobs"]["blue-green-abort"]
    (kind,) = steps(job, "helm/kind-action")
    assert kind["with"]["registry"] is True
    # Argo Rollouts pinned to the release whose CRDs zdt validate checks against.
    release = job["env"]["ARGO_ROLLOUTS_VERSION"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", release)
    assert f"Argo Rollouts {release}" == crd.ARGO_ROLLOUTS
    readme = (crd.CRDS / "argo-rollouts" / "README.md").read_text()
    assert f"tag {release}" in readme
    install = step_named(job, "Install Argo Rollouts")["run"]
    assert (
        "tools/e2e/download.sh \\\n"
        '  "https://github.com/argoproj/argo-rollouts/releases/download/'
        '$ARGO_ROLLOUTS_VERSION/install.yaml"' in install
    )
    controller = index_of(job, running("deployment/argo-rollouts"))
    metrics = index_of(job, running("tools/e2e/apply-pinned.sh tools/e2e/metrics-server"))
    images = index_of(job, running("tools/e2e/images.sh"))
    abort = index_of(
        job, running("tools/e2e/rollout.sh tools/e2e-rollout/v1 tools/e2e-rollout/v2-broken")
    )
    hpa = index_of(job, running("--for=condition=ScalingActive"))
    assert None not in (controller, metrics, images, abort, hpa)
    assert max(controller, metrics, images) < abort < hpa
    # The load generator must see v1 alone: the version the abort leaves serving.
    assert job["steps"][abort]["env"]["EXPECT_VERSION"] == "v1"
    assert (ROOT / "tools" / "e2e" / "rollout.sh").stat().st_mode & 0o111
    (upload,) = steps(job, "actions/upload-artifact")
    assert upload["if"] == "failure()"


# The Argo CD job: a pinned release in the supported range, its CLI checked, the release synced.

ARGOCD_JOB = WORKFLOWS["e2e"]["jobs"]["argocd"]


def test_e2e_syncs_a_release_with_a_pinned_argo_cd_on_kind():
    job = ARGOCD_JOB
    # The newest release of the supported range: the schemas tests/test_argocd.py checks.
    assert job["env"]["ARGOCD_VERSION"] == f"v{ARGOCD_NEWEST}"
    (checkout,) = steps(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0  # pushed whole to the in-cluster git server
    (kind,) = steps(job, "helm/kind-action")
    assert kind["with"]["registry"] is True
    install = step_named(job, "Install Argo CD")["run"]
    assert (
        "tools/e2e/download.sh \\\n"
        '  "https://raw.githubusercontent.com/argoproj/argo-cd/$ARGOCD_VERSION/manifests/install.yaml"'
        in install
    )
    assert "--server-side" in install
    order = [
        index_of(job, uses("helm/kind-action")),
        index_of(job, running("tools/e2e/apply-pinned.sh tools/e2e/metrics-server")),
        index_of(job, running("manifests/install.yaml")),
        index_of(job, running("cli_checksums.txt")),
        index_of(job, running("tools/e2e/images.sh")),
        index_of(job, running("tools/e2e-git-server/image.sh")),
        index_of(job, running("tools/e2e/argocd.sh overlays/v1 overlays/v2")),
    ]
    assert None not in order and order == sorted(order)
    release = step_named(job, "Release v1, then v2 under load, through Argo CD")
    assert release["env"]["EXPECT_VERSIONS"] == "v1 v2"
    assert (ROOT / release["env"]["COMPONENT"] / "kustomization.yaml").exists()
    assert release["env"]["ZDT"] == ".venv/bin/zdt"
    (upload,) = steps(job, "actions/upload-artifact")
    assert upload["if"] == "failure()"
    # The overlay argocd.sh commits to is the one the Application tracks.
    application = yaml.safe_load((ROOT / "argocd" / "application.yaml").read_text())
    script = (ROOT / "tools" / "e2e" / "argocd.sh").read_text()
    assert f"TRACKED=${{TRACKED:-{application['spec']['source']['path']}}}" in script
    assert f"APP=${{APP:-{application['metadata']['name']}}}" in script


ARGOCD_BINARY = b"#!/bin/sh\necho argocd: v3.5.1+stand-in\n"


def run_cli_install(tmp_path: Path, binary: bytes, checksums: str) -> subprocess.CompletedProcess:
    """The CLI install step, with a stand-in curl serving the release's two assets."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "argocd-linux-amd64").write_bytes(binary)
    (assets / "cli_checksums.txt").write_text(checksums)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    # The release URL's last part names the asset; record every URL asked for.
    curl.write_text(
        "#!/bin/sh\n"
        "for url; do :; done\n"
        f'echo "$url" >> {tmp_path}/urls\n'
        f'cp "{assets}/${{url##*/}}" .\n'
    )
    curl.chmod(0o755)
    (tmp_path / "runner").mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "ARGOCD_VERSION": ARGOCD_JOB["env"]["ARGOCD_VERSION"],
        "RUNNER_TEMP": str(tmp_path / "runner"),
        "GITHUB_PATH": str(tmp_path / "github_path"),
    }
    script = step_named(ARGOCD_JOB, "Install the argocd CLI")["run"]
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip


def checksum_line(binary: bytes) -> str:
    return f"{hashlib.sha256(binary).hexdigest()}  argocd-linux-amd64\n"


def test_the_argocd_cli_is_installed_after_its_published_checksum_matched(tmp_path):
    other = f"{'0' * 64}  argocd-darwin-arm64\n"
    result = run_cli_install(tmp_path, ARGOCD_BINARY, other + checksum_line(ARGOCD_BINARY))

    assert result.returncode == 0, result.stderr
    release = f"https://github.com/argoproj/argo-cd/releases/download/{ARGOCD_JOB['env']['ARGOCD_VERSION']}"
    assert (tmp_path / "urls").read_text().splitlines() == [
        f"{release}/argocd-linux-amd64",
        f"{release}/cli_checksums.txt",
    ]
    (path,) = (tmp_path / "github_path").read_text().splitlines()
    installed = Path(path) / "argocd"
    assert installed.read_bytes() == ARGOCD_BINARY
    assert installed.stat().st_mode & 0o111


@pytest.mark.parametrize(
    "binary, checksums",
    [
        (ARGOCD_BINARY + b"tampered", checksum_line(ARGOCD_BINARY)),
        (ARGOCD_BINARY, f"{'0' * 64}  argocd-darwin-arm64\n"),
        (ARGOCD_BINARY, ""),
    ],
    ids=["binary changed", "no line for the binary", "empty checksums"],
)
def test_the_argocd_cli_is_not_installed_without_a_matching_checksum(tmp_path, binary, checksums):
    result = run_cli_install(tmp_path, binary, checksums)

    assert result.returncode != 0
    assert not (tmp_path / "github_path").exists()
    assert not list((tmp_path / "runner").rglob("bin/argocd"))

"""What the e2e workflow (.github/workflows/e2e.yml) fetches and runs: every download checked
against a pinned sha256, every image pinned by digest, and every file its jobs run covered by
its pull_request paths filter.

- Downloads go through tools/e2e/download.sh, which fetches only a URL listed with its sha256 in
  tools/e2e/downloads.sha256 and checks the bytes; kustomizations that name a manifest by URL are
  applied with tools/e2e/apply-pinned.sh, which does the same for each URL. The checks below
  derive the URLs from the jobs (their env expanded) and fail on a `kubectl -f URL`, a
  `kubectl apply -k` of such a kustomization, a curl without a checksum, or a URL with no pin.
- metrics-server's release manifest is vendored (tools/e2e/metrics-server/components.yaml), not
  downloaded: its content is checked against the release asset's sha256.
- Images in the e2e's own directories (tools/e2e*/) are pinned by digest, or named by a kustomize
  images entry that a script the jobs run re-pins with `zdt bump ... --digest`.
- The paths filter: the files the jobs run are derived from the jobs (the Makefile's target,
  zdt and the scripts under tools/, the image's build inputs, the kustomizations they apply).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import gitrepo
from tests.test_e2e_kind import STAND_IN, docker_env
from tools.kustomize import find, render
from tools.repo import ROOT

WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
# YAML 1.1 reads the key `on` as True.
WORKFLOW["on"] = WORKFLOW.pop(True, WORKFLOW.get("on"))
E2E = ROOT / "tools" / "e2e"
E2E_DIRS = sorted(path for path in (ROOT / "tools").glob("e2e*") if path.is_dir())
DOWNLOAD_SH = E2E / "download.sh"
APPLY_PINNED_SH = E2E / "apply-pinned.sh"
PINNED = E2E / "downloads.sha256"
GIT_SERVER = ROOT / "tools" / "e2e-git-server"
METRICS_SERVER_DIR = E2E / "metrics-server"
# Release manifests vendored unmodified below a header of comments, with the sha256 of the
# release asset (what follows the header): metrics-server v0.8.1's components.yaml, rendered
# from its tag as its release workflow does (the file's header says how).
VENDORED = {
    METRICS_SERVER_DIR / "components.yaml": (
        "https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.8.1/components.yaml",
        "4a672c4891902573a3ff753cece5de1bf1f55dd053403dfec39df9d1636b7ff1",
    ),
}
BIN = Path(sys.executable).parent


def logical_lines(script: str) -> list[str]:
    """The lines of a shell script with backslash continuations joined."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines()]


def job_scripts(workflow: dict) -> list[tuple[str, str, dict]]:
    """(where, run block, the environment it sees) of every step of every job."""
    found = []
    for job_id, job in workflow["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" in step:
                env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                found.append((f"{job_id}.{step.get('name', index)}", step["run"], env))
    return found


def e2e_scripts() -> dict[str, str]:
    """The e2e's own shell scripts, by path (download.sh is the one place that fetches)."""
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for directory in E2E_DIRS
        for path in sorted(directory.rglob("*.sh"))
    }


def expand(text: str, env: dict) -> str:
    """$NAME and ${NAME} replaced by the step's environment."""
    return re.sub(
        r"\$\{?(\w+)\}?", lambda m: str(env.get(m.group(1), m.group(0))), text.strip("\"'")
    )


def pins(text: str) -> dict[str, str]:
    """URL -> pinned sha256 (or its placeholder) of a downloads.sha256 text."""
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            value, url = line.split()
            entries[url] = value
    return entries


def remote_resources(directory: Path) -> list[str]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [r for r in kustomization.get("resources", []) if re.match(r"https?://", r)]


def fetches_urls(directory: Path) -> bool:
    """A kustomization whose resources include a URL, which kustomize fetches unchecked."""
    return (directory / "kustomization.yaml").is_file() and bool(remote_resources(directory))


# Downloads.

URL_OPTION = re.compile(r"\bkubectl\b.*\s(?:-f|--filename|-k|--kustomize)[\s=]+\"?https?://")
APPLY_K = re.compile(r"\bkubectl\b.*\s(?:-k|--kustomize)[\s=]+\"?(?P<dir>[\w./-]+)")
DOWNLOAD = re.compile(r"tools/e2e/download\.sh\s+(?P<url>\"[^\"]+\"|\S+)")
APPLY_PINNED = re.compile(r"tools/e2e/apply-pinned\.sh\s+(?P<dir>[\w./-]+)")


def download_problems(workflow: dict, scripts: dict[str, str], pinned: dict[str, str]) -> list[str]:
    """Every download of the e2e that is not checked against a pinned sha256 (empty: none)."""
    problems = []
    blocks = job_scripts(workflow) + [(path, text, {}) for path, text in scripts.items()]
    for where, script, env in blocks:
        if where == str(DOWNLOAD_SH.relative_to(ROOT)):
            continue
        lines = logical_lines(script)
        for line in lines:
            if re.search(r"\b(curl|wget)\b", line) and "sha256sum --check" not in script:
                problems.append(f"{where}: downloads without a checksum: {line}")
            if URL_OPTION.search(line):
                problems.append(f"{where}: kubectl fetches a URL unchecked: {line}")
            applied = APPLY_K.search(line)
            if applied and fetches_urls(ROOT / applied["dir"]):
                problems.append(
                    f"{where}: kustomize fetches {applied['dir']}'s URLs unchecked "
                    "(tools/e2e/apply-pinned.sh checks them)"
                )
            urls = []
            if match := DOWNLOAD.search(line):
                urls.append(expand(match["url"], env))
            if match := APPLY_PINNED.search(line):
                urls += remote_resources(ROOT / match["dir"])
            for url in urls:
                if url not in pinned:
                    problems.append(f"{where}: no sha256 pinned for {url} in {PINNED.name}")
    return problems


def test_every_download_of_the_e2e_is_checked_against_a_pinned_sha256():
    pinned = pins(PINNED.read_text())
    assert download_problems(WORKFLOW, e2e_scripts(), pinned) == []
    # The two release manifests downloaded (Argo CD's, Argo Rollouts') are among them: the check
    # sees the downloads. Every pin is filled in (download.sh refuses an UNFILLED one).
    assert len(pinned) >= 2
    for value in pinned.values():
        assert re.fullmatch(r"[0-9a-f]{64}", value)


def _step(workflow: dict, job: str, name: str) -> dict:
    (step,) = [s for s in workflow["jobs"][job]["steps"] if s.get("name") == name]
    return step


def _rollouts_by_url(workflow, tmp_path):
    _step(workflow, "blue-green-abort", "Install Argo Rollouts")["run"] = (
        "kubectl apply -n argo-rollouts \\\n"
        '  -f "https://github.com/argoproj/argo-rollouts/releases/download/'
        '$ARGO_ROLLOUTS_VERSION/install.yaml"\n'
    )


def by_url(directory: Path, url: str) -> Path:
    """A copy of tools/e2e/metrics-server/ whose kustomization names its manifest by URL again,
    as it did before the manifest was vendored."""
    directory.mkdir()
    kustomization = yaml.safe_load((METRICS_SERVER_DIR / "kustomization.yaml").read_text())
    kustomization["resources"] = [url]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def _metrics_server_by_kustomize(workflow, tmp_path):
    directory = by_url(tmp_path / "by-url", VENDORED[METRICS_SERVER_DIR / "components.yaml"][0])
    step = _step(workflow, "rollout", "Install metrics-server")
    step["run"] = step["run"].replace(
        "tools/e2e/apply-pinned.sh tools/e2e/metrics-server", f"kubectl apply -k {directory}"
    )


def _metrics_server_url_without_a_pin(workflow, tmp_path):
    directory = by_url(tmp_path / "by-url", "https://example.org/v9.9.9/components.yaml")
    step = _step(workflow, "rollout", "Install metrics-server")
    step["run"] = step["run"].replace(
        "tools/e2e/apply-pinned.sh tools/e2e/metrics-server",
        f"tools/e2e/apply-pinned.sh {directory}",
    )


def _new_argo_cd_release(workflow, tmp_path):
    workflow["jobs"]["argocd"]["env"]["ARGOCD_VERSION"] = "v9.9.9"


def _curl_alone(workflow, tmp_path):
    step = _step(workflow, "argocd", "Install Argo CD")
    step["run"] = 'curl -fsSL -o "$RUNNER_TEMP/argocd.yaml" https://example.org/install.yaml\n'


@pytest.mark.parametrize(
    "change",
    [
        _rollouts_by_url,
        _metrics_server_by_kustomize,
        _metrics_server_url_without_a_pin,
        _new_argo_cd_release,
        _curl_alone,
    ],
    ids=[
        "kubectl -f URL",
        "kustomize fetches",
        "kustomization URL without a pin",
        "release without a pin",
        "curl without checksum",
    ],
)
def test_the_download_check_catches_an_unchecked_download(change, tmp_path):
    broken = yaml.safe_load(yaml.safe_dump(WORKFLOW))
    change(broken, tmp_path)
    assert download_problems(broken, e2e_scripts(), pins(PINNED.read_text()))


def test_the_download_check_reads_the_scripts_too():
    scripts = {"tools/e2e/extra.sh": "kubectl apply -f https://example.org/x.yaml\n"}
    assert download_problems(WORKFLOW, scripts, pins(PINNED.read_text()))


# download.sh and apply-pinned.sh, with a stand-in curl serving files from a directory.

MANIFEST = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: example\n"
URL = "https://example.org/releases/download/v1.0.0/install.yaml"
CURL = """#!/bin/sh
# curl --fail --silent --show-error --location --output FILE URL: serves $SERVED/<URL's name>.
while [ $# -gt 1 ]; do
    case $1 in --output) output=$2; shift ;; esac
    shift
done
echo "$1" >> "$SERVED/urls"
cp "$SERVED/${1##*/}" "$output"
"""


def fetch_env(tmp_path: Path, served: dict[str, bytes], pinned: str) -> dict[str, str]:
    (tmp_path / "served").mkdir()
    for name, content in served.items():
        (tmp_path / "served" / name).write_bytes(content)
    curl = tmp_path / "curl"
    curl.write_text(CURL)
    curl.chmod(0o755)
    (tmp_path / "pinned.sha256").write_text(pinned)
    return {
        **os.environ,
        "CURL": str(curl),
        "SERVED": str(tmp_path / "served"),
        "PINNED": str(tmp_path / "pinned.sha256"),
    }


def download(tmp_path: Path, served: bytes, pinned: str) -> subprocess.CompletedProcess:
    env = fetch_env(tmp_path, {"install.yaml": served}, pinned)
    return subprocess.run(
        [str(DOWNLOAD_SH), URL, str(tmp_path / "install.yaml")], env=env, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_download_keeps_bytes_that_match_their_pin(tmp_path):
    result = download(tmp_path, MANIFEST, f"# a comment\n{sha256(MANIFEST)}  {URL}\n")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "install.yaml").read_bytes() == MANIFEST
    assert (tmp_path / "served" / "urls").read_text() == URL + "\n"


@pytest.mark.parametrize(
    "served, pinned, status, message",
    [
        (MANIFEST + b"# changed\n", f"{sha256(MANIFEST)}  {URL}\n", 1, "not the pinned"),
        (MANIFEST, f"{sha256(MANIFEST)}  {URL}.other\n", 2, "no sha256 pinned for"),
        (MANIFEST, f"UNFILLED  {URL}\n", 2, "not filled in yet"),
        (MANIFEST, f"# {sha256(MANIFEST)}  {URL}\n", 2, "no sha256 pinned for"),
    ],
    ids=["changed bytes", "not listed", "placeholder", "commented out"],
)
def test_download_refuses_what_it_cannot_check(tmp_path, served, pinned, status, message):
    result = download(tmp_path, served, pinned)

    assert result.returncode == status
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "install.yaml").exists()
    assert not (tmp_path / "install.yaml.part").exists()


KUBECTL_CAPTURE = """#!/bin/sh
# kubectl apply -k DIR: keeps a copy of DIR as it was applied.
echo "$*" >> "$CAPTURE.log"
cp -R "$3" "$CAPTURE"
"""
# Enough of metrics-server's manifest for the patch.
METRICS_SERVER = STAND_IN.encode()


def apply_pinned(
    tmp_path: Path, served: bytes, directory: str = "", pinned: bytes = METRICS_SERVER
) -> subprocess.CompletedProcess:
    """apply-pinned.sh on `directory` (by default tools/e2e/metrics-server/ with its manifest
    named by URL again), with a stand-in curl serving `served` for that URL."""
    url = VENDORED[METRICS_SERVER_DIR / "components.yaml"][0]
    if not directory:
        directory = str(by_url(tmp_path / "by-url", url))
    env = fetch_env(tmp_path, {"components.yaml": served}, f"{sha256(pinned)}  {url}\n")
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(KUBECTL_CAPTURE)
    kubectl.chmod(0o755)
    env |= {"KUBECTL": str(kubectl), "CAPTURE": str(tmp_path / "applied")}
    return subprocess.run(
        [str(APPLY_PINNED_SH), directory], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_apply_pinned_applies_the_checked_manifest_with_the_patch(tmp_path):
    result = apply_pinned(tmp_path, METRICS_SERVER)

    assert result.returncode == 0, result.stderr
    applied = tmp_path / "applied"
    assert (applied / "components.yaml").read_bytes() == METRICS_SERVER
    assert remote_resources(applied) == []
    (deployment,) = find(render(applied), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["--cert-dir=/tmp", "--secure-port=10250", "--kubelet-insecure-tls"]
    # The directory given is left as it is.
    assert remote_resources(tmp_path / "by-url")


def test_apply_pinned_applies_nothing_that_does_not_match(tmp_path):
    result = apply_pinned(tmp_path, METRICS_SERVER + b"# changed\n")

    assert result.returncode == 1
    assert "not the pinned" in result.stderr
    assert not (tmp_path / "applied.log").exists()


# metrics-server's vendored release manifest.


def vendored_body(path: Path) -> bytes:
    """A vendored file without its header: everything after its leading comment lines."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = 0
    while header < len(lines) and lines[header].startswith(b"#"):
        header += 1
    return b"".join(lines[header:])


def test_metrics_servers_vendored_manifest_is_the_release_asset():
    path = METRICS_SERVER_DIR / "components.yaml"
    url, asset_sha256 = VENDORED[path]
    header = path.read_text()[: path.read_text().index("\napiVersion:")]
    # Its header names where it comes from, and its licence.
    assert url in header
    assert "kubernetes-sigs/metrics-server, tag v0.8.1" in header
    assert "manifests/overlays/release" in header
    assert "Apache-2.0" in header
    assert asset_sha256 in header
    # What follows the header is the release asset, byte for byte.
    assert sha256(vendored_body(path)) == asset_sha256
    # And it is not also downloaded.
    assert url not in pins(PINNED.read_text())


def test_the_vendored_check_catches_an_edit():
    path = METRICS_SERVER_DIR / "components.yaml"
    edited = vendored_body(path).replace(b"--metric-resolution=15s", b"--metric-resolution=60s")
    assert edited != vendored_body(path)
    assert sha256(edited) != VENDORED[path][1]


def test_metrics_server_is_applied_from_the_vendored_manifest_without_a_download(tmp_path):
    result = apply_pinned(tmp_path, b"", directory="tools/e2e/metrics-server")

    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "served" / "urls").exists()
    applied = tmp_path / "applied"
    assert yaml.safe_load((applied / "kustomization.yaml").read_text())["resources"] == [
        "components.yaml"
    ]
    (deployment,) = find(render(applied), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.k8s.io/metrics-server/metrics-server:v0.8.1"
    assert container["args"][-1] == "--kubelet-insecure-tls"
    assert container["args"].count("--kubelet-insecure-tls") == 1


# Images.

DIGEST_REF = re.compile(r"@sha256:[0-9a-f]{64}$")
# A kustomize images entry's name: no registry, no tag.
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# `zdt bump DIRECTORY --image NAME ... --digest`, zdt also as "$ZDT".
BUMP = re.compile(
    r"zdt\"?\s+bump\s+(?P<dir>[\w./-]+)\s+--image\s+(?P<name>[\w.-]+)\b.*--digest", re.I
)


def image_fields(document) -> list[str]:
    """Every `image:` value of a YAML document, at any depth."""
    if isinstance(document, dict):
        return [
            value
            for key, value in document.items()
            for value in ([value] if key == "image" and isinstance(value, str) else [])
        ] + [image for value in document.values() for image in image_fields(value)]
    if isinstance(document, list):
        return [image for value in document for image in image_fields(value)]
    return []


def image_problems(files: dict[str, str], repinned: set[tuple[str, str]]) -> list[str]:
    """Every image of the e2e's directories that is not pinned by digest (empty: none).
    `files`: path -> text of their YAML files and Dockerfiles; `repinned`: (directory, name) of
    the images entries the scripts the jobs run set with `zdt bump DIRECTORY --image NAME
    ... --digest`."""
    problems = []
    for path, text in files.items():
        if Path(path).name == "Dockerfile":
            for base in re.findall(r"^FROM\s+(\S+)", text, re.M):
                if not (DIGEST_REF.search(base) or re.fullmatch(r"\$\{\w+\}", base)):
                    problems.append(f"{path}: FROM {base}, not by digest")
            for arg in re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M):
                if not DIGEST_REF.search(arg[1]):
                    problems.append(f"{path}: ARG {arg[0]} defaults to {arg[1]}, not by digest")
            continue
        for document in yaml.safe_load_all(text):
            for image in image_fields(document):
                if not (DIGEST_REF.search(image) or IMAGE_NAME.match(image)):
                    problems.append(f"{path}: image {image}, not by digest")
            if Path(path).name == "kustomization.yaml" and isinstance(document, dict):
                directory = str(Path(path).parent)
                for entry in document.get("images", []):
                    pinned = entry.get("digest") or (directory, entry["name"]) in repinned
                    if not pinned:
                        problems.append(
                            f"{path}: images entry {entry['name']} has no digest, and no script "
                            "the e2e jobs run sets one"
                        )
    return problems


def scripts_the_jobs_run(workflow: dict) -> dict[str, str]:
    """The scripts under tools/ that a step runs by path, with their text."""
    found = {}
    for _, script, _ in job_scripts(workflow):
        for path in re.findall(r"(?<![\w./-])(tools/[\w./-]+\.sh)\b", script):
            found[path] = (ROOT / path).read_text()
    return found


def repinned_entries(scripts: dict[str, str]) -> set[tuple[str, str]]:
    return {
        (match["dir"].strip('"'), match["name"])
        for text in scripts.values()
        for line in logical_lines(text)
        if (match := BUMP.search(line))
    }


def e2e_image_files() -> dict[str, str]:
    """The YAML files and Dockerfiles of the e2e's directories, without the vendored release
    manifests: their images are the release's, by its tag, as in the release manifests the e2e
    downloads (Argo CD's, Argo Rollouts'); those files are pinned by their sha256 instead."""
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for directory in E2E_DIRS
        for path in sorted(directory.rglob("*"))
        if path.is_file()
        and (path.suffix in (".yaml", ".yml") or path.name == "Dockerfile")
        and path not in VENDORED
    }


def test_every_image_of_the_e2e_is_pinned_by_digest():
    repinned = repinned_entries(scripts_the_jobs_run(WORKFLOW))
    assert ("tools/e2e", "loadgen-runtime") in repinned
    assert ("tools/e2e-git-server", "git-server") in repinned
    assert image_problems(e2e_image_files(), repinned) == []
    # No job runs a container of its own by tag either.
    for job in WORKFLOW["jobs"].values():
        assert "container" not in job and "services" not in job


def test_the_image_check_catches_an_image_by_tag():
    files = e2e_image_files()
    repinned = repinned_entries(scripts_the_jobs_run(WORKFLOW))
    deployment = "tools/e2e-git-server/deployment.yaml"
    by_tag = files | {
        deployment: files[deployment].replace(
            "image: git-server", "image: public.ecr.aws/docker/library/buildpack-deps:bookworm-scm"
        )
    }
    assert image_problems(by_tag, repinned) == [
        f"{deployment}: image public.ecr.aws/docker/library/buildpack-deps:bookworm-scm, "
        "not by digest"
    ]
    # The images entry no script pins: its default tag would be pulled.
    assert image_problems(files, repinned - {("tools/e2e-git-server", "git-server")})
    dockerfile = "tools/e2e-git-server/Dockerfile"
    assert image_problems(files | {dockerfile: "FROM debian:bookworm\n"}, repinned)
    assert image_problems(
        files | {dockerfile: "ARG BASE=debian:bookworm\nFROM ${BASE}\n"}, repinned
    )


# tools/e2e-git-server/image.sh against a stand-in docker, as tests/test_e2e_kind.py runs images.sh.

DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_LOG"
case $1 in
inspect) for image; do :; done
         echo "${image%:*}@sha256:$(printf '%064d' 7)" ;;
esac
"""


def run_image_sh(tmp_path: Path, v1_digest: str | None) -> subprocess.CompletedProcess:
    work = gitrepo.init(tmp_path / "work")
    for part in ("base", "overlays", "tools/e2e-git-server"):
        shutil.copytree(ROOT / part, work / part)
    gitrepo.commit_all(work, "the checkout")
    if v1_digest:
        subprocess.run(
            [str(BIN / "zdt"), "bump", "overlays/v1", "--image", "zero-downtime-app",
             "--new-name", "kind-registry:5000/zero-downtime-app", "--tag", "e2e-v1",
             "--digest", v1_digest],
            cwd=work, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    env = docker_env(tmp_path, DOCKER, BIN / "zdt")
    return subprocess.run(
        ["bash", str(GIT_SERVER / "image.sh")], cwd=work, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_git_server_image_is_built_on_v1s_digest_and_pinned(tmp_path):
    v1 = "sha256:" + "1" * 64
    result = run_image_sh(tmp_path, v1)

    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "docker.log").read_text().splitlines()
    image = "kind-registry:5000/e2e-git-server:e2e"
    assert calls[0] == (
        "build --build-arg BASE_IMAGE=kind-registry:5000/zero-downtime-app:e2e-v1@" + v1
        + f" --tag {image} tools/e2e-git-server"
    )  # fmt: skip
    assert calls[1] == f"push {image}"
    (deployment,) = find(render(tmp_path / "work" / "tools" / "e2e-git-server"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{image}@sha256:{'7'.zfill(64)}"


def test_the_git_server_image_needs_v1_pinned_by_digest(tmp_path):
    result = run_image_sh(tmp_path, None)

    assert result.returncode == 2
    assert "without a digest (run tools/e2e/images.sh first)" in result.stderr
    assert not (tmp_path / "docker.log").exists()


@pytest.mark.parametrize(
    "script", ["e2e/download.sh", "e2e/apply-pinned.sh", "e2e-git-server/image.sh"]
)
def test_the_new_scripts_pass_shellcheck_and_are_executable(script):
    path = ROOT / "tools" / script
    result = subprocess.run(
        [str(BIN / "shellcheck"), "-x", str(path)], capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert path.stat().st_mode & 0o111


# The pull_request paths filter covers every file the jobs run.


def glob_regex(pattern: str) -> re.Pattern:
    """A paths filter pattern as GitHub matches it: `**` any characters, `*` any but `/`, `?`
    one but `/` (workflow syntax, "Filter pattern cheat sheet")."""
    out = ""
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(out)


def files_under(path: Path) -> list[str]:
    if path.is_file():
        return [str(path.relative_to(ROOT))]
    return [
        str(p.relative_to(ROOT))
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]


def kustomize_closure(directory: Path, seen: set[Path]) -> None:
    """The directory and every local resource and component it includes, recursively."""
    directory = directory.resolve()
    if directory in seen or not (directory / "kustomization.yaml").is_file():
        return
    seen.add(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for entry in kustomization.get("resources", []) + kustomization.get("components", []):
        if not re.match(r"https?://", entry):
            kustomize_closure(directory / entry, seen)


def make_prerequisites(target: str) -> list[str]:
    """The files a Makefile target is built from (its rule's prerequisites that are files)."""
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+)\s*:?=\s*(\S+)\s*$", makefile, re.M))
    for line in makefile.splitlines():
        head, colon, prerequisites = line.partition(":")
        head = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), head)
        if colon and head.strip() == target:
            return [p for p in prerequisites.split() if (ROOT / p).is_file()]
    return []


def files_the_jobs_run(workflow: dict) -> set[str]:
    """Every file of the repository the e2e jobs run, build or apply, derived from the jobs."""
    needed = {".github/workflows/e2e.yml"}
    texts = [script for _, script, _ in job_scripts(workflow)]
    texts += [str(value) for _, _, env in job_scripts(workflow) for value in env.values()]
    scripts = scripts_the_jobs_run(workflow)
    for text in texts + list(scripts.values()):
        for target in re.findall(r"\bmake\s+([\w./-]+)", text):
            needed |= {"Makefile", *make_prerequisites(target)}
        if re.search(r"\bzdt\b", text):
            # zdt is the tools package: any module of it may run.
            needed |= set(files_under(ROOT / "tools"))
        if re.search(r"\b(docker|DOCKER\"?)\s+build\b.*\s\.$", text, re.M):
            dockerfile = (ROOT / "Dockerfile").read_text()
            copied = re.findall(r"^COPY\s+(?!--from)(\S+)\s", dockerfile, re.M)
            needed |= {"Dockerfile", ".dockerignore"}
            needed |= {f for source in copied for f in files_under(ROOT / source)}
    directories: set[Path] = set()
    for text in texts:
        for path in re.findall(r"(?<![\w./$-])((?:tools|overlays|base|components)/[\w./-]*)", text):
            needed |= set(files_under(ROOT / path))
            kustomize_closure(ROOT / path, directories)
    for directory in directories:
        needed |= set(files_under(directory))
    return needed


def paths_filter_problems(workflow: dict) -> list[str]:
    """Files the jobs run that a pull request could change without running them (empty: none)."""
    patterns = [glob_regex(p) for p in workflow["on"]["pull_request"]["paths"]]
    return [
        f"{path}: run by the e2e jobs, not in on.pull_request.paths"
        for path in sorted(files_the_jobs_run(workflow))
        if not any(pattern.fullmatch(path) for pattern in patterns)
    ]


def test_the_paths_filter_covers_every_file_the_e2e_jobs_run():
    assert paths_filter_problems(WORKFLOW) == []
    needed = files_the_jobs_run(WORKFLOW)
    for path in ("Makefile", "tools/git.py", "tools/e2e/run.sh", "overlays/v1/kustomization.yaml"):
        assert path in needed, path


def test_the_paths_filter_check_catches_the_old_list():
    broken = yaml.safe_load(yaml.safe_dump(WORKFLOW))
    paths = broken["on"]["pull_request"]["paths"]
    paths.remove("Makefile")
    paths.remove("tools/**")
    paths += ["tools/e2e/**", "tools/e2e-job/**", "tools/e2e-rollout/**", "tools/e2e-git-server/**"]
    paths.append("tools/release/**")
    problems = paths_filter_problems(broken)
    assert "Makefile: run by the e2e jobs, not in on.pull_request.paths" in problems
    assert "tools/git.py: run by the e2e jobs, not in on.pull_request.paths" in problems


@pytest.mark.parametrize(
    "pattern, path, matches",
    [
        ("tools/**", "tools/e2e/run.sh", True),
        ("tools/*", "tools/e2e/run.sh", False),
        ("requirements*.txt", "requirements-dev.txt", True),
        ("Makefile", "tools/Makefile", False),
        (".github/workflows/e2e.yml", ".github/workflows/e2e.yml", True),
    ],
)
def test_the_glob_matches_like_github(pattern, path, matches):
    assert bool(glob_regex(pattern).fullmatch(path)) is matches

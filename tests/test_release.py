"""The image-tag commit: `zdt bump` and `zdt push`, on real files,
real kustomize and real git repositories."""

import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import gitrepo
from tests.zdt import zdt
from tools.imageref import ImageRef
from tools.kustomize import find, render
from tools.release import ReleaseError
from tools.release.bump import ImageUpdate, bump
from tools.release.show import main as show
from tools.repo import ROOT

IMAGE = "zero-downtime-app"
REPOSITORY = "public.ecr.aws/a1b2c3d4/zero-downtime-app"
DIGEST = "sha256:" + "0123456789abcdef" * 4
OTHER_DIGEST = "sha256:" + "fedcba9876543210" * 4


@pytest.fixture
def workdir(tmp_path):
    """A copy of base/ and both overlays, so bumps never touch the repository's own files."""
    for part in ("base", "overlays"):
        shutil.copytree(ROOT / part, tmp_path / part)
    return tmp_path


def run_bump(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return zdt("bump", *args, cwd=cwd, env=gitrepo.GIT_ENV, timeout=60)


def rendered_image(overlay: Path) -> str:
    (deployment,) = find(render(overlay), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container["image"]


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_bump_round_trip_through_kustomize(workdir):
    overlay = workdir / "overlays" / "v2"
    before = (overlay / "kustomization.yaml").read_text()
    tag = "a" * 40

    changed, reference, notice = bump(overlay, ImageUpdate(IMAGE, tag, DIGEST, REPOSITORY))

    assert changed
    assert notice is None
    assert reference == f"{REPOSITORY}:{tag}@{DIGEST}"
    assert rendered_image(overlay) == reference
    # Everything above `images:` stays byte for byte; the entry is what kustomize writes.
    after = (overlay / "kustomization.yaml").read_text()
    head = before[: before.index("images:")]
    assert after.startswith(head)
    entry = {"digest": DIGEST, "name": IMAGE, "newName": REPOSITORY, "newTag": tag}
    assert after[len(head) :] == yaml.safe_dump({"images": [entry]})


def test_bump_without_digest_drops_the_old_one_like_kustomize(workdir):
    overlay = workdir / "overlays" / "v2"
    bump(overlay, ImageUpdate(IMAGE, "one", DIGEST))

    bump(overlay, ImageUpdate(IMAGE, "two"))

    (entry,) = yaml.safe_load((overlay / "kustomization.yaml").read_text())["images"]
    assert "digest" not in entry
    assert rendered_image(overlay).endswith(":two")


def test_bump_keeps_new_name_when_not_given(workdir):
    overlay = workdir / "overlays" / "v1"
    name_before = ImageRef.parse(rendered_image(overlay)).repository

    bump(overlay, ImageUpdate(IMAGE, "v9"))

    assert rendered_image(overlay) == f"{name_before}:v9"


def test_bump_is_idempotent(workdir):
    overlay = workdir / "overlays" / "v2"
    update = ImageUpdate(IMAGE, "b" * 40, DIGEST, REPOSITORY)
    bump(overlay, update)
    path = overlay / "kustomization.yaml"
    text, mtime = path.read_text(), path.stat().st_mtime_ns

    result = run_bump(str(overlay), "--image", IMAGE, "--tag", "b" * 40, "--digest", DIGEST)

    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout
    assert path.read_text() == text
    assert path.stat().st_mtime_ns == mtime


INDENTED = """\
# Indented sequences, a nested mapping, comments and quotes.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
    - deployment.yaml   # the workload
labels:
    - pairs:
          team: web
images:
    # the service
    - name: zero-downtime-app
      newName: example.org/app   # registry
      newTag: 'v1'
    - name: sidecar
      newTag: "1.0"
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: zero-downtime-app
"""


def test_bump_preserves_other_layouts_and_quote_style(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(INDENTED)
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)

    bump(tmp_path, ImageUpdate(IMAGE, "v2", DIGEST))

    after = (tmp_path / "kustomization.yaml").read_text()
    assert changed_lines(INDENTED, after) == [
        "-    - name: zero-downtime-app",
        f"+    - digest: {DIGEST}",
        "+      name: zero-downtime-app",
        "-      newTag: 'v1'",
        "+      newTag: 'v2'",
    ]
    assert rendered_image(tmp_path) == f"example.org/app:v2@{DIGEST}"


@pytest.mark.parametrize("tag", ["1234", "3.2e2", "true", "null", "0x1F"])
def test_tags_yaml_would_misread_are_quoted(tmp_path, tag):
    (tmp_path / "kustomization.yaml").write_text(INDENTED.replace("newTag: 'v1'", "newTag: v1"))
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT)

    bump(tmp_path, ImageUpdate(IMAGE, tag))

    assert f'newTag: "{tag}"' in (tmp_path / "kustomization.yaml").read_text()
    assert rendered_image(tmp_path) == f"example.org/app:{tag}"


REFUSALS = {
    "unknown overlay": (["overlays/v7", "--tag", "v3"], "overlays/v7"),
    "unknown image": (["overlays/v2", "--tag", "v3", "--image", "nginx"], "'nginx'"),
    "tag with a space": (["overlays/v2", "--tag", "v 3"], "--tag 'v 3'"),
    "tag starting with a dot": (["overlays/v2", "--tag", ".v3"], "--tag '.v3'"),
    "tag too long": (["overlays/v2", "--tag", "v" * 129], "--tag 'vvv"),
    "tag with a slash": (["overlays/v2", "--tag", "release/3"], "--tag 'release/3'"),
    "short digest": (["overlays/v2", "--tag", "v3", "--digest", "sha256:abc"], "'sha256:abc'"),
    "upper-case digest": (
        ["overlays/v2", "--tag", "v3", "--digest", DIGEST.upper()],
        "--digest",
    ),
    "digest of another algorithm": (
        ["overlays/v2", "--tag", "v3", "--digest", "sha512:" + "0" * 64],
        "--digest 'sha512:",
    ),
    "upper-case repository": (
        ["overlays/v2", "--tag", "v3", "--new-name", "Example.org/App"],
        "--new-name 'Example.org/App'",
    ),
}


@pytest.mark.parametrize("args, named", REFUSALS.values(), ids=REFUSALS.keys())
def test_bump_refuses_bad_input_with_one_line(workdir, args, named):
    if "--image" not in args:
        args = [*args, "--image", IMAGE]
    before = {p: p.read_text() for p in workdir.glob("overlays/*/kustomization.yaml")}

    result = run_bump(*args, cwd=workdir)

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert named in result.stderr
    assert before == {p: p.read_text() for p in workdir.glob("overlays/*/kustomization.yaml")}


def test_bump_refuses_a_directory_without_kustomization(tmp_path):
    with pytest.raises(ReleaseError, match="no kustomization.yaml"):
        bump(tmp_path, ImageUpdate(IMAGE, "v3"))


def test_show_prints_what_the_overlay_sets(workdir, capsys):
    overlay = str(workdir / "overlays" / "v2")
    bump(workdir / "overlays" / "v2", ImageUpdate(IMAGE, "v5", DIGEST, REPOSITORY))

    assert show([overlay, "--image", IMAGE, "--field", "newName"]) == 0
    assert show([overlay, "--image", IMAGE, "--field", "digest"]) == 0
    assert show([overlay, "--image", IMAGE]) == 0
    assert capsys.readouterr().out.splitlines() == [
        REPOSITORY,
        DIGEST,
        f"{REPOSITORY}:v5@{DIGEST}",
    ]


def test_show_refuses_a_field_the_entry_lacks(workdir, capsys):
    assert show([str(workdir / "overlays" / "v1"), "--image", IMAGE, "--field", "digest"]) == 2
    assert "images[zero-downtime-app].digest: not set" in capsys.readouterr().err


# --no-downgrade: tags are commit SHAs, ordered by git ancestry.


@pytest.fixture
def history(workdir):
    """A git repository holding the overlays: main A -> B -> C, and a side branch D from A."""
    gitrepo.init(workdir)
    commits = {"A": gitrepo.commit_all(workdir, "A")}
    gitrepo.git(workdir, "branch", "side")
    commits["B"] = gitrepo.commit_all(workdir, "B")
    commits["C"] = gitrepo.commit_all(workdir, "C")
    gitrepo.git(workdir, "switch", "--quiet", "side")
    commits["D"] = gitrepo.commit_all(workdir, "D")
    gitrepo.git(workdir, "switch", "--quiet", "main")
    bump(workdir / "overlays" / "v2", ImageUpdate(IMAGE, commits["B"], DIGEST))
    return commits


def guarded(workdir: Path, tag: str) -> subprocess.CompletedProcess:
    return run_bump(
        "overlays/v2", "--image", IMAGE, "--tag", tag, "--digest", OTHER_DIGEST, "--no-downgrade",
        cwd=workdir,
    )  # fmt: skip


def current_tag(workdir: Path) -> str:
    return ImageRef.parse(rendered_image(workdir / "overlays" / "v2")).tag


def overlay_file(workdir: Path) -> Path:
    return workdir / "overlays" / "v2" / "kustomization.yaml"


def test_guard_moves_forward_to_a_descendant_commit(workdir, history):
    result = guarded(workdir, history["C"])

    assert result.returncode == 0, result.stderr
    assert "notice" not in result.stdout
    assert current_tag(workdir) == history["C"]
    assert f"newTag: {history['C']}" in overlay_file(workdir).read_text()


def test_guard_accepts_the_same_commit(workdir, history):
    assert guarded(workdir, history["B"]).returncode == 0


def test_an_older_release_is_a_clean_no_op_with_a_notice(workdir, history):
    # A re-run of the release of A after B was released: nothing to do, and not an error.
    path = overlay_file(workdir)
    text, mtime = path.read_text(), path.stat().st_mtime_ns

    result = guarded(workdir, history["A"])

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("zdt bump: notice: ")
    assert "overlays/v2/kustomization.yaml: images[zero-downtime-app].newTag" in line
    assert f"current {history['B']}" in line
    assert f"offered {history['A']}" in line
    assert path.read_text() == text
    assert path.stat().st_mtime_ns == mtime
    assert current_tag(workdir) == history["B"]


def test_the_older_release_notice_comes_from_bump_itself(workdir, history):
    result = bump(
        workdir / "overlays" / "v2", ImageUpdate(IMAGE, history["A"], DIGEST), no_downgrade=True
    )

    assert not result.changed
    assert result.notice and "an older release, left unchanged" in result.notice
    assert result.reference.endswith(f":{history['B']}@{DIGEST}")


def test_guard_refuses_a_diverged_commit(workdir, history):
    text = overlay_file(workdir).read_text()

    result = guarded(workdir, history["D"])

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "images[zero-downtime-app].newTag" in result.stderr
    assert "diverged" in result.stderr
    assert overlay_file(workdir).read_text() == text


def test_without_the_guard_the_same_move_goes_through(workdir, history):
    result = run_bump("overlays/v2", "--image", IMAGE, "--tag", history["A"], cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert current_tag(workdir) == history["A"]


def test_guard_refuses_a_commit_missing_from_the_history(workdir, history):
    result = guarded(workdir, "f" * 40)

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"--tag '{'f' * 40}': commit not in the local history" in result.stderr
    assert current_tag(workdir) == history["B"]


@pytest.mark.parametrize("tag", ["v3", "A" * 40, "abc123"], ids=["name", "upper-case", "short"])
def test_guard_needs_a_full_commit_sha_as_tag(workdir, history, tag):
    result = guarded(workdir, tag)

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"--tag '{tag}'" in result.stderr
    assert current_tag(workdir) == history["B"]


def test_guard_lets_any_commit_replace_a_seed_tag(workdir, history):
    # overlays/v1 still has its hand-written tag v1.
    result = run_bump(
        "overlays/v1", "--image", IMAGE, "--tag", history["A"], "--no-downgrade", cwd=workdir
    )

    assert result.returncode == 0, result.stderr


# zdt push: commit as the bot, push, and rebase when the branch moved on.


@pytest.fixture
def remote_and_clones(tmp_path):
    """A bare 'origin' with one commit, the runner's clone and a colleague's clone of it."""
    origin = tmp_path / "origin.git"
    gitrepo.git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    seed = gitrepo.init(tmp_path / "seed")
    (seed / "overlay.txt").write_text("tag: one\n")
    (seed / "other.txt").write_text("x\n")
    gitrepo.commit_all(seed, "seed")
    gitrepo.git(seed, "push", "--quiet", str(origin), "main")
    clones = []
    for name in ("runner", "colleague"):
        gitrepo.git(tmp_path, "clone", "--quiet", str(origin), name)
        clones.append(tmp_path / name)
    return origin, *clones


def run_push(repo: Path, *paths: str) -> subprocess.CompletedProcess:
    args = ["--message", "release: two [skip ci]", "--pause", "0", "--repo", str(repo), "--"]
    return zdt("push", *args, *paths, env=gitrepo.ISOLATED, timeout=120)


def test_push_rebases_onto_a_branch_that_moved_on(remote_and_clones):
    origin, runner, colleague = remote_and_clones
    (colleague / "other.txt").write_text("y\n")
    gitrepo.commit_all(colleague, "unrelated change")
    gitrepo.git(colleague, "push", "--quiet", "origin", "main")
    (runner / "overlay.txt").write_text("tag: two\n")

    result = run_push(runner, "overlay.txt")

    assert result.returncode == 0, result.stderr
    assert "push rejected (fetch first, attempt 1/5)" in result.stdout
    assert "attempt 2" in result.stdout
    log = gitrepo.git(origin, "log", "--format=%s|%an", "main").splitlines()
    assert log == [
        "release: two [skip ci]|github-actions[bot]",
        "unrelated change|Test Author",
        "seed|Test Author",
    ]  # noqa: E501


def test_push_gives_up_on_a_conflicting_newer_change(remote_and_clones):
    origin, runner, colleague = remote_and_clones
    (colleague / "overlay.txt").write_text("tag: three\n")
    newer = gitrepo.commit_all(colleague, "newer release")
    gitrepo.git(colleague, "push", "--quiet", "origin", "main")
    (runner / "overlay.txt").write_text("tag: two\n")

    result = run_push(runner, "overlay.txt")

    assert result.returncode == 1
    assert "rebase onto origin/main failed" in result.stderr
    assert gitrepo.git(origin, "rev-parse", "main") == newer
    assert not (runner / ".git" / "rebase-merge").exists()


def test_push_with_nothing_to_commit_does_nothing(remote_and_clones):
    origin, runner, _ = remote_and_clones
    head = gitrepo.git(origin, "rev-parse", "main")

    result = run_push(runner, "overlay.txt")

    assert result.returncode == 0, result.stderr
    assert "nothing to commit" in result.stdout
    assert gitrepo.git(origin, "rev-parse", "main") == head


def refuse_every_push(origin: Path) -> Path:
    """A pre-receive hook as branch protection answers: git's `remote:` line, then refusal.
    Each run is counted in a file beside the repository."""
    runs = origin.parent / "hook-runs"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"echo run >> '{runs}'\n"
        "echo 'GH006: Protected branch update failed for refs/heads/main.' >&2\n"
        "exit 1\n"
    )
    hook.chmod(0o755)
    return runs


def test_push_refused_by_the_remote_fails_at_once_with_gits_message(remote_and_clones):
    origin, runner, _ = remote_and_clones
    runs = refuse_every_push(origin)
    head = gitrepo.git(origin, "rev-parse", "main")
    (runner / "overlay.txt").write_text("tag: two\n")

    result = zdt(
        "push", "--message", "release: two", "--repo", str(runner), "--", "overlay.txt",
        env=gitrepo.ISOLATED, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    # The hook's own words and git's reason, then one line saying it was not retried.
    assert "remote: GH006: Protected branch update failed for refs/heads/main." in result.stderr
    assert "[remote rejected] (pre-receive hook declined)" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "zdt push: push to origin/main failed (pre-receive hook declined); not retried"
    )
    assert "rebasing" not in result.stdout
    assert runs.read_text().splitlines() == ["run"]
    assert gitrepo.git(origin, "rev-parse", "main") == head


def test_push_to_an_unreachable_remote_fails_at_once(remote_and_clones, tmp_path):
    _, runner, _ = remote_and_clones
    (runner / "overlay.txt").write_text("tag: two\n")
    nowhere = tmp_path / "nowhere.git"

    result = zdt(
        "push", "--message", "release: two", "--remote", str(nowhere), "--repo", str(runner),
        "--", "overlay.txt", env=gitrepo.ISOLATED, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    assert "does not appear to be a git repository" in result.stderr
    assert result.stderr.splitlines()[-1] == f"zdt push: push to {nowhere}/main failed; not retried"
    assert "rebasing" not in result.stdout


def test_push_gives_up_behind_after_its_last_attempt(remote_and_clones):
    _, runner, colleague = remote_and_clones
    (runner / "overlay.txt").write_text("tag: two\n")
    (colleague / "other.txt").write_text("y\n")
    gitrepo.commit_all(colleague, "unrelated change")
    gitrepo.git(colleague, "push", "--quiet", "origin", "main")

    result = zdt(
        "push", "--message", "release: two", "--attempts", "1", "--repo", str(runner), "--",
        "overlay.txt", env=gitrepo.ISOLATED, timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    assert "still behind after 1 attempts" in result.stderr


# A git that never answers: one line naming the command, the command's failure status, and no
# traceback (tools/git.py kills it after ZDT_GIT_TIMEOUT seconds).


def hanging_git(tmp_path: Path) -> dict[str, str]:
    """The environment of a run whose `git` sleeps instead of answering (exec: the process
    subprocess kills is the sleep itself), and whose git timeout is one second."""
    bin_dir = tmp_path / "hanging-bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ZDT_GIT_TIMEOUT": "1"}


def test_push_reports_a_git_that_never_answers_in_one_line(tmp_path):
    (tmp_path / "overlay.txt").write_text("tag: two\n")

    result = zdt(
        "push", "--message", "release: two", "--repo", str(tmp_path), "--", "overlay.txt",
        env=hanging_git(tmp_path), timeout=30,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "zdt push: git add -- overlay.txt: no answer after 1 s, stopped"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_bump_reports_a_git_that_never_answers_in_one_line(workdir, tmp_path):
    bump(workdir / "overlays" / "v2", ImageUpdate(IMAGE, "a" * 40, DIGEST))

    result = zdt(
        "bump", "overlays/v2", "--image", IMAGE, "--tag", "b" * 40, "--digest", OTHER_DIGEST,
        "--no-downgrade", cwd=workdir, env=hanging_git(tmp_path), timeout=30,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "zdt bump: git rev-parse --git-dir: no answer after 1 s, stopped"
    ]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_git_timeout_is_one_line(tmp_path, value):
    (tmp_path / "overlay.txt").write_text("tag: two\n")

    result = zdt(
        "push", "--message", "release: two", "--repo", str(tmp_path), "--", "overlay.txt",
        env={"ZDT_GIT_TIMEOUT": value}, timeout=30,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"zdt push: ZDT_GIT_TIMEOUT={value!r}: not a positive number of seconds"
    ]

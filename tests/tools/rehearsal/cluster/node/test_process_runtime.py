"""Any server the manifests name, in process mode (tools/rehearsal/cluster/node/runtime.py): the
container's command, args, env and workingDir from the render, run as they are; what cannot run
on this host is a one-line error naming the container, with exit status 2."""

import asyncio
from pathlib import Path

import pytest

from tools.rehearsal.cli import main as cli_main
from tools.rehearsal.cluster.node.container import Launch
from tools.rehearsal.cluster.node.runtime import ProcessRuntime, expand
from tools.rehearsal.errors import RehearsalError
from tools.rehearsal.manifests import variants
from tools.rehearsal.manifests.sources import load_overlay
from tools.repo import ROOT

V2 = ROOT / "overlays/v2"
CONTAINER = variants.CONTAINER


def overlay(tmp_path: Path, **fields) -> Path:
    """overlays/v2 with the container's `fields` set."""
    ops = [variants.put(f"{CONTAINER}/{name}", value) for name, value in fields.items()]
    return variants.write(V2, ops, tmp_path / "v2")


def refusal(tmp_path: Path, **fields) -> str:
    target = overlay(tmp_path, **fields)
    with pytest.raises(RehearsalError) as error:
        ProcessRuntime("app").check([load_overlay(target, "v2")])
    return str(error.value)


def test_an_executable_not_on_this_host_is_named_with_its_container(tmp_path):
    assert refusal(tmp_path, command=["no-such-server", "--port", "8080"]) == (
        "v2: container app: executable 'no-such-server' not found on this host"
        " (--runtime process runs the container's command here)"
    )


def test_the_cli_says_it_in_one_line_with_exit_status_2(tmp_path, capsys):
    target = overlay(tmp_path, command=["no-such-server"])
    assert cli_main(["--to", str(target), "--quiet", "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rehearsal: error: ")
    assert "container app: executable 'no-such-server' not found on this host" in line


def test_args_without_a_command_need_the_images_cmd(tmp_path):
    assert "args without a command replace the image's CMD" in refusal(tmp_path, args=["-v"])


def test_a_working_dir_not_on_this_host_is_refused(tmp_path):
    message = refusal(tmp_path, command=["python3", "-m", "app"], workingDir="/no/such/dir")
    assert message.endswith(
        "container app: workingDir '/no/such/dir' is not a directory on this host"
    )


def test_references_expand_as_the_kubelet_expands_them():
    env = {"PORT": "8080", "NAME": "web"}
    assert expand("--bind=0.0.0.0:$(PORT)", env) == "--bind=0.0.0.0:8080"
    assert expand("$(MISSING) and $$(PORT) and $$", env) == "$(MISSING) and $(PORT) and $"


def test_the_command_args_env_and_working_dir_reach_the_process(tmp_path):
    """The kubelet's expansion in args, the manifest's env in the process, its cwd the
    workingDir; and `python` is this Python."""
    work = tmp_path / "work"
    work.mkdir()
    launch = Launch(
        "app-1",
        "app:v1",
        "v1",
        "127.0.0.2",
        8080,
        {"GREETING": "hello"},
        tmp_path / "logs" / "app-1.log",
        command=("sh", "-c"),
        args=(
            'echo "$(GREETING) $GREETING from $(pwd)"; python -c "import sys; print(sys.prefix)"',
        ),
        working_dir=str(work),
    )
    runtime = ProcessRuntime("app")

    async def scenario() -> int:
        container = await runtime.start(launch)
        try:
            return await asyncio.wait_for(container.wait(), 30)
        finally:
            await container.kill()
            await runtime.cleanup()

    assert asyncio.run(scenario()) == 0
    said, prefix = launch.log_path.read_text().splitlines()
    assert said == f"hello hello from {work}"
    assert Path(prefix) == Path(runtime.python).parent.parent

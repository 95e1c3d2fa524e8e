"""`zdt`: the one command line the Makefile, the workflows, the docs and the tests call."""

import tomllib

import pytest

from tests.zdt import SCRIPT, zdt
from tools.cli import COMMANDS
from tools.repo import ROOT


def test_the_script_pyproject_declares_is_installed_and_lists_every_command():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"zdt": "tools.cli:main"}
    assert SCRIPT.is_file(), "run `make` first: it installs the project and its zdt script"
    result = zdt("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = zdt(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: zdt {command}")


def test_an_unknown_command_is_a_one_line_error_with_status_2():
    result = zdt("deploy")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "zdt: unknown command 'deploy' (one of: " + ", ".join(COMMANDS) + ")"
    ]


def test_no_command_prints_the_usage_with_status_2():
    result = zdt()
    assert result.returncode == 2
    assert result.stdout.startswith("usage: zdt COMMAND")


def test_the_makefile_calls_the_command_line():
    makefile = (ROOT / "Makefile").read_text()
    for command in ("zdt demo", "zdt validate", "zdt bench"):
        assert f"$(BIN)/{command}" in makefile

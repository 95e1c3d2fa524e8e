"""`make test` runs pytest on several pytest-xdist workers with `--dist loadgroup`; the
container tests stay on one worker (tests/conftest.py). pytest-xdist stops grouping silently on
some pytest releases (pytest-dev/pytest-xdist#1386: pytest 9.2), so this runs the same hook on a
small suite of its own and checks where each test ran."""

import os
import re
import subprocess
import sys
from collections import defaultdict

from tools.repo import ROOT

SUITE = """
import pytest

@pytest.mark.container
@pytest.mark.parametrize("n", range(4))
def test_container(n):
    pass

@pytest.mark.rehearsal
@pytest.mark.parametrize("n", range(4))
def test_rehearsal(n):
    pass

@pytest.mark.parametrize("n", range(8))
def test_other(n):
    pass
"""
CONFTEST = "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"


def test_the_container_tests_stay_on_one_worker_and_the_rest_spreads(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    container\n    rehearsal\n")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-v",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    workers = defaultdict(set)
    for worker, test in re.findall(r"\[(gw\d)\] .*PASSED \S+::(test_\w+)", result.stdout):
        workers[test].add(worker)
    assert len(workers["test_container"]) == 1, result.stdout
    assert len(workers["test_rehearsal"] | workers["test_other"]) > 1, result.stdout
    assert result.stdout.count(" PASSED ") == 16

"""The e2e load generator and its check, run here against a real `python -m app` on loopback.

The cluster run (tools/e2e/run.sh) only happens on GitHub or a real cluster; what can be proven here
is that the generator counts what it sees, including failures, and that the check judges it.
"""

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tools.e2e.check_load import main as check_load
from tools.kustomize import find, render
from tools.repo import ROOT
from tools.serverprocess import free_port

LOADGEN = ROOT / "tools" / "e2e" / "loadgen.py"
SUMMARY_PREFIX = "LOADGEN-SUMMARY "


def start_loadgen(url: str, tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(LOADGEN), "--url", url, "--concurrency", "2",
         "--stop-file", str(tmp_path / "stop"), "--progress-seconds", "0.2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen) -> tuple[str, dict]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith(SUMMARY_PREFIX)]
    return out, json.loads(line[len(SUMMARY_PREFIX) :])


def run_loadgen(url: str, tmp_path: Path, seconds: float = 1.5) -> tuple[str, dict]:
    return finish(start_loadgen(url, tmp_path, "--max-seconds", str(seconds)))


def wait_for_progress(process: subprocess.Popen, ok: int) -> None:
    """Read progress lines until the run has counted `ok` successful requests."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("progress") and int(line.split("ok=")[1].split()[0]) >= ok:
            return
    raise TimeoutError("load generator made no progress")


def write_log(tmp_path: Path, out: str) -> str:
    path = tmp_path / "loadgen.log"
    path.write_text(out)
    return str(path)


def test_counts_every_success_and_the_version(start_server, tmp_path):
    server = start_server(APP_VERSION="e2e-v1", WEB_CONCURRENCY="1")

    out, summary = run_loadgen(server.url + "/status", tmp_path)

    assert summary["stopped_by"] == "max-seconds"
    assert summary["requests"] > 0
    assert summary["failures"] == 0
    assert summary["versions"] == {"e2e-v1": summary["requests"]}
    assert check_load([write_log(tmp_path, out), "--expect-version", "e2e-v1"]) == 0


def test_counts_every_non_2xx_answer(start_server, tmp_path):
    server = start_server(WEB_CONCURRENCY="1")

    _, summary = run_loadgen(server.url + "/no-such-page", tmp_path)

    assert summary["requests"] > 0
    assert summary["failures"] == summary["requests"]
    assert summary["non_2xx"] == {"404": summary["requests"]}


def test_counts_every_refused_connection(tmp_path):
    out, summary = run_loadgen(f"http://127.0.0.1:{free_port()}/status", tmp_path, seconds=1)

    assert summary["requests"] > 0
    assert summary["failures"] == summary["requests"]
    assert summary["errors"] == {"ConnectionRefusedError": summary["requests"]}
    assert check_load([write_log(tmp_path, out)]) == 1


def test_a_server_going_away_mid_run_is_counted_and_fails_the_check(start_server, tmp_path):
    server = start_server(WEB_CONCURRENCY="1")
    process = start_loadgen(server.url + "/status", tmp_path, "--max-seconds", "60")
    wait_for_progress(process, ok=20)

    server.signal(signal.SIGINT)  # quick stop, no draining: what a naive shutdown looks like
    assert server.wait(timeout=30) is not None
    wait_for_progress_failures(process)
    (tmp_path / "stop").touch()
    out, summary = finish(process)

    assert summary["stopped_by"] == "stop-file"
    assert summary["ok"] >= 20
    assert summary["failures"] > 0
    assert check_load([write_log(tmp_path, out)]) == 1


def wait_for_progress_failures(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("progress") and not line.rstrip().endswith("failures=0"):
            return
    raise TimeoutError("no failure counted after the server stopped")


def test_stop_file_ends_the_run_early(start_server, tmp_path):
    server = start_server(WEB_CONCURRENCY="1")
    process = start_loadgen(server.url + "/status", tmp_path, "--max-seconds", "120")
    wait_for_progress(process, ok=1)
    stopped_at = time.monotonic()

    (tmp_path / "stop").touch()
    _, summary = finish(process)

    assert summary["stopped_by"] == "stop-file"
    assert time.monotonic() - stopped_at < 30


def test_sigterm_ends_the_run_with_a_summary(start_server, tmp_path):
    server = start_server(WEB_CONCURRENCY="1")
    process = start_loadgen(server.url + "/status", tmp_path, "--max-seconds", "120")
    wait_for_progress(process, ok=1)

    process.send_signal(signal.SIGTERM)
    _, summary = finish(process)

    assert summary["stopped_by"] == "signal"
    assert summary["failures"] == 0


def test_sigint_ends_the_run_with_a_summary(start_server, tmp_path):
    server = start_server(WEB_CONCURRENCY="1")
    process = start_loadgen(server.url + "/status", tmp_path, "--max-seconds", "120")
    wait_for_progress(process, ok=1)
    stopped_at = time.monotonic()

    process.send_signal(signal.SIGINT)
    _, summary = finish(process)

    assert summary["stopped_by"] == "signal"
    assert summary["failures"] == 0
    assert time.monotonic() - stopped_at < 30


def test_loadgen_refuses_bad_arguments():
    result = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", "ftp://x/"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--url 'ftp://x/'" in result.stderr


def summary_log(tmp_path: Path, **fields) -> str:
    summary = {"requests": 500, "failures": 0, "versions": {"v1": 300, "v2": 200}, **fields}
    return write_log(tmp_path, "progress ...\n" + SUMMARY_PREFIX + json.dumps(summary) + "\n")


@pytest.mark.parametrize(
    "fields, args, status",
    [
        ({}, ["--expect-version", "v1", "--expect-version", "v2", "--min-requests", "500"], 0),
        ({"failures": 1, "non_2xx": {"502": 1}}, [], 1),
        ({}, ["--expect-version", "v3"], 1),
        ({}, ["--min-requests", "501"], 1),
        ({"versions": {"v1": 500}}, ["--expect-version", "v1", "--only"], 0),
        ({}, ["--expect-version", "v1", "--only"], 1),
    ],
    ids=[
        "pass",
        "one failure",
        "version never seen",
        "too few requests",
        "only the old version",
        "another version answered",
    ],
)
def test_check_verdicts(tmp_path, fields, args, status):
    assert check_load([summary_log(tmp_path, **fields), *args]) == status


def test_check_without_a_summary_is_an_error(tmp_path, capsys):
    assert check_load([write_log(tmp_path, "the pod crashed\n")]) == 2
    assert "no line starting with 'LOADGEN-SUMMARY'" in capsys.readouterr().err


def test_the_job_ships_this_very_script_and_targets_the_service():
    resources = render(ROOT / "tools" / "e2e-job")
    (config_map,) = find(resources, "ConfigMap")
    (job,) = find(resources, "Job")
    assert config_map["data"]["loadgen.py"] == LOADGEN.read_text()
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    assert job["spec"]["activeDeadlineSeconds"] > 0  # bounded even if nobody stops it
    (service,) = find(render(ROOT / "overlays" / "v2"), "Service")
    assert {r["metadata"]["namespace"] for r in resources} == {service["metadata"]["namespace"]}
    (container,) = pod["containers"]
    assert f"--url=http://{service['metadata']['name']}/status" in container["args"]


def test_run_script_passes_shellcheck():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), str(ROOT / "tools" / "e2e" / "run.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


ANALYSIS = ROOT / "tools" / "e2e" / "analysis.py"


@pytest.mark.parametrize(
    ("server", "version", "passes"),
    [
        ("app", "v7", True),  # N requests, all 2xx, all from the expected version
        ("app", "any", True),
        ("app", "v6", False),  # another version answered: the analysis must fail
        ("broken", "v7", False),  # answers 500
    ],
)
def test_the_analysis_passes_and_fails_as_its_verdict_says(start_server, server, version, passes):
    target = start_server(server, APP_VERSION="v7")
    result = subprocess.run(
        [sys.executable, str(ANALYSIS), f"--url={target.url}/status", "--requests=120"]
        + [f"--expect-version={version}", "--max-seconds=20", "--await-version-seconds=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == (0 if passes else 1), result.stdout
    verdict = [line for line in result.stdout.splitlines() if line.startswith("analysis ")]
    assert verdict[0].startswith("analysis passed" if passes else "analysis FAILED")


class LateSwitch(http.server.BaseHTTPRequestHandler):
    """Answers as v1 until the test switches it to v2: a node's late view of the Service."""

    version = "v1"
    asked = threading.Event()  # set once a few requests came while it answered v1
    count = 0

    def do_GET(self):
        type(self).count += 1
        if type(self).count >= 3:
            type(self).asked.set()
        self.send_response(200)
        self.send_header("X-App-Version", type(self).version)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"OK\n")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("await_seconds", [30, 0])
def test_the_analysis_waits_for_the_new_version_before_it_measures(await_seconds):
    LateSwitch.version, LateSwitch.count = "v1", 0
    LateSwitch.asked.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LateSwitch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/status"
    analysis = subprocess.Popen(
        [sys.executable, str(ANALYSIS), f"--url={url}", "--requests=50", "--expect-version=v2",
         "--max-seconds=20", f"--await-version-seconds={await_seconds}"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert LateSwitch.asked.wait(timeout=30)
        if await_seconds:
            LateSwitch.version = "v2"  # the view has moved on
        out, _ = analysis.communicate(timeout=60)
    finally:
        server.shutdown()
    if await_seconds:
        assert analysis.returncode == 0, out
        assert "analysis: v2 answering after" in out
    else:
        # Measured at once, through the late view: the good release fails on v1's answers.
        assert analysis.returncode == 1, out
        assert "analysis: v2 not answering after 0 s; measuring anyway" in out

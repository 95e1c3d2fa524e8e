"""The container image, built and run with a real engine (podman or docker).

The `engine` and `images` fixtures (tests/conftest.py) skip these tests without an engine, unless
REQUIRE_CONTAINER_ENGINE=1 (as in CI), which turns a missing engine into a failure. Run them
alone with `pytest -m container`.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tools.image.engine import Container, http_status
from tools.repo import ROOT

APP_UID = "10001"
# Short drain and graceful stop keep the stop test quick; still long enough to observe.
DRAIN = {"DRAIN_SECONDS": "4", "GRACEFUL_TIMEOUT": "5"}
STOP_TIMEOUT = 30


@pytest.fixture(scope="module")
def running(engine, images):
    """One container per version, read-only with a tmpfs /tmp, as the manifests run it.

    Yields (container, seconds from `run` to the first 200 on /ready) per version.
    """
    started: dict[str, tuple[Container, float]] = {}
    try:
        for version, image in images.items():
            begin = time.monotonic()
            container = engine.start(image)
            started[version] = (container, 0.0)
            container.wait_ready()
            started[version] = (container, time.monotonic() - begin)
        yield started
    finally:
        for container, _ in started.values():
            container.remove()


def report(capsys, line: str) -> None:
    """Print a benchmark figure on the terminal, past pytest's output capture."""
    with capsys.disabled():
        print(f"\n[image] {line}")


@pytest.mark.container
def test_image_builds_for_each_version_with_its_labels(engine, images, capsys):
    for version, image in images.items():
        label = engine.command(
            "image", "inspect", "--format",
            '{{index .Config.Labels "org.opencontainers.image.version"}}|{{.Config.User}}', image,
        )  # fmt: skip
        assert label.strip() == f"{version}|{APP_UID}:{APP_UID}"
        report(capsys, f"{image}: {engine.image_size(image) / 1e6:.0f} MB ({engine.name})")


@pytest.mark.container
def test_runtime_image_holds_only_the_app_and_its_virtualenv(engine, images):
    def present(*paths: str) -> list[str]:
        script = " ".join(f"[ -e {path} ] && echo {path};" for path in paths)
        return engine.command("run", "--rm", images["v1"], "sh", "-c", script + " true").split()

    assert engine.command("run", "--rm", images["v1"], "ls", "/srv").split() == ["app"]
    assert present("/srv/app/__main__.py", "/opt/venv/bin/gunicorn") == [
        "/srv/app/__main__.py",
        "/opt/venv/bin/gunicorn",
    ]
    assert present("/usr/bin/gcc", "/usr/bin/cc", "/root/.cache/pip", "/srv/tests") == []
    # A Kubernetes exec preStop hook may run `sleep`.
    assert engine.command("run", "--rm", images["v1"], "sh", "-c", "command -v sleep").strip()


@pytest.mark.container
def test_container_serves_its_version(running):
    for version, (container, _) in running.items():
        status = requests.get(container.url + "/status", timeout=5)
        assert (status.status_code, status.text) == (200, f"OK {version}\n")
        assert status.headers["X-App-Version"] == version
        assert http_status(container.url + "/ready") == 200
        assert http_status(container.url + "/healthz") == 200


@pytest.mark.container
def test_runs_as_non_root_on_a_read_only_root_filesystem(running):
    container, _ = running["v1"]
    assert container.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert container.exec("id", "-u").strip() == APP_UID
    writes = container.exec(
        "sh", "-c", "touch /srv/probe 2>/dev/null && echo srv; touch /tmp/probe && echo tmp"
    )
    assert writes.split() == ["tmp"]


@pytest.mark.container
def test_pid_1_is_the_gunicorn_master(running):
    container, _ = running["v1"]
    assert container.exec("cat", "/proc/1/cmdline").split("\0")[:3] == ["python", "-m", "app"]
    worker_pid = requests.get(container.url + "/status", timeout=5).headers["X-Worker-Pid"]
    worker_status = container.exec("cat", f"/proc/{worker_pid}/status")
    assert "\nPPid:\t1\n" in worker_status  # the worker that answered was forked by PID 1


@pytest.mark.container
def test_invalid_setting_exits_2_naming_the_variable(engine, images):
    result = engine.run_quietly("run", "--rm", "--env", "WEB_CONCURRENCY=zero", images["v1"])
    assert result.returncode == 2
    assert "WEB_CONCURRENCY" in result.stderr


@pytest.mark.container
def test_stop_drains_then_exits_0_before_the_timeout(engine, images):
    with engine.start(images["v2"], DRAIN) as container:
        container.wait_ready()
        started = time.monotonic()
        stopping = container.begin_stop(STOP_TIMEOUT)
        try:
            while http_status(container.url + "/ready") != 503:
                assert stopping.poll() is None, "stopped without /ready ever saying 503"
                time.sleep(0.05)
            during_drain = requests.get(container.url + "/status", timeout=5)
            assert (during_drain.status_code, during_drain.text) == (200, "OK v2\n")
            assert during_drain.headers["Connection"] == "close"
            stopping.wait(STOP_TIMEOUT + 30)
        finally:
            if stopping.poll() is None:
                stopping.kill()
        elapsed = time.monotonic() - started
        assert stopping.returncode == 0, stopping.stderr.read()
        assert container.wait_exit(timeout=30) == 0, container.logs()
        assert elapsed < STOP_TIMEOUT, f"stop took {elapsed:.1f}s: SIGKILL, not a graceful exit"


@pytest.mark.container
def test_startup_time(running, capsys):
    for version, (_, seconds) in running.items():
        report(capsys, f"{version}: {seconds:.2f}s from `run` to the first 200 on /ready")


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

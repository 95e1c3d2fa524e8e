"""Run podman or docker: pick the engine, start containers from an image, signal and stop them.

The engine is `CONTAINER_ENGINE` when set (podman or docker), otherwise the first of podman and
docker that answers `info`. As root with runc installed and `CONTAINERS_CONF` unset, podman reads
tools/image/containers.conf (runc, inherited resource limits, no systemd), which is what a bare
Debian machine needs; set `CONTAINERS_CONF` to use another file, or to an empty value to use only
the machine's own configuration.
"""

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CONTAINERS_CONF = Path(__file__).resolve().with_name("containers.conf")
ENGINES = ("podman", "docker")
APP_PORT = 8080
# Every container started here carries this label, so leftovers are easy to find and remove.
LABEL = "zero-downtime-gitops.container=1"


class EngineError(RuntimeError):
    """A container engine command failed, or CONTAINER_ENGINE names no known engine."""


class EngineUnavailable(EngineError):
    """No usable container engine on this machine."""


def _engine_environment(name: str) -> dict[str, str]:
    environ = dict(os.environ)
    if name == "podman":
        if "CONTAINERS_CONF" not in environ and os.geteuid() == 0 and shutil.which("runc"):
            environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    else:
        environ.setdefault("DOCKER_BUILDKIT", "1")  # build secrets need BuildKit
    return environ


@dataclass(frozen=True)
class Engine:
    name: str
    env: dict[str, str] = field(repr=False, compare=False)

    @classmethod
    def named(cls, name: str) -> "Engine":
        return cls(name, _engine_environment(name))

    def run_quietly(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `ENGINE ARGS...` and return the finished process, whatever its exit code."""
        argv = [self.name, *args]
        try:
            return subprocess.run(
                argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise EngineError(f"`{' '.join(argv)}` did not finish within {timeout}s") from error

    def command(self, *args: str, timeout: float = 120) -> str:
        """Run `ENGINE ARGS...` and return its stdout; raise EngineError naming it on failure."""
        result = self.run_quietly(*args, timeout=timeout)
        if result.returncode != 0:
            # The last lines name the cause (a build's failing step comes after its output).
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-10:]
            raise EngineError(
                f"`{' '.join(result.args)}` exited with {result.returncode}:\n" + "\n".join(detail)
            )
        return result.stdout

    def popen(self, *args: str) -> subprocess.Popen:
        """Start `ENGINE ARGS...` without waiting (for example a `stop` to watch while it runs)."""
        return subprocess.Popen(
            [self.name, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def problem(self) -> str | None:
        """Why this engine cannot be used, or None when `ENGINE info` works."""
        if shutil.which(self.name) is None:
            return "not installed"
        try:
            self.command("info", timeout=60)
        except EngineError as error:
            return str(error).splitlines()[-1]
        return None

    def image_exists(self, image: str) -> bool:
        return self.run_quietly("image", "inspect", image).returncode == 0

    def image_size(self, image: str) -> int:
        return int(self.command("image", "inspect", "--format", "{{.Size}}", image))

    def run_args(
        self,
        image: str,
        env: dict[str, str] | None = None,
        *,
        name: str,
        publish: str = f"127.0.0.1::{APP_PORT}",
        network: str | None = None,
        read_only: bool = True,
        user: str | None = None,
        extra_args: tuple[str, ...] = (),
        command: tuple[str, ...] = (),
    ) -> list[str]:
        """The `run --detach` arguments (without the engine's name) for one labelled container.

        `publish` is `[HOST_ADDRESS:][HOST_PORT]:CONTAINER_PORT`; a `network` (podman's
        `ns:PATH`: a network namespace to join) replaces it, as nothing is published there; with
        `read_only` the root
        filesystem is read-only and only /tmp is writable (a tmpfs), as in the Kubernetes
        manifests; `user` is `UID[:GID]` (default: the image's USER); `command` follows the
        image (it replaces its CMD).
        """
        args = ["run", "--detach", "--name", name, "--label", LABEL]
        args += ["--network", network] if network else ["--publish", publish]
        if read_only:
            args += ["--read-only", "--tmpfs", "/tmp"]
        if user:
            args += ["--user", user]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        return [*args, *extra_args, image, *command]

    def start(
        self,
        image: str,
        env: dict[str, str] | None = None,
        *,
        name: str | None = None,
        read_only: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> "Container":
        """Start a detached container whose port 8080 is published on a free 127.0.0.1 port."""
        name = name or f"zdt-{uuid.uuid4().hex[:12]}"
        self.command(
            *self.run_args(image, env, name=name, read_only=read_only, extra_args=extra_args)
        )
        container = Container(self, name)
        try:
            container.port = container.published_port()
        except EngineError:
            container.remove()
            raise
        return container

    def remove(self, *names: str) -> None:
        """Remove containers, killing those still running first (no graceful stop: podman's
        `rm --force` would send SIGTERM and wait)."""
        if names:
            self.run_quietly("kill", "--signal", "KILL", *names)
            self.run_quietly("rm", "--force", *names)

    def remove_prefixed(self, prefix: str) -> list[str]:
        """Remove every container whose name starts with `prefix`; return their IDs."""
        found = self.command("ps", "--all", "--quiet", "--filter", f"name=^{prefix}").split()
        self.remove(*found)
        return found


@dataclass
class Container:
    engine: Engine
    name: str
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def published_port(self) -> int:
        # "127.0.0.1:41234" (one line per binding)
        binding = self.engine.command("port", self.name, f"{APP_PORT}/tcp").split()[0]
        return int(binding.rsplit(":", 1)[1])

    def state(self) -> dict:
        """The engine's State of the container: Status, Running, ExitCode, Pid, ..."""
        return json.loads(self.engine.command("inspect", "--format", "{{json .State}}", self.name))

    def inspect(self, template: str) -> str:
        return self.engine.command("inspect", "--format", template, self.name).strip()

    def is_running(self) -> bool:
        return bool(self.state()["Running"])

    def exec(self, *command: str) -> str:
        return self.engine.command("exec", self.name, *command)

    def logs(self) -> str:
        result = self.engine.run_quietly("logs", self.name)
        return result.stdout + result.stderr

    def wait_ready(self, timeout: float = 60) -> float:
        """Poll /ready until it answers 200; return the seconds that took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if http_status(self.url + "/ready") == 200:
                return time.monotonic() - started
            if not self.is_running():
                raise EngineError(f"container {self.name} exited before ready:\n{self.logs()}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}/ready not 200 within {timeout}s:\n{self.logs()}")

    def send_signal(self, signal: str) -> None:
        """Send a signal (such as TERM, INT or QUIT) to the container's PID 1."""
        self.engine.command("kill", "--signal", signal, self.name)

    def begin_stop(self, timeout: int) -> subprocess.Popen:
        """Start `ENGINE stop --time TIMEOUT`: SIGTERM, then SIGKILL after TIMEOUT seconds."""
        return self.engine.popen("stop", "--time", str(timeout), self.name)

    def stop(self, timeout: int) -> None:
        self.engine.command("stop", "--time", str(timeout), self.name, timeout=timeout + 60)

    def wait_exit(self, timeout: float) -> int:
        """Wait until the container has exited and return its exit code."""
        return int(self.engine.command("wait", self.name, timeout=timeout).split()[0])

    def remove(self) -> None:
        """Remove the container, killing it first if it still runs (no graceful stop)."""
        self.engine.remove(self.name)

    def __enter__(self) -> "Container":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


def http_status(url: str, timeout: float = 2) -> int | None:
    """The HTTP status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def find_engine() -> Engine:
    """The engine named by CONTAINER_ENGINE, else the first working one of podman and docker."""
    chosen = os.environ.get("CONTAINER_ENGINE", "").strip()
    if chosen and chosen not in ENGINES:
        raise EngineError(f"CONTAINER_ENGINE={chosen!r}: expected one of {', '.join(ENGINES)}")
    reasons = []
    for name in [chosen] if chosen else ENGINES:
        engine = Engine.named(name)
        problem = engine.problem()
        if problem is None:
            return engine
        reasons.append(f"{name}: {problem}")
    raise EngineUnavailable("no usable container engine (" + "; ".join(reasons) + ")")

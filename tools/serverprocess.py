"""Start a server (`python -m app`, or a fixture) as a real process on loopback."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tools.repo import ROOT
from tools.servers import server_module


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A gunicorn master started with `python -m` for a server name, its output kept in files."""

    def __init__(self, server: str, log_dir: Path, host: str = "127.0.0.1", **env: str):
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log_dir = log_dir
        self.workers = int(env.get("WEB_CONCURRENCY", "2"))
        environ = {**os.environ, "HOST": host, "PORT": str(self.port), **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", server_module(server)],
            cwd=ROOT,
            env=environ,
            stdout=(log_dir / "stdout.log").open("w"),
            stderr=(log_dir / "stderr.log").open("w"),
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 15.0) -> float:
        """Poll until /ready first answers 200; return the seconds taken."""
        started = time.monotonic()
        self._poll_ready(lambda worker: True, timeout)
        return time.monotonic() - started

    def wait_all_workers(self, timeout: float = 15.0) -> None:
        """Poll /ready until every worker has answered 200 once.

        A worker that is forked but has not yet installed its own signal handlers still has the
        master's, and would ignore the stop signals the tests send.
        """
        answered: set[int] = set()

        def all_answered(worker: int) -> bool:
            answered.add(worker)
            return len(self.worker_pids()) == self.workers and answered >= self.worker_pids()

        self._poll_ready(all_answered, timeout)

    def _poll_ready(self, done, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.stderr()}")
            try:
                response = requests.get(
                    self.url + "/ready", headers={"Connection": "close"}, timeout=1
                )
                if response.status_code == 200 and done(int(response.headers["X-Worker-Pid"])):
                    return
            # A read timeout too: the master accepts connections before a worker is up to
            # answer them, which on a busy machine can take longer than the request's second.
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.05)
        raise TimeoutError(f"{self.url}/ready: not every worker answered 200 within {timeout}s")

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return {int(pid) for pid in children.split()}

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """Return the exit code, or None if the process is still running after `timeout`."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self) -> str:
        return (self.log_dir / "stderr.log").read_text()

    def stdout(self) -> str:
        return (self.log_dir / "stdout.log").read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

"""Start a server (`python -m app`, or a fixture) as a real process on loopback."""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tools.repo import ROOT
from tools.servers import server_module

PR_SET_PDEATHSIG = 1

# Looked up once, here in the parent. die_with_parent runs between fork and exec in a child of
# a process with threads (asyncio's executor, the load reader): loading a library or looking up
# a symbol there takes the dynamic loader's lock, which another thread may have held at the
# fork, and would then never be released.
_prctl = ctypes.CDLL(None).prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong)
_prctl.restype = ctypes.c_int


def die_with_parent() -> None:
    """Ask Linux to SIGKILL the server when what started it dies, a rehearsal or a test run
    killed by a timeout (gunicorn's workers then exit too). Linux watches the thread that
    started it: start servers from a thread that outlives them.

    A preexec_fn: it only calls the function resolved at import.
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


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
            preexec_fn=die_with_parent,
            start_new_session=True,  # its own process group, workers included: stop() kills it
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
        """SIGKILL the master and every worker, as a pod's end kills the whole container. Killing
        the master alone orphans its workers: one stuck in its exit (seen: every thread waiting
        on a lock, after the test's SIGQUIT) would outlive the test run."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # not a group of its own (or gone): the master alone
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        if self.process.poll() is None:
            self.process.wait(10)

"""A server outlives nothing that started it: SIGKILL the process that ran ServerProcess (as a
timeout kills a test run) and the gunicorn master and its workers are gone."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tools.repo import ROOT

STARTER = textwrap.dedent(
    """
    import pathlib, sys, time
    from tools.serverprocess import ServerProcess

    server = ServerProcess("app", pathlib.Path(sys.argv[1]), TMPDIR=sys.argv[1])
    server.wait_all_workers()
    print(server.pid, *server.worker_pids(), flush=True)
    time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_server_dies_with_the_process_that_started_it(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(pid) for pid in starter.stdout.readline().split()]
    finally:
        starter.kill()
        starter.wait()
    assert len(pids) == 3, f"the starter printed no master and workers: {pids}"
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in pids if alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], "the server outlived the process that started it"

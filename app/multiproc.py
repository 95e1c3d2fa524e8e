"""The directory where prometheus_client's multiprocess mode keeps every worker's samples.

prometheus_client chooses its mode once, when it is first imported: with PROMETHEUS_MULTIPROC_DIR
set, each process writes its samples to files of its own in that directory, and a scrape sums
the files of every process, those of dead workers included (a counter never goes back). So the
gunicorn master sets the variable (app/gunicorn_conf.py) before it forks any worker, and nothing
imports prometheus_client in the master before that: this module does not, and `app` imports
it only inside create_app, in the workers.
"""

import shutil
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class MultiprocDir:
    path: Path
    owned: bool  # made for this server, removed when it exits; an explicit one is left in place

    def remove(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def prepare(environ: MutableMapping[str, str], pid: int) -> MultiprocDir:
    """Choose the directory, empty it of samples from an earlier start, and export it.

    An explicit PROMETHEUS_MULTIPROC_DIR is used as it is. Otherwise it is
    /tmp/prometheus-multiproc-PID (the pod's writable emptyDir), named after the master: in a
    container the master is PID 1 at every start, so a restarted container reuses and empties
    the directory of the last one, and servers started side by side on one machine never share
    one.
    """
    explicit = environ.get(ENV, "").strip()
    if explicit:
        directory = MultiprocDir(Path(explicit), owned=False)
    else:
        path = Path(tempfile.gettempdir()) / f"prometheus-multiproc-{pid}"
        directory = MultiprocDir(path, owned=True)
    directory.path.mkdir(parents=True, exist_ok=True)
    # The library's documented rule: the directory is wiped between runs, or the counts of an
    # earlier run would be summed into this one's.
    for stale in directory.path.glob("*.db"):
        stale.unlink()
    environ[ENV] = str(directory.path)
    return directory


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges; its counters and histograms stay and are still summed.

    Called in the master (gunicorn's child_exit hook), always after prepare.
    """
    from prometheus_client import multiprocess  # not at the top: see the module's docstring

    multiprocess.mark_process_dead(pid)

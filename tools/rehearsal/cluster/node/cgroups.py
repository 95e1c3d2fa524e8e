"""CPU and memory limits for process-mode pods, through the kernel's controllers, as the kubelet
sets them.

Each container gets its own cgroup under one parent per run, with `resources.limits.cpu` as a
CFS quota over the kubelet's 100 ms period (kubernetes pkg/kubelet/cm/helpers_linux.go
MilliCPUToQuota: quota = cores x period, at least 1 ms): cgroup v2 `cpu.max` ("QUOTA PERIOD", as
runc's libcontainer/cgroups/fs2/cpu.go writes it), or v1 `cpu.cfs_quota_us` and
`cpu.cfs_period_us`. The server joins its cgroup between fork and exec, so every process it
forks later (gunicorn's workers) is throttled with it. Where no cgroup can be written (no root,
no CPU controller, a cgroup v2 namespace whose root holds processes), `CpuCgroups.find` says why
and pods run unthrottled.

Every container's cgroup also gets the weight the kubelet gives it under contention,
`resources.requests.cpu` as shares (MilliCPUToShares in the same file: 1024 a core, at least 2,
so a pod without a request gets 2), and the run's parent the weight of the kubelet's `kubepods`
cgroup, the node's CPUs as shares (pkg/kubelet/cm/node_container_manager_linux.go). Without it
the parent weighed as much as one ordinary process on the host, and every pod of a run together
got no more CPU than any one of the processes beside them (cgroup v2 `cpu.weight` converted from
shares as runc's libcontainer/cgroups/utils.go ConvertCPUSharesToCgroupV2Value does).

Every container also gets cgroups that account its CPU time and memory, whether or not it has a
limit (the kubelet's resource metrics read them, node/usage.py): cgroup v1's cpuacct and memory
hierarchies, or the one v2 cgroup (whose parent then hands down the memory controller as well).
The server joins all of them. `resources.limits.memory` caps the memory one, as runc writes it
for the kubelet: over it, the kernel's out-of-memory killer ends a process of the container.
Where they cannot be made, `Accounting.find` says why and those pods have no metrics and no
memory limit.
"""

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tools.rehearsal.cluster.node.usage import CGROUP_ROOT, UsageFiles

CFS_PERIOD_US = 100_000  # the kubelet's cpuCFSQuotaPeriod default
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller quota
SHARES_PER_CPU, MIN_SHARES, MAX_SHARES = 1024, 2, 262_144
PARENT_PREFIX = "zdt-rehearsal-"
REMOVE_SECONDS = 5.0  # how long cleanup waits for killed processes to leave a cgroup


def limit_files(version: int, cores: float) -> dict[str, str]:
    """The files that cap a cgroup at `cores` CPUs, and what to write in them."""
    quota = max(MIN_QUOTA_US, round(cores * CFS_PERIOD_US))
    if version == 2:
        return {"cpu.max": f"{quota} {CFS_PERIOD_US}"}
    return {"cpu.cfs_period_us": str(CFS_PERIOD_US), "cpu.cfs_quota_us": str(quota)}


def shares(cores: float | None) -> int:
    """The kubelet's cpu.shares for a CPU request (MilliCPUToShares)."""
    if not cores:
        return MIN_SHARES
    return min(MAX_SHARES, max(MIN_SHARES, round(cores * 1000) * SHARES_PER_CPU // 1000))


def memory_limit_files(version: int, limit: int) -> dict[str, str]:
    """The file that caps a cgroup's memory at `limit` bytes (runc's fs/memory.go and
    fs2/memory.go: memory.limit_in_bytes, memory.max), and what to write in it."""
    return {"memory.max" if version == 2 else "memory.limit_in_bytes": str(limit)}


def weight_files(version: int, cpu_shares: int) -> dict[str, str]:
    """The file that weighs a cgroup against its siblings, and what to write in it."""
    if version == 2:
        return {"cpu.weight": str(1 + (cpu_shares - 2) * 9999 // 262_142)}
    return {"cpu.shares": str(cpu_shares)}


@dataclass(frozen=True)
class Cgroup:
    path: Path
    cores: float | None = None  # its CPU limit

    @property
    def procs(self) -> Path:
        """Writing a pid here moves that process in; 0 is the writer itself."""
        return self.path / "cgroup.procs"

    def pids(self) -> list[int]:
        with contextlib.suppress(FileNotFoundError):
            return [int(line) for line in self.procs.read_text().split()]
        return []

    def throttled(self) -> int:
        """How many CFS periods the cgroup ran out of quota (cpu.stat nr_throttled)."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, value = line.split()
            if key == "nr_throttled":
                return int(value)
        return 0


class RunCgroups:
    """This run's cgroups in one hierarchy: one parent per run, a child per container."""

    def __init__(self, base: Path, version: int) -> None:
        self.base, self.version = base, version
        self.parent = base / f"{PARENT_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.cgroups: list[Cgroup] = []
        self.controllers: list[str] = []  # cgroup v2: those the parent hands down to children
        self.parent_files: dict[str, str] = {}  # written in the parent as it is made

    def delegate(self, controller: str) -> None:
        """Give the children (cgroup v2) the files of `controller` (cpu.max, memory.current)."""
        if controller not in self.controllers:
            self.controllers.append(controller)
            if self.parent.exists():
                self._write(self.parent / "cgroup.subtree_control", f"+{controller}")

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)

    def create(
        self, name: str, cores: float | None = None, cpu_shares: int | None = None
    ) -> Cgroup:
        """A new cgroup, capped at `cores` and weighed at `cpu_shares` when given (OSError when
        the kernel refuses)."""
        if not self.parent.exists():
            self.remove_stale()
            self.parent.mkdir()
            if self.version == 2:
                for controller in self.controllers:
                    self._write(self.parent / "cgroup.subtree_control", f"+{controller}")
            for file, value in self.parent_files.items():
                self._write(self.parent / file, value)
        cgroup = Cgroup(self.parent / f"{len(self.cgroups) + 1}-{name}", cores)
        cgroup.path.mkdir()
        self.cgroups.append(cgroup)
        files = {} if cores is None else limit_files(self.version, cores)
        if cpu_shares is not None:
            files |= weight_files(self.version, cpu_shares)
        for file, value in files.items():
            self._write(cgroup.path / file, value)
        return cgroup

    def remove_stale(self) -> None:
        """Parents left by rehearsals that were killed outright (their process is gone)."""
        for parent in self.base.glob(f"{PARENT_PREFIX}*"):
            pid = parent.name.removeprefix(PARENT_PREFIX).split("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                remove([Cgroup(child) for child in parent.iterdir() if child.is_dir()], parent)

    def cleanup(self) -> list[Path]:
        """Kill what is left in this run's cgroups and remove them; return those that stayed."""
        left = remove(self.cgroups, self.parent)
        self.cgroups = []
        return left


class CpuCgroups(RunCgroups):
    """The CPU controller's hierarchy (cgroup v1 or v2) and this run's cgroups in it."""

    def __init__(self, base: Path, version: int) -> None:
        super().__init__(base, version)
        if version == 2:  # children get cpu.max only once the parent delegates cpu
            self.controllers.append("cpu")
        self.parent_files = weight_files(version, SHARES_PER_CPU * (os.cpu_count() or 1))

    @classmethod
    def find(cls, root: Path = CGROUP_ROOT) -> "CpuCgroups | str":
        """The hierarchy to use, or why CPU limits cannot be enforced here."""
        controllers = root / "cgroup.controllers"
        if controllers.is_file():  # the unified hierarchy (cgroup v2)
            if "cpu" not in controllers.read_text().split():
                return f"cgroup v2 at {root} offers no cpu controller"
            base, version = root, 2
        elif (root / "cpu" / "cpu.cfs_quota_us").is_file():
            base, version = root / "cpu", 1
        else:
            return f"no CPU controller with CFS quotas under {root}"
        if not os.access(base, os.W_OK):
            return f"{base} is not writable (CPU limits need root)"
        return cls(base, version)

    def describe(self) -> str:
        files = " and ".join(limit_files(self.version, 1))
        return f"cgroup v{self.version} {files} under {self.parent}"


class Accounting:
    """The hierarchies that account each container's CPU time and memory: cgroup v1 cpuacct and
    memory (separate or not), or the unified one."""

    def __init__(self, version: int, cpu: RunCgroups, memory: RunCgroups) -> None:
        self.version, self.cpu, self.memory = version, cpu, memory

    @classmethod
    def find(cls, root: Path = CGROUP_ROOT, shared: RunCgroups | None = None) -> "Accounting | str":
        """The hierarchies to use (`shared`, the CPU limits' one, where it is the same), or why
        usage cannot be accounted here."""

        def hierarchy(base: Path, version: int) -> RunCgroups:
            if shared is not None and shared.base.resolve() == base.resolve():
                return shared
            return RunCgroups(base, version)

        controllers = root / "cgroup.controllers"
        if controllers.is_file():
            if "memory" not in controllers.read_text().split():
                return f"cgroup v2 at {root} offers no memory controller"
            unified = hierarchy(root, 2)
            unified.delegate("memory")
            found = cls(2, unified, unified)
        else:
            for controller, file in (("cpuacct", "cpuacct.usage"), ("memory", "memory.stat")):
                if not (root / controller / file).is_file():
                    return f"no {controller} controller under {root}"
            cpu, memory = hierarchy(root / "cpuacct", 1), hierarchy(root / "memory", 1)
            found = cls(1, cpu, memory)
        for base in {found.cpu.base, found.memory.base}:
            if not os.access(base, os.W_OK):
                return f"{base} is not writable (accounting cgroups need root)"
        return found

    def hierarchies(self) -> list[RunCgroups]:
        return [self.cpu] if self.memory is self.cpu else [self.cpu, self.memory]

    def create(
        self, name: str, made: dict[Path, Cgroup], memory_limit: int | None = None
    ) -> UsageFiles:
        """The container's accounting cgroups, reusing those of `made` (by hierarchy base) and
        adding the new ones there, its memory capped at `memory_limit` bytes when given
        (OSError when the kernel refuses)."""
        for hierarchy in self.hierarchies():
            if hierarchy.base not in made:
                made[hierarchy.base] = hierarchy.create(name)
        memory = made[self.memory.base].path
        if memory_limit is not None:
            for file, value in memory_limit_files(self.version, memory_limit).items():
                (memory / file).write_text(value)
        return UsageFiles(self.version, made[self.cpu.base].path, memory)

    def describe_memory_limit(self) -> str:
        file = next(iter(memory_limit_files(self.version, 0)))
        return f"cgroup v{self.version} {file} under {self.memory.parent}"


def remove(cgroups: list[Cgroup], parent: Path) -> list[Path]:
    deadline = time.monotonic() + REMOVE_SECONDS
    left = []
    for cgroup in cgroups:
        while cgroup.path.exists():
            for pid in cgroup.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                cgroup.path.rmdir()  # busy until the killed processes have exited
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    left.append(cgroup.path)
                    break
                time.sleep(0.01)
    try:
        parent.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        left.append(parent)
    return left

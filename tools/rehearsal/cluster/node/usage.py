"""A container's CPU time and memory working set, read from its cgroups as the kubelet's stats
provider reads them.

- cumulative CPU: cgroup v1 `cpuacct.usage` (nanoseconds), cgroup v2 `cpu.stat` `usage_usec`
  (opencontainers/cgroups fs/cpuacct.go and fs2/cpu.go statCpu, which turns it into nanoseconds);
  both count every process in the cgroup, those that have exited included;
- working set: usage minus the inactive file pages, never below 0 (cAdvisor
  container/libcontainer/handler.go setMemoryStats): v1 `memory.usage_in_bytes` minus
  `memory.stat` `total_inactive_file`, v2 `memory.current` minus `memory.stat` `inactive_file`.

A container run by podman or docker is found from its init process: /proc/<pid>/cgroup names
its cgroup in each hierarchy.
"""

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class UsageFiles:
    """Where one container's usage is read: its cgroup v1 cpuacct and memory cgroups, or its one
    cgroup v2 cgroup (both fields then name it)."""

    version: int
    cpu: Path
    memory: Path

    def cpu_seconds(self) -> float:
        if self.version == 2:
            return stat(self.cpu / "cpu.stat")["usage_usec"] / 1e6
        return int((self.cpu / "cpuacct.usage").read_text()) / 1e9

    def working_set(self) -> int:
        if self.version == 2:
            usage, inactive = int((self.memory / "memory.current").read_text()), "inactive_file"
        else:
            usage = int((self.memory / "memory.usage_in_bytes").read_text())
            inactive = "total_inactive_file"
        return max(0, usage - stat(self.memory / "memory.stat").get(inactive, 0))

    def oom_kills(self) -> int:
        """How many processes the out-of-memory killer ended in the cgroup (v1
        memory.oom_control, v2 memory.events: oom_kill)."""
        file = "memory.events" if self.version == 2 else "memory.oom_control"
        return stat(self.memory / file).get("oom_kill", 0)


def stat(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" lines: cpu.stat, memory.stat)."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


def usage_files_of(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> UsageFiles:
    """The cgroups of process `pid` that account its CPU and memory (OSError, ValueError when
    there are none to read).

    /proc/<pid>/cgroup holds "ID:CONTROLLERS:PATH" lines, PATH relative to the reader's cgroup
    namespace; a v1 hierarchy is mounted at root/CONTROLLERS ("cpu,cpuacct" where two share
    one), v2 (root/cgroup.controllers exists) at root itself.
    """
    lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    paths = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path.lstrip("/")
    if (root / "cgroup.controllers").is_file():
        if "" not in paths:
            raise ValueError(f"process {pid} is in no cgroup v2 cgroup")
        cgroup = root / paths[""]
        return UsageFiles(2, cgroup, cgroup)
    found = {}
    for wanted in ("cpuacct", "memory"):
        for controllers, path in paths.items():
            if wanted in controllers.split(","):
                found[wanted] = root / controllers / path
                break
        else:
            raise ValueError(f"process {pid} is in no cgroup v1 {wanted} cgroup")
    return UsageFiles(1, found["cpuacct"], found["memory"])

"""Reading a container's CPU time and working set from its cgroup files, against fake cgroup v1
and v2 trees (the real kernel's are read in test_accounting.py)."""

import pytest

from tools.rehearsal.cluster.node.usage import UsageFiles, usage_files_of

V2_CPU_STAT = """usage_usec 1234567
user_usec 1000000
system_usec 234567
nr_periods 0
nr_throttled 0
throttled_usec 0
"""
V2_MEMORY_STAT = "anon 40960000\nfile 12288000\nactive_file 4096000\ninactive_file 8192000\n"
V1_MEMORY_STAT = "cache 12288000\nrss 40960000\ninactive_file 1\ntotal_inactive_file 8192000\n"


def test_cgroup_v2_cpu_is_usage_usec_and_the_working_set_excludes_inactive_files(tmp_path):
    (tmp_path / "cpu.stat").write_text(V2_CPU_STAT)
    (tmp_path / "memory.current").write_text("53248000\n")
    (tmp_path / "memory.stat").write_text(V2_MEMORY_STAT)
    files = UsageFiles(2, tmp_path, tmp_path)
    assert files.cpu_seconds() == pytest.approx(1.234567)
    assert files.working_set() == 53_248_000 - 8_192_000


def test_cgroup_v1_cpu_is_cpuacct_usage_and_the_working_set_excludes_total_inactive_file(
    tmp_path,
):
    cpuacct, memory = tmp_path / "cpuacct", tmp_path / "memory"
    cpuacct.mkdir()
    memory.mkdir()
    (cpuacct / "cpuacct.usage").write_text("312000000\n")
    (memory / "memory.usage_in_bytes").write_text("53248000\n")
    (memory / "memory.stat").write_text(V1_MEMORY_STAT)
    files = UsageFiles(1, cpuacct, memory)
    assert files.cpu_seconds() == pytest.approx(0.312)
    assert files.working_set() == 53_248_000 - 8_192_000


def test_the_working_set_is_never_below_zero(tmp_path):
    (tmp_path / "memory.current").write_text("4096\n")
    (tmp_path / "memory.stat").write_text("inactive_file 8192\n")
    assert UsageFiles(2, tmp_path, tmp_path).working_set() == 0


def proc_with(tmp_path, pid: int, cgroup: str):
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    (tmp_path / "proc" / str(pid) / "cgroup").write_text(cgroup)
    return tmp_path / "proc"


def test_an_engine_containers_cgroup_v2_is_found_from_its_init_process(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    proc = proc_with(tmp_path, 42, "0::/machine.slice/libpod-abc.scope/container\n")
    cgroup = root / "machine.slice/libpod-abc.scope/container"
    assert usage_files_of(42, root, proc) == UsageFiles(2, cgroup, cgroup)


def test_an_engine_containers_cgroup_v1_cgroups_are_found_in_their_hierarchies(tmp_path):
    root = tmp_path / "cgroup"
    lines = [
        "12:memory:/libpod_parent/libpod-abc",
        "4:cpu,cpuacct:/libpod_parent/libpod-abc",
        "1:name=systemd:/",
        "0::/",
    ]
    proc = proc_with(tmp_path, 42, "\n".join(lines) + "\n")
    assert usage_files_of(42, root, proc) == UsageFiles(
        1, root / "cpu,cpuacct/libpod_parent/libpod-abc", root / "memory/libpod_parent/libpod-abc"
    )


def test_a_process_outside_any_memory_cgroup_has_no_usage_files(tmp_path):
    proc = proc_with(tmp_path, 42, "2:cpuacct:/\n0::/\n")
    with pytest.raises(ValueError, match="no cgroup v1 memory cgroup"):
        usage_files_of(42, tmp_path / "cgroup", proc)

"""Accounting cgroups in process mode: every container's CPU time and memory are counted in its
own cgroups, which its whole process tree joins before exec, and its memory is capped at its
limit. The real tests need writable cpuacct and memory controllers (root); elsewhere they are
skipped, as the rehearsal then has no resource metrics and no memory limit, and says so."""

import asyncio
import sys
from dataclasses import replace

import pytest

from tools.rehearsal.cluster.node.cgroups import Accounting
from tools.rehearsal.cluster.node.container import Launch
from tools.rehearsal.cluster.node.runtime import ProcessContainer, ProcessRuntime, spawn

MIB = 1024 * 1024


def launch(tmp_path, cpu_limit: float | None = None, memory_limit: int | None = None) -> Launch:
    return Launch(
        "app-1",
        "app:v1",
        "v1",
        "127.0.0.2",
        8080,
        {},
        tmp_path / "app-1.log",
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
    )


def test_without_accounting_controllers_the_reason_is_given(tmp_path):
    assert Accounting.find(tmp_path) == f"no cpuacct controller under {tmp_path}"
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    assert Accounting.find(tmp_path) == f"cgroup v2 at {tmp_path} offers no memory controller"


def test_where_no_accounting_cgroup_can_be_made_pods_have_no_metrics_and_the_run_says_so(
    tmp_path,
):
    runtime = ProcessRuntime("app", cgroup_root=tmp_path)
    cgroups = runtime.cgroups_for(launch(tmp_path))
    assert cgroups.joined == () and cgroups.usage is None
    assert runtime.notes() == [
        "resource metrics NOT available (no CPU and memory accounting): "
        f"no cpuacct controller under {tmp_path}"
    ]
    runtime.cgroups_for(launch(tmp_path, memory_limit=256 * MIB))
    assert runtime.notes()[-1] == (
        f"resources.limits.memory NOT enforced: no cpuacct controller under {tmp_path}"
    )


def test_under_cgroup_v2_the_limit_and_the_accounting_share_the_containers_one_cgroup(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    runtime = ProcessRuntime("app", cgroup_root=tmp_path)
    limited = runtime.cgroups_for(launch(tmp_path, cpu_limit=0.5))
    unlimited = runtime.cgroups_for(replace(launch(tmp_path), pod="app-2"))
    assert runtime.accounting.cpu is runtime.accounting.memory is runtime.cpu
    assert runtime.cpu.controllers == ["cpu", "memory"]  # handed down to every container
    (cgroup,) = limited.joined
    assert limited.cpu == cgroup and (cgroup.path / "cpu.max").read_text() == "50000 100000"
    assert limited.usage.cpu == limited.usage.memory == cgroup.path
    (other,) = unlimited.joined
    assert unlimited.cpu == other and not (other.path / "cpu.max").exists()
    assert (other.path / "cpu.weight").read_text() == "1"  # no request: the least weight
    assert other.path.parent == cgroup.path.parent == runtime.cpu.parent
    capped = runtime.cgroups_for(replace(launch(tmp_path), pod="app-3", memory_limit=256 * MIB))
    assert (capped.usage.memory / "memory.max").read_text() == str(256 * MIB)
    assert not (other.path / "memory.max").exists()


def accounting_runtime() -> ProcessRuntime:
    found = Accounting.find()
    if isinstance(found, str):
        pytest.skip(f"no accounting cgroups here: {found}")
    return ProcessRuntime("app")


BURN = """
import os, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def report():
    times = os.times()
    print(times.user + times.system + times.children_user + times.children_system, flush=True)

burn(0.3)
report()
sys.stdin.readline()
child = os.fork()
if child == 0:
    burn(0.3)
    os._exit(0)
os.waitpid(child, 0)
report()
sys.stdin.readline()
"""

ALLOCATE = """
import sys
print("ready", flush=True)
sys.stdin.readline()
block = b"x" * (64 << 20)
print("allocated", flush=True)
sys.stdin.readline()
"""


async def in_accounting_cgroups(runtime: ProcessRuntime, tmp_path, script: str):
    cgroups = runtime.cgroups_for(launch(tmp_path))
    pipe = asyncio.subprocess.PIPE
    started = asyncio.get_running_loop().time()
    process = await spawn((sys.executable, "-c", script), cgroups.joined, stdin=pipe, stdout=pipe)
    return ProcessContainer(process, {}, cgroups, started)


async def step(container: ProcessContainer) -> str:
    """Let the script go on to its next report."""
    container.process.stdin.write(b"\n")
    await container.process.stdin.drain()
    return (await container.process.stdout.readline()).decode().strip()


def test_a_busy_process_and_a_child_it_forks_later_are_counted_in_its_cgroup(tmp_path):
    runtime = accounting_runtime()

    async def scenario():
        container = await in_accounting_cgroups(runtime, tmp_path, BURN)
        try:
            own = float(await container.process.stdout.readline())
            first = await container.usage()
            both = float(await step(container))
            second = await container.usage()
            await step(container)
            await container.wait()
            gone = await container.usage()
        finally:
            await container.kill()
            await runtime.cleanup()
        return own, first, both, second, gone

    own, first, both, second, gone = asyncio.run(scenario())
    print(
        f"process CPU {own:.3f} s, cgroup {first.cpu_seconds:.3f} s; with the child "
        f"{both:.3f} s, cgroup {second.cpu_seconds:.3f} s"
    )
    assert own >= 0.3
    assert first.cpu_seconds == pytest.approx(own, abs=0.05)  # os.times counts 10 ms ticks
    assert second.cpu_seconds - first.cpu_seconds == pytest.approx(0.3, abs=0.05)
    assert second.cpu_seconds == pytest.approx(both, abs=0.05)
    assert first.started <= first.timestamp < second.timestamp
    assert gone is None  # an exited container is not measured
    assert not runtime.accounting.cpu.parent.exists()
    assert not runtime.accounting.memory.parent.exists()
    assert runtime.notes() == []


def test_the_working_set_grows_when_the_process_allocates(tmp_path):
    runtime = accounting_runtime()

    async def scenario():
        container = await in_accounting_cgroups(runtime, tmp_path, ALLOCATE)
        try:
            await container.process.stdout.readline()
            before = await container.usage()
            await step(container)
            after = await container.usage()
            await step(container)
            await container.wait()
        finally:
            await container.kill()
            await runtime.cleanup()
        return before, after

    before, after = asyncio.run(scenario())
    grown = after.memory_working_set - before.memory_working_set
    print(f"working set {before.memory_working_set / MIB:.1f} MiB, then {grown / MIB:.1f} MiB more")
    assert before.memory_working_set > 1 * MIB  # the interpreter itself
    assert 60 * MIB < grown < 80 * MIB
    assert not runtime.accounting.memory.parent.exists()


def test_over_its_memory_limit_a_container_is_oom_killed_and_under_it_not(tmp_path):
    """64 MiB allocated: in a container capped at 32 MiB the kernel's out-of-memory killer
    ends it (SIGKILL, counted in its cgroup), at 256 MiB it carries on."""
    runtime = accounting_runtime()

    async def allocate(limit: int) -> tuple[int, bool]:
        name = f"app-{limit // MIB}"
        cgroups = runtime.cgroups_for(replace(launch(tmp_path), pod=name, memory_limit=limit))
        pipe = asyncio.subprocess.PIPE
        process = await spawn(
            (sys.executable, "-c", ALLOCATE), cgroups.joined, stdin=pipe, stdout=pipe
        )
        container = ProcessContainer(process, {}, cgroups, asyncio.get_running_loop().time())
        try:
            await container.process.stdout.readline()
            container.process.stdin.write(b"\n\n")
            await container.process.stdin.drain()
            return await container.wait(), await container.oom_killed()
        finally:
            await container.kill()

    async def scenario():
        try:
            return await allocate(32 * MIB), await allocate(256 * MIB)
        finally:
            await runtime.cleanup()

    over, under = asyncio.run(scenario())
    assert over == (-9, True)
    assert under == (0, False)
    assert any("resources.limits.memory enforced through" in n for n in runtime.notes())
    assert not runtime.accounting.memory.parent.exists()

"""CPU limits in process mode: the kernel's CPU controller throttles a pod's whole process tree
at its manifest's limits.cpu (and its memory is capped at limits.memory). The real tests need a
writable CPU controller (root); elsewhere they are skipped, as the rehearsal then runs
unthrottled and says so."""

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

from tools.rehearsal.cluster.network.addresses import AddressPool
from tools.rehearsal.cluster.node.cgroups import CpuCgroups, limit_files, shares, weight_files
from tools.rehearsal.cluster.node.container import Launch
from tools.rehearsal.cluster.node.kubelet import Pod
from tools.rehearsal.cluster.node.runtime import ProcessRuntime, spawn
from tools.rehearsal.manifests.sources import load_overlay
from tools.rehearsal.timeline import Timeline
from tools.repo import ROOT


def test_a_limit_is_a_quota_over_the_kubelets_100ms_period():
    assert limit_files(2, 1) == {"cpu.max": "100000 100000"}
    assert limit_files(2, 0.25) == {"cpu.max": "25000 100000"}
    assert limit_files(1, 0.2) == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "20000"}
    assert limit_files(1, 0.001)["cpu.cfs_quota_us"] == "1000"  # the kernel's minimum


def test_a_request_weighs_as_the_kubelets_shares():
    # kubernetes pkg/kubelet/cm/helpers_linux.go MilliCPUToShares
    assert [shares(cores) for cores in (None, 0, 0.001, 0.25, 1, 300)] == [
        2,
        2,
        2,
        256,
        1024,
        262_144,
    ]
    assert weight_files(1, 256) == {"cpu.shares": "256"}
    # runc libcontainer/cgroups/utils.go ConvertCPUSharesToCgroupV2Value
    assert [weight_files(2, n)["cpu.weight"] for n in (2, 1024, 2048, 262_144)] == [
        "1",
        "39",
        "79",
        "10000",
    ]


def test_without_a_cpu_controller_the_reason_is_given(tmp_path):
    assert "no CPU controller" in CpuCgroups.find(tmp_path)
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    assert CpuCgroups.find(tmp_path) == f"cgroup v2 at {tmp_path} offers no cpu controller"


def cpu_cgroups() -> CpuCgroups:
    found = CpuCgroups.find()
    if isinstance(found, str):
        pytest.skip(f"CPU limits cannot be enforced here: {found}")
    return found


BUSY = """
import time
end = time.time() + 1.5
while time.time() < end:
    pass
print(time.process_time())
"""


def test_a_busy_process_in_a_fifth_of_a_core_gets_a_fifth_of_a_core():
    cpu = cpu_cgroups()

    async def busy() -> tuple[float, int]:
        cgroup = cpu.create("busy", 0.2)
        try:
            pipe = asyncio.subprocess.PIPE
            process = await spawn(("python3", "-c", BUSY), cgroup, stdout=pipe)
            output, _ = await process.communicate()
            return float(output), cgroup.throttled()
        finally:
            assert cpu.cleanup() == []

    cpu_seconds, throttled = asyncio.run(busy())
    # 1.5 s of wall time at 0.2 core: 0.3 s of CPU; unthrottled it would use nearly all 1.5 s.
    assert 0.1 < cpu_seconds < 0.5
    assert throttled >= 5
    assert not cpu.parent.exists()


def process_group(leader: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    members.add(int(entry.name))
            except ProcessLookupError:
                pass
    return members


@pytest.mark.rehearsal
def test_each_pod_runs_in_its_own_cgroup_at_the_manifests_limit(tmp_path):
    cpu_cgroups()
    template = load_overlay(ROOT / "overlays/v1", "v1").deployment.template
    assert template.cpu_limit == 1

    async def scenario():
        runtime, addresses = ProcessRuntime("app"), AddressPool()
        pod = Pod(
            "app-1",
            template,
            addresses.allocate(template.container_port),
            runtime,
            Timeline(),
            lambda pod: None,
            tmp_path,
        )
        try:
            pod.start()
            async with asyncio.timeout(30):
                while not pod.containers_ready:
                    await asyncio.sleep(0.05)
            (cgroup,) = runtime.cpu.cgroups
            tree = process_group(pod.container.process.pid)
            seen = (
                cgroup,
                set(cgroup.pids()),
                tree,
                (cgroup.path / "cpu.cfs_quota_us").read_text(),
                (cgroup.path / "cpu.shares").read_text(),
                (runtime.cpu.parent / "cpu.shares").read_text(),
                (pod.container.cgroups.usage.memory / "memory.limit_in_bytes").read_text(),
            )
        finally:
            await pod.force_stop()
            await runtime.cleanup()
            addresses.close()
        return seen, runtime

    (cgroup, in_cgroup, tree, quota, weight, parent_weight, memory), runtime = asyncio.run(
        scenario()
    )
    assert len(tree) >= 2  # the gunicorn master and its workers
    assert tree <= in_cgroup
    assert quota.strip() == "100000"  # limits.cpu "1", over the 100 ms period
    assert weight.strip() == "256"  # requests.cpu 250m
    assert int(parent_weight) == 1024 * os.cpu_count()  # the kubelet's kubepods: every CPU
    assert not cgroup.path.exists() and not runtime.cpu.parent.exists()
    assert int(memory) == template.memory_limit == 256 * 1024 * 1024  # limits.memory 256Mi
    assert runtime.notes() == [
        f"resources.limits.cpu enforced through {runtime.cpu.describe()}",
        f"resources.limits.memory enforced through {runtime.accounting.describe_memory_limit()}",
    ]


def test_where_no_cgroup_can_be_made_pods_run_unthrottled_and_the_run_says_so(tmp_path):
    runtime = ProcessRuntime("app", cgroup_root=tmp_path)
    launch = Launch("app-1", "app:v1", "v1", "127.0.0.2", 8080, {}, tmp_path / "app-1.log")
    assert runtime.cgroup_for(launch) is None and runtime.notes() == []  # no limit: nothing to say
    assert runtime.cgroup_for(replace(launch, cpu_limit=1)) is None
    assert runtime.notes() == [
        f"resources.limits.cpu NOT enforced: no CPU controller with CFS quotas under {tmp_path}"
    ]

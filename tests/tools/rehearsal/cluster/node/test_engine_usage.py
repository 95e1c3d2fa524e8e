"""A pod run by podman or docker is measured from the cgroups the engine made for it."""

import asyncio

import pytest

from tools.image.build import IMAGE_REPOSITORY
from tools.rehearsal.cluster.network.addresses import AddressPool
from tools.rehearsal.cluster.node.container import Launch
from tools.rehearsal.cluster.node.container_runtime import ContainerRuntime


@pytest.mark.container
def test_an_engine_container_is_measured_from_its_init_process_cgroups(engine, images, tmp_path):
    runtime, addresses = ContainerRuntime(engine), AddressPool()

    async def scenario():
        launch = Launch(
            "app-1",
            f"{IMAGE_REPOSITORY}:v1",
            "v1",
            addresses.allocate(8080),
            8080,
            {},
            tmp_path / "app-1.log",
        )
        try:
            container = await runtime.start(launch)
            first = await container.usage()
            second = await container.usage()
            await container.kill()
            await container.wait()
            gone = await container.usage()
        finally:
            await runtime.cleanup()
            addresses.close()
        return container, first, second, gone

    container, first, second, gone = asyncio.run(scenario())
    assert not isinstance(container.usage_files, str), container.usage_files
    assert first.cpu_seconds > 0 and first.memory_working_set > 0
    assert second.cpu_seconds >= first.cpu_seconds and second.timestamp > first.timestamp
    assert first.started < first.timestamp
    assert gone is None

import itertools

import pytest

from tests.server import ServerProcess


@pytest.fixture
def start_server(tmp_path):
    """Start `python -m MODULE` with extra environment; every server is killed afterwards."""
    servers: list[ServerProcess] = []
    counter = itertools.count()

    def start(module: str = "app", **env: str) -> ServerProcess:
        log_dir = tmp_path / f"server-{next(counter)}"
        log_dir.mkdir()
        server = ServerProcess(module, log_dir, **env)
        servers.append(server)
        server.wait_all_workers()
        return server

    yield start
    for server in servers:
        server.stop()

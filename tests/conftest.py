import itertools
import os
import shutil
import tempfile

import pytest

from tools.image.build import build_image
from tools.image.engine import Engine, EngineUnavailable, find_engine
from tools.kustomize import RENDER_CACHE
from tools.serverprocess import ServerProcess
from tools.validate.overlays import load_variants

IMAGE_VERSIONS = ("v1", "v2")
# The fixture of every overlay rendered with every combination of components: the tests that use
# it are kept on one worker, which renders them once.
RENDERS = "rendered_variants"


def pytest_configure(config):
    """One directory of kustomize renders for the whole run (tools/kustomize.py): made by the
    first process, before any worker starts, which inherits it with the environment."""
    if RENDER_CACHE not in os.environ:
        os.environ[RENDER_CACHE] = tempfile.mkdtemp(prefix="zdt-renders-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(RENDER_CACHE), True))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """`make test` runs the suite on several pytest-xdist workers (`-n`, `--dist loadgroup`).
    The container tests stay together on one worker, one after the other: they build and run
    the same image tags with one engine, and the session's images (below) are then built once.
    So do the tests that read every overlay rendered with every combination of components
    (RENDERS), rendered once.
    The rest spreads freely, the longest first."""
    for item in items:
        if item.get_closest_marker("container"):
            item.add_marker(pytest.mark.xdist_group("container"))
        elif RENDERS in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("renders"))
    # The workers take tests in this order: the longest first (the two groups, which run one
    # test after the other, then the rehearsals of tens of seconds each), so that no worker is
    # left with one at the end while the others are idle.
    items.sort(
        key=lambda item: (
            not item.get_closest_marker("container"),
            RENDERS not in getattr(item, "fixturenames", ()),
            not item.get_closest_marker("rehearsal"),
        )
    )


@pytest.fixture
def start_server(tmp_path):
    """Start `python -m MODULE` with extra environment; every server is killed afterwards."""
    servers: list[ServerProcess] = []
    counter = itertools.count()

    def start(module: str = "app", **env: str) -> ServerProcess:
        log_dir = tmp_path / f"server-{next(counter)}"
        log_dir.mkdir()
        # The server's own /tmp (as a pod's emptyDir): a killed server leaves nothing behind.
        env.setdefault("TMPDIR", str(log_dir))
        server = ServerProcess(module, log_dir, **env)
        servers.append(server)
        server.wait_all_workers()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The container engine (CONTAINER_ENGINE, else podman or docker, whichever works).

    Without one, tests using it are skipped, unless REQUIRE_CONTAINER_ENGINE=1 (as in CI),
    which turns a missing engine into a failure.
    """
    try:
        return find_engine()
    except EngineUnavailable as error:
        if os.environ.get("REQUIRE_CONTAINER_ENGINE") == "1":
            pytest.fail(f"REQUIRE_CONTAINER_ENGINE=1 but {error}")
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def images(engine) -> dict[str, str]:
    """The image of each version, built once per test session (the engine caches layers)."""
    return {version: build_image(engine, version) for version in IMAGE_VERSIONS}


@pytest.fixture(scope="session")
def rendered_variants() -> dict:
    """Every overlay rendered with each combination of components (zdt validate's renders),
    once per session."""
    return load_variants()

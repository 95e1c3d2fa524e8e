"""The servers a pod or a test can run, by name: the service and the fixtures kept beside it."""

SERVERS = {
    "app": "app",  # the service itself
    "naive": "tools.fixtures.naive",  # the textbook recipe, kept to show that the checks can fail
    # a release that is ready and drains like the app but answers /status with 500: every
    # request, or the fraction FAIL_FRACTION (e.g. "0.05") set in its environment
    "broken": "tools.fixtures.broken",
}


def server_module(name: str) -> str:
    """The module `python -m` runs for a server name; KeyError for an unknown name."""
    return SERVERS[name]

"""The servers a pod or a test can run, by name: the service and the fixtures kept beside it."""

SERVERS = {
    "app": "app",  # the service itself
    "naive": "tools.fixtures.naive",  # the textbook recipe, kept to show that the checks can fail
}


def server_module(name: str) -> str:
    """The module `python -m` runs for a server name; KeyError for an unknown name."""
    return SERVERS[name]

"""Where the repository is: the one place that knows.

The root is the nearest directory above this file that holds pyproject.toml, so moving a module
never changes the answer.
"""

from pathlib import Path


def find_root(start: Path) -> Path:
    for directory in (start, *start.parents):
        if (directory / "pyproject.toml").is_file():
            return directory
    raise FileNotFoundError(f"{start}: no pyproject.toml in this directory or above it")


ROOT = find_root(Path(__file__).resolve().parent)

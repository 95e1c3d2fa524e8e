"""Read and write a kustomization.yaml with ruamel.yaml round-trip, keeping comments and layout."""

import io
import re
from pathlib import Path

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from tools.release import ReleaseError

# The file names kustomize accepts, in the order it looks for them.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

_KEY_LINE = re.compile(r"^(?P<lead> *(?:- +)*)(?P<key>[^\s#:'\"-][^:#]*):\s*(?:#.*)?$")


def find_file(directory: Path) -> Path:
    if not directory.is_dir():
        raise ReleaseError(f"{directory}: overlay directory does not exist")
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise ReleaseError(f"{directory}: no kustomization.yaml in this directory")


def guess_mapping_indent(text: str) -> int:
    """Indent of a nested mapping below its key (2 unless the file shows otherwise)."""
    lines = [line for line in text.splitlines() if line.strip() and line.lstrip()[0] != "#"]
    for line, following in zip(lines, lines[1:], strict=False):
        match = _KEY_LINE.match(line)
        if not match or following.lstrip().startswith("- "):
            continue
        key_column = len(match.group("lead"))
        child_column = len(following) - len(following.lstrip())
        if child_column > key_column:
            return child_column - key_column
    return 2


class Kustomization:
    """One kustomization file, loaded for editing."""

    def __init__(self, directory: Path):
        self.path = find_file(directory)
        self.text = self.path.read_text()
        _, sequence_indent, sequence_offset = load_yaml_guess_indent(self.text)
        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        self.yaml.width = 4096
        self.yaml.indent(
            mapping=guess_mapping_indent(self.text),
            sequence=sequence_indent or 2,
            offset=sequence_offset or 0,
        )
        try:
            self.data = self.yaml.load(self.text)
        except Exception as error:
            first_line = str(error).strip().splitlines()[0]
            raise ReleaseError(f"{self.path}: not valid YAML: {first_line}") from error
        if not isinstance(self.data, CommentedMap):
            raise ReleaseError(f"{self.path}: top level is not a mapping")

    def image_entry(self, name: str) -> CommentedMap:
        images = self.data.get("images")
        if not isinstance(images, list):
            raise ReleaseError(f"{self.path}: images: missing or not a list")
        entries = [e for e in images if isinstance(e, CommentedMap) and e.get("name") == name]
        if not entries:
            known = ", ".join(str(e.get("name")) for e in images if isinstance(e, CommentedMap))
            raise ReleaseError(f"{self.path}: images: no entry named {name!r} (found: {known})")
        if len(entries) > 1:
            raise ReleaseError(f"{self.path}: images: more than one entry named {name!r}")
        return entries[0]

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()

    def save(self) -> None:
        self.path.write_text(self.dump())


def set_scalar(mapping: CommentedMap, key: str, value: str) -> None:
    """Set a string value, quoting it only when YAML would read it as something else.

    A new key goes where kustomize puts it (it writes an images entry's keys sorted), so a file
    in kustomize's layout stays in it.
    """
    old = mapping.get(key)
    if isinstance(old, SingleQuotedScalarString | DoubleQuotedScalarString):
        value = type(old)(value)
    elif _needs_quotes(value):
        value = DoubleQuotedScalarString(value)
    if key in mapping:
        mapping[key] = value
        return
    position = next((i for i, existing in enumerate(mapping) if existing > key), len(mapping))
    mapping.insert(position, key, value)


def _needs_quotes(value: str) -> bool:
    """True if a YAML 1.2 or 1.1 reader would not read the plain scalar back as this string."""
    plain = f"v: {value}"
    readers = (YAML(typ="safe", pure=True).load, yaml.safe_load)
    return any(reader(plain) != {"v": value} for reader in readers)

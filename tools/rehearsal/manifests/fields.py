"""Typed access to a rendered manifest: every unusable value is reported naming the source, the
object and the field (`<source>: <object>: <path>: <why>`)."""

import re

from tools import durations
from tools.rehearsal.errors import RehearsalError

# Kubernetes quantity suffixes for bytes (binary and decimal).
MEMORY_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9,
    "T": 10**12, "": 1,
}  # fmt: skip
QUANTITY = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]*)")


class Fields:
    """Typed access to a manifest mapping; errors name `<source>: <object>: <path>`."""

    def __init__(self, data: object, where: str, path: str) -> None:
        if not isinstance(data, dict):
            raise RehearsalError(f"{where}: {path or 'object'}: expected a mapping")
        self.data, self.where, self.path = data, where, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> RehearsalError:
        return RehearsalError(f"{self.where}: {self._name(key)}: {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def child(self, key: str) -> "Fields":
        return Fields(self.data.get(key) or {}, self.where, self._name(key))

    def items(self, key: str) -> list["Fields"]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.error(key, "expected a list")
        return [Fields(item, self.where, f"{self._name(key)}[{i}]") for i, item in enumerate(value)]

    def number(self, key: str, default: float | None = None, minimum: float = 0) -> float:
        value = self.data.get(key, default)
        if value is None:
            raise self.error(key, "missing")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.error(key, f"expected a number >= {minimum}, got {value!r}")
        return value

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int:
        value = self.number(key, default, minimum)
        if not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def memory(self, key: str) -> int:
        """A memory quantity ("128Mi", "1G", "1000"), in bytes."""
        match = QUANTITY.fullmatch(str(self.data.get(key)))
        if not match or match[2] not in MEMORY_UNITS:
            raise self.error(key, f"not a memory quantity: {self.data.get(key)!r}")
        return int(float(match[1]) * MEMORY_UNITS[match[2]])

    def cpu(self, key: str) -> float:
        """A CPU quantity ("250m", "1", "0.5"), in cores."""
        match = QUANTITY.fullmatch(str(self.data.get(key)))
        if not match or match[2] not in ("", "m"):
            raise self.error(key, f"not a CPU quantity: {self.data.get(key)!r}")
        return float(match[1]) / (1000 if match[2] == "m" else 1)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a non-empty list of strings, got {value!r}")
        return tuple(value)


def resolve_port(value: object, ports: dict[str, int], fields: Fields, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    if isinstance(value, str) and value in ports:
        return ports[value]
    raise fields.error(key, f"{value!r} is not a port number or a named container port")


def duration(value: object, fields: Fields, key: str) -> float:
    try:
        return durations.seconds(value)
    except ValueError as error:
        raise fields.error(key, str(error)) from None

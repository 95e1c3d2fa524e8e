"""Container image references: `[registry[:port]/]path[:tag][@digest]`, parsed and checked once.

Everything that reads or writes an image reference goes through ImageRef: the manifest checks,
the rehearsal (which version a pod runs, which local build stands in for it), the image builder
and the release commands.
"""

import re
from dataclasses import dataclass

# Docker's tag grammar.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# Docker's repository grammar: optional registry host[:port], then lower-case path components.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"(?:{_HOST}(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*")


@dataclass(frozen=True)
class ImageRef:
    repository: str  # registry host and path, e.g. public.ecr.aws/alias/zero-downtime-app
    tag: str | None = None
    digest: str | None = None  # sha256:<hex>

    @classmethod
    def parse(cls, reference: str) -> "ImageRef":
        """Split a reference; a colon in the registry part (host:port) is not a tag."""
        name, _, digest = reference.partition("@")
        repository, tag = name, None
        if ":" in name.rsplit("/", 1)[-1]:
            repository, tag = name.rsplit(":", 1)
        return cls(repository, tag or None, digest or None)

    @property
    def name(self) -> str:
        """The last path component: the image's own name, whichever registry holds it."""
        return self.repository.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        reference = self.repository
        if self.tag:
            reference += f":{self.tag}"
        if self.digest:
            reference += f"@{self.digest}"
        return reference

"""Release tooling: the image-tag commit that hands a built image to Argo CD."""


class ReleaseError(Exception):
    """A refused or failed release step; the message is one line naming the file, field or value."""

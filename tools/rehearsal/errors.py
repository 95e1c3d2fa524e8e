class RehearsalError(Exception):
    """Invalid input (manifest, overlay, revision, option); the message names it."""

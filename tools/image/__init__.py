"""Build and run the service image with podman or docker (see engine.py and build.py)."""

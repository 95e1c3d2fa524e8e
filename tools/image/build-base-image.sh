#!/bin/sh
# Build a local stand-in for the official Python slim base image, for machines
# that can reach a Debian mirror but no container registry.
#
#   tools/image/build-base-image.sh [IMAGE]     (default: localhost/python-base:3.11-bookworm)
#
# The image is a debootstrap "minbase" Debian bookworm root filesystem plus
# python3, python3-venv and ca-certificates, imported with `podman import`
# (or `docker import`). Build the service on top of it with
#   --build-arg BASE_IMAGE=localhost/python-base:3.11-bookworm
# Python lives at /usr/bin/python3 here and at /usr/local/bin/python3 in the
# official image; the Dockerfile works with both.
#
# Environment:
#   CONTAINER_ENGINE  podman or docker (default: podman if installed, else docker)
#   DEBIAN_MIRROR     Debian archive URL (default: the first Debian mirror in
#                     this machine's apt sources; with neither, the script stops)
#   REBUILD=1         rebuild even when the image already exists
#
# Needs root (debootstrap) and the debootstrap package.
set -eu

IMAGE=${1:-localhost/python-base:3.11-bookworm}
SUITE=bookworm
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -z "${CONTAINER_ENGINE:-}" ]; then
    if command -v podman >/dev/null 2>&1; then CONTAINER_ENGINE=podman; else CONTAINER_ENGINE=docker; fi
fi
if [ "$CONTAINER_ENGINE" = podman ]; then
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
fi

if [ "${REBUILD:-0}" != 1 ] && "$CONTAINER_ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE already present (REBUILD=1 to rebuild)"
    exit 0
fi

first_debian_mirror() {
    # deb822 sources ("URIs: ...") first, then one-line sources ("deb URI suite ...").
    {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" { print $2 }'
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" { print $2 }'
    } | grep -E '/debian/?$' | head -n 1
}
MIRROR=${DEBIAN_MIRROR:-$(first_debian_mirror)}
if [ -z "$MIRROR" ]; then
    echo "error: no Debian mirror: set DEBIAN_MIRROR, or add one to /etc/apt/sources.list(.d)" >&2
    exit 2
fi

ROOTFS=$(mktemp -d /var/tmp/python-base-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

echo "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -n 20 "$ROOTFS.log" >&2
    echo "error: debootstrap failed, full log in $ROOTFS.log" >&2
    exit 1
}
rm -f "$ROOTFS.log"

# Keep the image small: no package lists, caches or documentation.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/log/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/*
ln -sf python3 "$ROOTFS/usr/bin/python"

QUIET=""
[ "$CONTAINER_ENGINE" = podman ] && QUIET=--quiet
tar --numeric-owner -C "$ROOTFS" -c . |
    "$CONTAINER_ENGINE" import $QUIET \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$IMAGE" >/dev/null
echo "built base image $IMAGE"

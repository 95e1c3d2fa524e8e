#!/bin/sh
# Prepare a Debian 12 machine that has no Docker engine and no registry access
# to build and run the image with podman (run as root; safe to run again, and
# quick when everything is already in place):
#   1. installs podman, runc, debootstrap and container networking from Debian;
#   2. builds the local stand-in base image (tools/image/build-base-image.sh),
#      once per machine.
# The tests and tools/image/*.py then point podman at tools/image/containers.conf
# themselves, so `make test` needs no extra environment afterwards.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
# podman 4.3 as root: runc runtime, netavark + aardvark-dns networks (iptables
# for published ports), debootstrap for the base image.
PACKAGES="podman runc conmon netavark aardvark-dns iptables debootstrap ca-certificates"

missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

CONTAINER_ENGINE=podman "$HERE/build-base-image.sh"
echo "podman $(podman --version | awk '{print $3}') ready; container tests use $HERE/containers.conf"

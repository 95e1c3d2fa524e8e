#!/usr/bin/env bash
# A file the e2e workflow downloads (a release's install manifest), checked against the sha256
# pinned for its URL in downloads.sha256 (beside this script) before anything uses it:
#
#   tools/e2e/download.sh URL DESTINATION
#
# A URL with no sha256 pinned there, or bytes that differ from it, fail with one line and leave
# no DESTINATION. A release tag can be moved, and its assets replaced, after the pin was taken.
#
# Environment: PINNED (the list of pins, downloads.sha256 here), CURL (curl).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PINNED=${PINNED:-$HERE/downloads.sha256}
CURL=${CURL:-curl}

if [ $# -ne 2 ]; then
    echo "$0: expected URL DESTINATION, got $# arguments" >&2
    exit 2
fi
url=$1
destination=$2

pinned=$(awk -v url="$url" '$1 !~ /^#/ && $2 == url { print $1 }' "$PINNED")
if [ -z "$pinned" ]; then
    echo "$0: no sha256 pinned for $url in $PINNED" >&2
    exit 2
fi
if ! [[ $pinned =~ ^[0-9a-f]{64}$ ]]; then
    echo "$0: the sha256 of $url in $PINNED is '$pinned', not filled in yet (docs/testing.md)" >&2
    exit 2
fi

partial="$destination.part"
trap 'rm -f "$partial"' EXIT
"$CURL" --fail --silent --show-error --location --output "$partial" "$url"
got=$(sha256sum "$partial" | cut -d' ' -f1)
if [ "$got" != "$pinned" ]; then
    echo "$0: $url has sha256 $got, not the pinned $pinned" >&2
    exit 1
fi
mv "$partial" "$destination"

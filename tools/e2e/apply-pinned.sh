#!/usr/bin/env bash
# `kubectl apply -k DIRECTORY`, except that a resources entry naming a release manifest by URL
# is not left to kustomize, which would fetch it and check nothing. Here each such URL is
# fetched by download.sh, checked against its pinned sha256, and the kustomization is applied
# from a copy of the directory that names the checked file instead. A kustomization with no URL
# (tools/e2e/metrics-server/, whose release manifest is vendored) is applied as it is.
#
#   tools/e2e/apply-pinned.sh tools/e2e/metrics-server
#
# Environment: KUBECTL (kubectl), and download.sh's (PINNED, CURL).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
KUBECTL=${KUBECTL:-kubectl}

if [ $# -ne 1 ] || [ ! -f "$1/kustomization.yaml" ]; then
    echo "$0: expected one directory with a kustomization.yaml" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$1/." "$work/"
# Every resources entry that is a URL, `- https://...` on a line of its own.
while read -r url; do
    name=${url##*/}
    "$HERE/download.sh" "$url" "$work/$name"
    sed -i "s|- $url|- $name|" "$work/kustomization.yaml"
done < <(sed -n 's|^[[:space:]]*- \(https://[^[:space:]]*\)[[:space:]]*$|\1|p' "$1/kustomization.yaml")
"$KUBECTL" apply -k "$work"

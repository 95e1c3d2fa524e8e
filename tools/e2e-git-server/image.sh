#!/usr/bin/env bash
# The git server's image, as e2e.yml's Argo CD job needs it: built from the Dockerfile here on
# overlays/v1's image (by digest: tools/e2e/images.sh built and pinned it first), pushed to the
# cluster's registry, and pinned by tag and digest in this directory's kustomization with
# `zdt bump`, as images.sh does for the service. Run from the repository's root:
#
#   tools/e2e-git-server/image.sh
#
# Environment: REGISTRY (kind-registry:5000), IMAGE_NAME (zero-downtime-app: overlays/v1's images
# entry), ZDT (.venv/bin/zdt), DOCKER (docker).
set -euo pipefail

REGISTRY=${REGISTRY:-kind-registry:5000}
IMAGE_NAME=${IMAGE_NAME:-zero-downtime-app}
ZDT=${ZDT:-.venv/bin/zdt}
DOCKER=${DOCKER:-docker}

base=$("$ZDT" show overlays/v1 --image "$IMAGE_NAME" --field reference)
case $base in
*@sha256:*) ;;
*)
    echo "$0: overlays/v1 names $base, without a digest (run tools/e2e/images.sh first)" >&2
    exit 2
    ;;
esac
image="$REGISTRY/e2e-git-server:e2e"
"$DOCKER" build --build-arg "BASE_IMAGE=$base" --tag "$image" tools/e2e-git-server
"$DOCKER" push "$image"
digest=$("$DOCKER" inspect --format '{{index .RepoDigests 0}}' "$image" | cut -d@ -f2)
"$ZDT" bump tools/e2e-git-server --image git-server \
    --new-name "$REGISTRY/e2e-git-server" --tag e2e --digest "$digest"
git diff -- tools/e2e-git-server

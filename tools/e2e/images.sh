#!/usr/bin/env bash
# The e2e's images, as e2e.yml's kind jobs need them: v1 and v2 of the service built from this
# checkout (APP_VERSION v1 and v2), pushed to the cluster's registry, and pinned by tag and
# digest in overlays/v1 and overlays/v2 with `zdt bump`, the command the release uses, so the
# cluster pulls exactly what was built. The load generator (tools/e2e, image loadgen-runtime)
# runs on v1's image: its Python, no extra pull. Prints the overlays' diff.
#
#   tools/e2e/images.sh
#
# Environment: REGISTRY (kind-registry:5000, helm/kind-action's registry), IMAGE_NAME
# (zero-downtime-app), ZDT (.venv/bin/zdt), DOCKER (docker).
set -euo pipefail

REGISTRY=${REGISTRY:-kind-registry:5000}
IMAGE_NAME=${IMAGE_NAME:-zero-downtime-app}
ZDT=${ZDT:-.venv/bin/zdt}
DOCKER=${DOCKER:-docker}

for version in v1 v2; do
    image="$REGISTRY/$IMAGE_NAME:e2e-$version"
    "$DOCKER" build --build-arg "APP_VERSION=$version" --tag "$image" .
    "$DOCKER" push "$image"
    digest=$("$DOCKER" inspect --format '{{index .RepoDigests 0}}' "$image" | cut -d@ -f2)
    "$ZDT" bump "overlays/$version" --image "$IMAGE_NAME" \
        --new-name "$REGISTRY/$IMAGE_NAME" --tag "e2e-$version" --digest "$digest"
    if [ "$version" = v1 ]; then
        "$ZDT" bump tools/e2e --image loadgen-runtime \
            --new-name "$REGISTRY/$IMAGE_NAME" --tag "e2e-$version" --digest "$digest"
    fi
done
git diff -- overlays tools/e2e

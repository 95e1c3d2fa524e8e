#!/bin/sh
# The git server of the Argo CD e2e (tools/e2e/argocd.sh): one empty bare repository, served
# read-write over git:// by git daemon. The runner pushes this repository's checkout and its
# image-tag commit to it; Argo CD reads it like any remote. No authentication, so only inside a
# throw-away cluster or on loopback (the tests run this very script with LISTEN=127.0.0.1).
#
# Environment: GIT_ROOT (/srv/git), REPOSITORY (zero-downtime-gitops.git), GIT_PORT (9418),
# LISTEN (an address to listen on; every address when unset).
set -eu

GIT_ROOT=${GIT_ROOT:-/srv/git}
REPOSITORY=${REPOSITORY:-zero-downtime-gitops.git}
GIT_PORT=${GIT_PORT:-9418}

git init --quiet --bare --initial-branch=main "$GIT_ROOT/$REPOSITORY"
# --verbose logs each connection, and "Ready to rumble" once it listens.
exec git daemon --verbose --reuseaddr --export-all --enable=receive-pack \
    --base-path="$GIT_ROOT" --port="$GIT_PORT" ${LISTEN:+--listen="$LISTEN"} "$GIT_ROOT"

#!/usr/bin/env bash
# A release the way users make it, checked: Argo CD syncs the image-tag commit under load, and
# not one request fails.
#
#   tools/e2e/argocd.sh FIRST_OVERLAY SECOND_OVERLAY    e.g. tools/e2e/argocd.sh overlays/v1 overlays/v2
#
# Run from a clone of this repository with its history (the work tree is what Argo CD gets).
# Needs Argo CD in namespace argocd and the argocd CLI (e2e.yml installs pinned releases). Steps:
#   1. serves the clone from a git server in the cluster (../e2e-git-server/, git daemon),
#      reached through `kubectl port-forward`;
#   2. commits FIRST's image (repository, tag, digest) into the overlay Argo CD tracks
#      (TRACKED, argocd/application.yaml spec.source.path) and pushes it there with `zdt push`;
#   3. creates the AppProject and the Application from argocd/ with only the repository URL
#      replaced (argocd_app.py), logs in as admin, `argocd app sync`, `argocd app wait --health`;
#   4. starts the in-cluster load generator (../e2e-job/);
#   5. the release: `zdt bump` sets SECOND's tag and digest in TRACKED and `zdt push` pushes the
#      image-tag commit, as release.yml does; refreshes the Application as a webhook would and
#      waits until Argo CD's automated sync has synced that commit, the rollout is complete and
#      no pod is terminating;
#   6. stops the load and judges it with check_load.py (no failure, EXPECT_VERSIONS answered);
#   7. `argocd app history` must list both commits.
# On any failure it prints the namespace's events and writes events, pod descriptions, logs and
# the Application to $OUT. Every wait is bounded. Uses the current kubectl context.
#
# Environment: NAMESPACE, SELECTOR, OUT, MIN_REQUESTS, WARMUP_SECONDS, COOLDOWN_SECONDS,
# POLL_SECONDS, PYTHON (with PyYAML) as in lib.sh; DEPLOYMENT (zero-downtime-app); IMAGE
# (zero-downtime-app: the overlays' images entry); TRACKED (overlays/v2); COMPONENT (a kustomize
# Component to switch on in TRACKED in the served commits, e.g. tools/e2e/kind/requests); ZDT
# (zdt); ARGOCD (argocd); ARGOCD_OPTS (--port-forward --port-forward-namespace argocd);
# APP (zero-downtime-app); EXPECT_VERSIONS; GIT_LOCAL_PORT (9418: the port-forward's local
# port); SYNC_TIMEOUT_SECONDS (600).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

check_overlays "FIRST_OVERLAY SECOND_OVERLAY" "$@"
FIRST=$1
SECOND=$2
IMAGE=${IMAGE:-zero-downtime-app}
TRACKED=${TRACKED:-overlays/v2}
COMPONENT=${COMPONENT:-}
ZDT=${ZDT:-zdt}
ARGOCD=${ARGOCD:-argocd}
# Every argocd command reaches argocd-server through its own port-forward (argocd --help).
export ARGOCD_OPTS=${ARGOCD_OPTS:---port-forward --port-forward-namespace argocd}
APP=${APP:-zero-downtime-app}
GIT_LOCAL_PORT=${GIT_LOCAL_PORT:-9418}
SYNC_TIMEOUT_SECONDS=${SYNC_TIMEOUT_SECONDS:-600}
# Where Argo CD reads the repository, and where the runner pushes to (the port-forward).
REPOSITORY=zero-downtime-gitops.git
REPO_URL=git://git-server.git-server.svc.cluster.local/$REPOSITORY
PUSH_URL=git://127.0.0.1:$GIT_LOCAL_PORT/$REPOSITORY
mkdir -p "$OUT"

forward=
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        "$ARGOCD" app get "$APP" >"$OUT/application.txt" 2>&1 || true
        dump
    fi
    if [ -n "$forward" ]; then
        kill "$forward" 2>/dev/null || true
        wait "$forward" 2>/dev/null || true
    fi
}
trap on_exit EXIT

fail() {
    log "FAIL: $*"
    exit 1
}

# image_of OVERLAY: "NEWNAME TAG DIGEST" of the overlay's images entry, from the reference
# kustomize renders, NEWNAME:TAG@DIGEST (NEWNAME may hold a registry's port).
image_of() {
    local reference rest
    reference=$("$ZDT" show "$1" --image "$IMAGE" --field reference)
    case $reference in
    *@sha256:*) ;;
    *) fail "$1: $IMAGE is $reference, without a digest (pin it: zdt bump --digest)" ;;
    esac
    rest=${reference%@*}
    echo "${rest%:*} ${rest##*:} ${reference##*@}"
}

# last_operation: "PHASE REVISION" of the Application's last sync, as Argo CD reports it.
last_operation() {
    "$ARGOCD" app get "$APP" --output json | "$PYTHON" -c '
import json, sys
operation = json.load(sys.stdin)["status"].get("operationState", {})
print(operation.get("phase", ""), operation.get("syncResult", {}).get("revision", ""))'
}

# synced_to COMMIT: Argo CD's last sync applied that commit, and succeeded.
synced_to() {
    [ "$(last_operation)" = "Succeeded $1" ]
}

git_server_answers() {
    git ls-remote "$PUSH_URL" >/dev/null 2>&1
}

# argocd-server writes the admin password once it has started.
admin_secret_exists() {
    kubectl --namespace argocd get secret argocd-initial-admin-secret >/dev/null 2>&1
}

# argocd app sync, as a user runs it. With automated sync Argo CD may have started a sync of
# its own just before: wait for that operation, then sync again.
sync_app() {
    local output
    if output=$("$ARGOCD" app sync "$APP" --timeout 300 2>&1); then
        echo "$output"
        return
    fi
    echo "$output"
    case $output in
    *"another operation is already in progress"*)
        "$ARGOCD" app wait "$APP" --operation --timeout 300
        "$ARGOCD" app sync "$APP" --timeout 300
        ;;
    *) return 1 ;;
    esac
}

read -r first_name first_tag first_digest <<<"$(image_of "$FIRST")"
read -r _ second_tag second_digest <<<"$(image_of "$SECOND")"

log "git server (../e2e-git-server/), reached at $PUSH_URL"
kubectl apply -k "$HERE/../e2e-git-server"
kubectl --namespace git-server rollout status deployment/git-server --timeout=180s
kubectl --namespace git-server port-forward service/git-server "$GIT_LOCAL_PORT:9418" \
    >"$OUT/port-forward.log" 2>&1 &
forward=$!
wait_until 60 "the git server through the port-forward" git_server_answers

log "commit $TRACKED at $first_tag and push it"
"$ZDT" bump "$TRACKED" --image "$IMAGE" --new-name "$first_name" --tag "$first_tag" \
    --digest "$first_digest"
if [ -n "$COMPONENT" ]; then
    if grep -q '^components:' "$TRACKED/kustomization.yaml"; then
        fail "$TRACKED/kustomization.yaml already has components: add $COMPONENT there by hand"
    fi
    echo "components: [$(realpath --relative-to="$TRACKED" "$COMPONENT")]" \
        >>"$TRACKED/kustomization.yaml"
fi
"$ZDT" push --remote "$PUSH_URL" --branch main --message "e2e: $IMAGE $first_tag in $TRACKED" \
    -- "$TRACKED"
first=$(git rev-parse HEAD)

log "the AppProject and the Application from argocd/, reading $REPO_URL"
"$PYTHON" "$HERE/argocd_app.py" argocd "$REPO_URL" | kubectl apply --namespace argocd -f -
wait_until 120 "Argo CD's initial admin secret" admin_secret_exists
password=$(kubectl --namespace argocd get secret argocd-initial-admin-secret \
    --output 'jsonpath={.data.password}' | base64 --decode)
"$ARGOCD" login --username admin --password "$password"
sync_app
"$ARGOCD" app wait "$APP" --health --sync --timeout "$SYNC_TIMEOUT_SECONDS"
synced_to "$first" || fail "Argo CD's last sync: $(last_operation), not $first"
log "synced $first ($first_tag), healthy"

log "start the load generator"
start_loadgen
sleep "$WARMUP_SECONDS"

log "release $second_tag: the image-tag commit"
"$ZDT" bump "$TRACKED" --image "$IMAGE" --tag "$second_tag" --digest "$second_digest"
"$ZDT" push --remote "$PUSH_URL" --branch main \
    --message "release: $IMAGE $second_tag to $TRACKED [skip ci]" -- "$TRACKED"
release=$(git rev-parse HEAD)
# What the repository's webhook would make Argo CD do: look at git now, not at its next poll.
"$ARGOCD" app get "$APP" --refresh >/dev/null
wait_until "$SYNC_TIMEOUT_SECONDS" "Argo CD to sync $release" synced_to "$release"
log "Argo CD synced $release"
k rollout status "deployment/$DEPLOYMENT" --timeout=600s

log "wait until no pod is terminating"
wait_until 180 "the terminating pods to go" no_terminating_pods
"$ARGOCD" app wait "$APP" --health --sync --timeout "$SYNC_TIMEOUT_SECONDS"
sleep "$COOLDOWN_SECONDS"

stop_loadgen

judge_load

# The history shows each sync's revision as "main (<first 7 hex>)".
"$ARGOCD" app history "$APP" | tee "$OUT/history.txt"
for commit in "$first" "$release"; do
    grep -q "(${commit:0:7})" "$OUT/history.txt" ||
        fail "argocd app history does not list $commit"
done
log "argocd app history lists $first and $release"

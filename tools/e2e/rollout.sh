#!/usr/bin/env bash
# A broken release under Argo Rollouts (blue-green), checked: it is aborted and no user sees it.
#
#   tools/e2e/rollout.sh STABLE_OVERLAY BROKEN_OVERLAY
#       e.g. tools/e2e/rollout.sh tools/e2e-rollout/v1 tools/e2e-rollout/v2-broken
#
# Needs the Argo Rollouts controller in the cluster (e2e.yml installs v1.9.1). Deploys STABLE
# (components/rollout-blue-green switched on) and waits until its Rollout is Healthy, starts the
# in-cluster load generator (../e2e-job/) through the active Service, applies BROKEN (its pods
# ready and healthy, /status answering 500), and asserts that:
#   - the prePromotionAnalysis on the preview Service failed and the Rollout aborted
#     (status.abort true, phase Degraded), the stable ReplicaSet unchanged;
#   - the active Service still selects the stable pods' rollouts-pod-template-hash;
#   - the load generator counted at least MIN_REQUESTS requests, 0 failed, every one answered
#     by EXPECT_VERSION (the stable release) when it is set.
# On any failure it prints the namespace's events and writes events, pod descriptions, logs,
# the Rollout and its AnalysisRuns to $OUT. Every wait is bounded. Uses the current context.
#
# Environment: NAMESPACE (zero-downtime), ROLLOUT (zero-downtime-app), ACTIVE_SERVICE
# (zero-downtime-app), SELECTOR (app.kubernetes.io/name=zero-downtime-app), OUT (e2e-out),
# MIN_REQUESTS (200), EXPECT_VERSION (e.g. v1), WARMUP_SECONDS (10), COOLDOWN_SECONDS (5),
# ABORT_TIMEOUT_SECONDS (600), PYTHON.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

check_overlays "STABLE_OVERLAY BROKEN_OVERLAY" "$@"
STABLE=$1
BROKEN=$2
ROLLOUT=${ROLLOUT:-zero-downtime-app}
ACTIVE_SERVICE=${ACTIVE_SERVICE:-zero-downtime-app}
EXPECT_VERSION=${EXPECT_VERSION:-}
ABORT_TIMEOUT_SECONDS=${ABORT_TIMEOUT_SECONDS:-600}
mkdir -p "$OUT"

on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        k get rollouts,analysisruns,jobs --output yaml >"$OUT/rollouts.yaml" 2>&1 || true
        k describe rollouts >"$OUT/rollout.txt" 2>&1 || true
        dump
    fi
}
trap on_exit EXIT

# rollout_field JSONPATH: one field of the Rollout, e.g. '{.status.phase}'.
rollout_field() {
    k get rollout "$ROLLOUT" --output "jsonpath=$1"
}

# The rollouts-pod-template-hash the active Service selects (empty: none yet).
active_hash() {
    k get service "$ACTIVE_SERVICE" --output json | "$PYTHON" -c '
import json, sys
print(json.load(sys.stdin)["spec"].get("selector", {}).get("rollouts-pod-template-hash", ""))'
}

rollout_healthy() {
    [ "$(rollout_field '{.status.phase}')" = Healthy ] &&
        [ -n "$(rollout_field '{.status.stableRS}')" ] &&
        [ "$(rollout_field '{.status.stableRS}')" = "$(rollout_field '{.status.currentPodHash}')" ]
}

# rollout_on_new_revision HASH: the Rollout works on another pod template than HASH.
rollout_on_new_revision() {
    local current
    current=$(rollout_field '{.status.currentPodHash}')
    [ -n "$current" ] && [ "$current" != "$1" ]
}

# active_on HASH: the active Service selects the pods of that pod-template hash.
active_on() {
    [ "$(active_hash)" = "$1" ]
}

deployment_scaled_down() {
    [ "$(k get deployment "$ROLLOUT" --output 'jsonpath={.spec.replicas}')" = 0 ]
}

rollout_aborted() {
    [ "$(rollout_field '{.status.abort}')" = true ] &&
        [ "$(rollout_field '{.status.phase}')" = Degraded ]
}

fail() {
    log "FAIL: $*"
    exit 1
}

create_namespace

log "deploy $STABLE"
kubectl apply -k "$STABLE"
wait_until 300 "Rollout $ROLLOUT to be Healthy" rollout_healthy
stable=$(rollout_field '{.status.stableRS}')
wait_until 60 "the active Service to select the stable pods ($stable)" active_on "$stable"
# workloadRef with scaleDown: progressively: Argo Rollouts scales the Deployment down to 0.
wait_until 120 "the Deployment to be scaled down" deployment_scaled_down
wait_until 180 "the terminating pods to go" no_terminating_pods
log "stable: pod-template hash $stable, active Service on it"

log "start the load generator (through Service $ACTIVE_SERVICE)"
start_loadgen
sleep "$WARMUP_SECONDS"

log "roll out $BROKEN"
kubectl apply -k "$BROKEN"
wait_until 120 "the Rollout to start the new revision" rollout_on_new_revision "$stable"
broken=$(rollout_field '{.status.currentPodHash}')
log "new revision $broken: waiting for the analysis to fail and the Rollout to abort"
wait_until "$ABORT_TIMEOUT_SECONDS" "the Rollout to abort" rollout_aborted
log "aborted: $(rollout_field '{.status.message}')"

# The first deployment runs no analysis: every AnalysisRun here is the broken revision's.
runs=$(k get analysisruns --output 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}')
log "analysis runs: ${runs:-none}"
echo "$runs" | grep -q ' Failed$' || fail "no failed AnalysisRun for revision $broken"
[ "$(rollout_field '{.status.stableRS}')" = "$stable" ] ||
    fail "stable ReplicaSet moved from $stable to $(rollout_field '{.status.stableRS}')"
active_on "$stable" || fail "active Service selects $(active_hash), not the stable pods ($stable)"
log "the active Service still selects $stable"
sleep "$COOLDOWN_SECONDS"

stop_loadgen

# Every answer from the stable release, when it is named.
EXPECT_VERSIONS=$EXPECT_VERSION ONLY_EXPECTED=${EXPECT_VERSION:+1} judge_load

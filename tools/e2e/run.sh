#!/usr/bin/env bash
# A rolling update under load, checked: zero failed requests.
#
#   tools/e2e/run.sh FROM_OVERLAY TO_OVERLAY     e.g. tools/e2e/run.sh overlays/v1 overlays/v2
#
# Deploys FROM, waits for the rollout, starts the in-cluster load generator (../e2e-job/),
# applies TO, waits for `kubectl rollout status` and until no pod is terminating, stops the load
# and judges its summary with check_load.py (here). On any failure it prints the namespace's
# events and writes events, pod descriptions and logs to $OUT. Uses the current kubectl context.
# On kind (e2e.yml) the overlays are tools/e2e/kind/v1 and v2: smaller CPU requests.
#
# Environment: NAMESPACE (zero-downtime), DEPLOYMENT (zero-downtime-app), SELECTOR
# (app.kubernetes.io/name=zero-downtime-app), OUT (e2e-out), MIN_REQUESTS (200),
# EXPECT_VERSIONS (space-separated X-App-Version values that must answer, e.g. "v1 v2"),
# WARMUP_SECONDS (10: load on FROM alone), COOLDOWN_SECONDS (5: load on TO alone), PYTHON.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

check_overlays "FROM_OVERLAY TO_OVERLAY" "$@"
FROM=$1
TO=$2
mkdir -p "$OUT"

on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        dump
    fi
}
trap on_exit EXIT

create_namespace

log "deploy $FROM"
kubectl apply -k "$FROM"
k rollout status "deployment/$DEPLOYMENT" --timeout=300s

log "start the load generator"
start_loadgen
sleep "$WARMUP_SECONDS"

log "roll out $TO"
kubectl apply -k "$TO"
k rollout status "deployment/$DEPLOYMENT" --timeout=600s

log "wait until no pod is terminating"
wait_until 180 "the terminating pods to go" no_terminating_pods
sleep "$COOLDOWN_SECONDS"

stop_loadgen

judge_load

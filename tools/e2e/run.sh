#!/usr/bin/env bash
# A rolling update under load, checked: zero failed requests.
#
#   tools/e2e/run.sh FROM_OVERLAY TO_OVERLAY     e.g. tools/e2e/run.sh overlays/v1 overlays/v2
#
# Deploys FROM, waits for the rollout, starts the in-cluster load generator (job.yaml here),
# applies TO, waits for `kubectl rollout status` and until no pod is terminating, stops the load
# and judges its summary with check_load.py (here). On any failure it prints the namespace's
# events and writes events, pod descriptions and logs to $OUT. Uses the current kubectl context.
#
# Environment: NAMESPACE (zero-downtime), DEPLOYMENT (zero-downtime-app), SELECTOR
# (app.kubernetes.io/name=zero-downtime-app), OUT (e2e-out), MIN_REQUESTS (200),
# EXPECT_VERSIONS (space-separated X-App-Version values that must answer, e.g. "v1 v2"),
# WARMUP_SECONDS (10: load on FROM alone), COOLDOWN_SECONDS (5: load on TO alone), PYTHON.
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
FROM=$1
TO=$2
NAMESPACE=${NAMESPACE:-zero-downtime}
DEPLOYMENT=${DEPLOYMENT:-zero-downtime-app}
SELECTOR=${SELECTOR:-app.kubernetes.io/name=zero-downtime-app}
OUT=${OUT:-e2e-out}
MIN_REQUESTS=${MIN_REQUESTS:-200}
EXPECT_VERSIONS=${EXPECT_VERSIONS:-}
WARMUP_SECONDS=${WARMUP_SECONDS:-10}
COOLDOWN_SECONDS=${COOLDOWN_SECONDS:-5}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$OUT"

k() { kubectl --namespace "$NAMESPACE" "$@"; }
log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

dump() {
    log "failed; state of namespace $NAMESPACE in $OUT/"
    k get all --output wide >"$OUT/resources.txt" 2>&1 || true
    k get events --sort-by=.lastTimestamp >"$OUT/events.txt" 2>&1 || true
    k describe pods >"$OUT/pods.txt" 2>&1 || true
    k logs --selector "$SELECTOR" --all-containers --prefix --tail=-1 >"$OUT/app.log" 2>&1 || true
    k logs job/loadgen >"$OUT/loadgen.log" 2>&1 || true
    cat "$OUT/events.txt"
    tail -n 30 "$OUT/loadgen.log"
}
on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        dump
    fi
}
trap on_exit EXIT

terminating_pods() {
    k get pods --selector "$SELECTOR" --output json | "$PYTHON" -c '
import json, sys
pods = json.load(sys.stdin)["items"]
print(sum(1 for pod in pods if pod["metadata"].get("deletionTimestamp")))'
}

log "namespace $NAMESPACE (Pod Security: restricted)"
kubectl create namespace "$NAMESPACE" --dry-run=client --output yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted --overwrite

log "deploy $FROM"
kubectl apply -k "$FROM"
k rollout status "deployment/$DEPLOYMENT" --timeout=300s

log "start the load generator"
k delete job loadgen --ignore-not-found --wait=true
kubectl apply -k "$HERE"
k wait --for=condition=Ready pod --selector job-name=loadgen --timeout=180s
sleep "$WARMUP_SECONDS"

log "roll out $TO"
kubectl apply -k "$TO"
k rollout status "deployment/$DEPLOYMENT" --timeout=600s

log "wait until no pod is terminating"
deadline=$((SECONDS + 180))
while [ "$(terminating_pods)" != 0 ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "pods still terminating after 180 s"
        exit 1
    fi
    sleep 2
done
sleep "$COOLDOWN_SECONDS"

log "stop the load generator"
k exec job/loadgen -- python3 -c 'open("/run/loadgen/stop", "w").close()'
k wait --for=condition=complete job/loadgen --timeout=120s
k logs job/loadgen >"$OUT/loadgen.log"

check=(--min-requests "$MIN_REQUESTS")
for version in $EXPECT_VERSIONS; do
    check+=(--expect-version "$version")
done
"$PYTHON" "$HERE/check_load.py" "$OUT/loadgen.log" "${check[@]}"

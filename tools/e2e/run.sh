#!/usr/bin/env bash
# A rolling update under load, checked: zero failed requests.
#
#   tools/e2e/run.sh FROM_OVERLAY TO_OVERLAY     e.g. tools/e2e/run.sh overlays/v1 overlays/v2
#
# Deploys FROM, waits for the rollout, starts the in-cluster load generator (job.yaml here),
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

if [ $# -ne 2 ]; then
    echo "$0: expected FROM_OVERLAY TO_OVERLAY, got $# arguments (the header of $0 lists the settings)" >&2
    exit 2
fi
FROM=$1
TO=$2
for overlay in "$FROM" "$TO"; do
    if [ ! -f "$overlay/kustomization.yaml" ]; then
        echo "$0: $overlay: no kustomization.yaml there" >&2
        exit 2
    fi
done
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
    k describe horizontalpodautoscalers >"$OUT/hpa.txt" 2>&1 || true
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

# wait_until SECONDS WHAT COMMAND...: run COMMAND every 2 s until it succeeds; fail after SECONDS.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "still waiting for $what after $limit s"
            return 1
        fi
        sleep 2
    done
}

# pods_exist SELECTOR: at least one pod matches (kubectl wait fails at once when none does).
pods_exist() {
    [ -n "$(k get pods --selector "$1" --output name)" ]
}

# no_pods SELECTOR: no pod matches any more.
no_pods() {
    [ -z "$(k get pods --selector "$1" --output name)" ]
}

# start_loadgen: a fresh load generator Job, and its pod Ready. The previous Job (a re-run) is
# deleted with its pods first (foreground), and the wait selects the new Job's pods by the
# Job's uid, so it can neither match an old pod nor run before the new pod exists.
start_loadgen() {
    k delete job loadgen --ignore-not-found --cascade=foreground --wait=true --timeout=120s
    wait_until 120 "the previous load generator's pods to go" no_pods job-name=loadgen
    kubectl apply -k "$HERE"
    local uid
    uid=$(k get job loadgen --output 'jsonpath={.metadata.uid}')
    local selector="batch.kubernetes.io/controller-uid=$uid"
    wait_until 120 "the load generator's pod to be created" pods_exist "$selector"
    k wait --for=condition=Ready pod --selector "$selector" --timeout=180s
}

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
start_loadgen
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

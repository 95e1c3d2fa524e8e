# Shared by tools/e2e/run.sh, rollout.sh and argocd.sh (sourced, not run): their common
# settings, the check of their two overlay arguments, kubectl in the namespace, logging, bounded
# waits, the in-cluster load generator (tools/e2e-job/) and the namespace's state on failure. The
# caller sets HERE (this directory) before sourcing it.
# shellcheck shell=bash disable=SC2034

NAMESPACE=${NAMESPACE:-zero-downtime}
SELECTOR=${SELECTOR:-app.kubernetes.io/name=zero-downtime-app}
OUT=${OUT:-e2e-out}
MIN_REQUESTS=${MIN_REQUESTS:-200}
WARMUP_SECONDS=${WARMUP_SECONDS:-10}
COOLDOWN_SECONDS=${COOLDOWN_SECONDS:-5}
PYTHON=${PYTHON:-python3}
DEPLOYMENT=${DEPLOYMENT:-zero-downtime-app}
# Space-separated X-App-Version values that must have answered the load, e.g. "v1 v2".
EXPECT_VERSIONS=${EXPECT_VERSIONS:-}
# How often wait_until asks the cluster again; the tests' stand-in clusters answer at once.
POLL_SECONDS=${POLL_SECONDS:-2}

# check_overlays "FIRST_NAME SECOND_NAME" ARGUMENTS...: exactly two overlay directories, each
# with a kustomization.yaml; otherwise one line and exit 2.
check_overlays() {
    local names=$1
    shift
    if [ $# -ne 2 ]; then
        echo "$0: expected $names, got $# arguments (the header of $0 lists the settings)" >&2
        exit 2
    fi
    local overlay
    for overlay in "$@"; do
        if [ ! -f "$overlay/kustomization.yaml" ]; then
            echo "$0: $overlay: no kustomization.yaml there" >&2
            exit 2
        fi
    done
}

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

# wait_until SECONDS WHAT COMMAND...: run COMMAND every POLL_SECONDS until it succeeds; fail
# after SECONDS.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "still waiting for $what after $limit s"
            return 1
        fi
        sleep "$POLL_SECONDS"
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

# no_terminating_pods: no pod of the service (SELECTOR) is terminating.
no_terminating_pods() {
    local count
    count=$(k get pods --selector "$SELECTOR" --output json | "$PYTHON" -c '
import json, sys
pods = json.load(sys.stdin)["items"]
print(sum(1 for pod in pods if pod["metadata"].get("deletionTimestamp")))')
    [ "$count" = 0 ]
}

# create_namespace: the namespace, labelled for the restricted Pod Security Standard.
create_namespace() {
    log "namespace $NAMESPACE (Pod Security: restricted)"
    kubectl create namespace "$NAMESPACE" --dry-run=client --output yaml | kubectl apply -f -
    kubectl label namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted --overwrite
}

# start_loadgen: a fresh load generator Job, and its pod Ready. The previous Job (a re-run) is
# deleted with its pods first (foreground), and the wait selects the new Job's pods by the
# Job's uid, so it can neither match an old pod nor run before the new pod exists.
start_loadgen() {
    k delete job loadgen --ignore-not-found --cascade=foreground --wait=true --timeout=120s
    wait_until 120 "the previous load generator's pods to go" no_pods job-name=loadgen
    kubectl apply -k "$HERE/../e2e-job"
    local uid
    uid=$(k get job loadgen --output 'jsonpath={.metadata.uid}')
    local selector="batch.kubernetes.io/controller-uid=$uid"
    wait_until 120 "the load generator's pod to be created" pods_exist "$selector"
    k wait --for=condition=Ready pod --selector "$selector" --timeout=180s
}

# judge_load: check_load.py on the load generator's log: at least MIN_REQUESTS requests, none
# failed, every version in EXPECT_VERSIONS answered and, with ONLY_EXPECTED=1, no other.
judge_load() {
    local check=(--min-requests "$MIN_REQUESTS") version
    for version in $EXPECT_VERSIONS; do
        check+=(--expect-version "$version")
    done
    if [ "${ONLY_EXPECTED:-}" = 1 ]; then
        check+=(--only)
    fi
    "$PYTHON" "$HERE/check_load.py" "$OUT/loadgen.log" "${check[@]}"
}

# stop_loadgen: stop the load, wait for the Job to complete, keep its log in $OUT/loadgen.log.
stop_loadgen() {
    log "stop the load generator"
    k exec job/loadgen -- python3 -c 'open("/run/loadgen/stop", "w").close()'
    k wait --for=condition=complete job/loadgen --timeout=120s
    k logs job/loadgen >"$OUT/loadgen.log"
}

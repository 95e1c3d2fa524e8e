# Sourced by release.yml's steps (not run): `retry COMMAND [ARGUMENTS...]` runs COMMAND (a
# program or a shell function) until it succeeds, at most RETRY_ATTEMPTS times (6), pausing
# RETRY_DELAY_SECONDS (5) after the first failure and twice as long after each next one: 155 s
# of pauses at most. Its status is COMMAND's last.
#
# For reads of a registry right after a push: ECR Public may answer MANIFEST_UNKNOWN, or a tag's
# old digest, for a while after it accepted the push (aws/aws-for-fluent-bit#946 waits 60 s before
# it verifies its ECR Public images; docker/actions-toolkit#1207, "sigstore: retry transient
# manifest lookups", retries imagetools' lookup of a just-pushed manifest for the same reason).
# shellcheck shell=bash

retry() {
    local attempts=${RETRY_ATTEMPTS:-6} delay=${RETRY_DELAY_SECONDS:-5} attempt=1 status
    while true; do
        "$@" && return 0
        status=$?
        if [ "$attempt" -ge "$attempts" ]; then
            echo "retry: $1 failed $attempts times (exit $status), giving up" >&2
            return "$status"
        fi
        echo "retry: $1 failed (exit $status, attempt $attempt/$attempts), again in $delay s" >&2
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2))
    done
}

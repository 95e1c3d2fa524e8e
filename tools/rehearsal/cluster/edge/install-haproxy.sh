#!/bin/sh
# The rehearsal's stand-in for an AWS ALB is HAProxy from the distribution's packages
# (tools/rehearsal/cluster/edge/haproxy.py; Debian 12 ships 2.6). `make demo` and `make test`
# run this first: it installs haproxy with apt-get when it is missing (as root, or through
# passwordless sudo, as on a CI runner), and does nothing when it is there.
set -eu

command -v haproxy >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/haproxy ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "haproxy is missing: run 'apt-get install -y haproxy' as root (the rehearsal's ALB stand-in)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "haproxy is missing and there is no apt-get: install HAProxy >= 2.6 and put it on PATH" >&2
    exit 1
fi
echo "installing haproxy (the rehearsal's ALB stand-in) with apt-get"
$as_root apt-get update -qq
$as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends haproxy >/dev/null

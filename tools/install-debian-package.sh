#!/bin/sh
# Install a program the rehearsal runs from the distribution's packages, when it is missing:
#   sh tools/install-debian-package.sh PACKAGE COMMAND WHAT
# (`make haproxy`: HAProxy, the ALB stand-in; `make nginx`: nginx, a server the examples
# rehearse). As root, or through passwordless sudo as on a CI runner; with apt-get. Services
# the package would start are not started (policy-rc.d): the rehearsal runs its own processes.
set -eu

package=$1 command=$2 what=$3
command -v "$command" >/dev/null 2>&1 && exit 0
[ -x "/usr/sbin/$command" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "$command is missing: run 'apt-get install -y $package' as root ($what)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$command is missing and there is no apt-get: install $package and put $command on PATH" >&2
    exit 1
fi
echo "installing $package ($what) with apt-get"
policy=/usr/sbin/policy-rc.d
placed=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $as_root tee "$policy" >/dev/null
    $as_root chmod 755 "$policy"
    placed=1
fi
# One package index refresh serves the next install too (`make test` installs two).
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -30 2>/dev/null | head -n 1)" ]; then
    $as_root apt-get update -qq
fi
status=0
$as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$package" >/dev/null || status=$?
[ -n "$placed" ] && $as_root rm -f "$policy"
exit $status

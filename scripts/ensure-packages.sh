#!/bin/sh
# ensure-packages.sh PKG...: install the Debian packages that are missing.
# make check, make bench and .ci/run call it; they run as root on a fresh
# Debian 12.  Without root or apt it only says what is missing: the tests
# that need a package then skip themselves.
set -u
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-packages:$missing missing (not root, or no apt-get): install them to run everything" >&2
    exit 0
fi
echo "ensure-packages: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt (a second make, unattended-upgrades on a fresh machine) may hold
# the dpkg lock: wait for it rather than fail.
wait="-o DPkg::Lock::Timeout=600"
apt-get $wait install -y -q $missing >/dev/null 2>&1 || { apt-get $wait update -q >/dev/null 2>&1; apt-get $wait install -y -q $missing >/dev/null; } || {
    echo "ensure-packages: could not install$missing" >&2
    exit 1
}

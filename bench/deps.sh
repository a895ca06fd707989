#!/bin/sh
# Install what the benchmarks need on Debian (asmjit for the JitAllocator
# peer, gnuplot for the plots), only if missing.  Runs as root (make bench).
set -eu
PKGS="libasmjit-dev gnuplot-nox"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "bench/deps.sh: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y $missing
fi

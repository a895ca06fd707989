#!/bin/sh
# wine-chroot.sh [--host] [--setup] PROGRAM.exe [ARG...]
#
# Runs a Windows program under Wine 10: Debian 13's wine64 inside a minimal
# Debian 13 chroot, because the host (Debian 12) ships Wine 8, whose
# VirtualAlloc2 has no placeholders.  With --host it runs the program under the
# host's own Wine 8 instead (the fallback mode of the region is tested there).
# --setup only builds what is missing and exits.
#
# The chroot is built once and cached outside the source tree
# (VMC_WINE_CACHE, default /var/cache/vmcode): debootstrap --variant=minbase
# into a temporary directory, apt-get install wine64, create a Wine prefix, and
# only then rename it into place with a marker file, so an interrupted build is
# never mistaken for a complete one.  Each run happens in a private mount
# namespace (unshare --mount): /proc, /dev, a fresh /tmp and the current
# directory (bound at the same path, so file names given to the program are the
# same inside) are mounted there and vanish with the namespace: nothing stays
# mounted on the host.  Runs are serialised per Wine (one Wine prefix, one
# wineserver).  Needs root (debootstrap, chroot, unshare --mount).
#
# Exit status: the program's; 125 when Wine cannot be set up.
set -u
cache=${VMC_WINE_CACHE:-/var/cache/vmcode}
root=$cache/wine-trixie
here=$(cd "$(dirname "$0")" && pwd)
host=0
setup_only=0
while [ $# -gt 0 ]; do
    case $1 in
        --host) host=1; shift ;;
        --setup) setup_only=1; shift ;;
        *) break ;;
    esac
done
die() { echo "wine-chroot: $*" >&2; exit 125; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, unshare --mount)"
mkdir -p "$cache" || die "cannot create $cache"

# The host's Debian mirror: the chroot must be built from the same place the
# host installs from (CI machines may only reach their own mirror).
host_mirror() {
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | grep -i debian | head -n 1)
    [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | grep -i debian | head -n 1)
    echo "${m:-http://deb.debian.org/debian}"
}

# --- the host's Wine 8 -------------------------------------------------------------
if [ $host -eq 1 ]; then
    sh "$here/ensure-packages.sh" wine64 wine || exit 125
    wine=$(command -v wine || command -v wine64 || echo /usr/lib/wine/wine64)
    [ -x "$wine" ] || die "no wine binary after installing wine64"
    prefix=$cache/wine8-prefix
    exec 9>"$cache/wine8.lock"
    flock 9
    export WINEPREFIX=$prefix WINEDEBUG=${WINEDEBUG:--all} WINEDLLOVERRIDES="mscoree,mshtml="
    if [ ! -e "$prefix/.vmcode-complete" ]; then
        rm -rf "$prefix"
        "$wine" wineboot -i >/dev/null 2>&1 && wineserver -w && touch "$prefix/.vmcode-complete" ||
            die "wineboot failed for $prefix"
    fi
    [ $setup_only -eq 1 ] && exit 0
    "$wine" "$@"
    rc=$?
    wineserver -w
    exit $rc
fi

# --- the Debian 13 chroot ------------------------------------------------------------
build_chroot() {
    sh "$here/ensure-packages.sh" debootstrap || exit 125
    tmp=$root.tmp
    rm -rf "$tmp"
    mirror=$(host_mirror)
    echo "wine-chroot: building $root from $mirror (once)" >&2
    debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        die "debootstrap failed: see $cache/debootstrap.log"
    in_ns "$tmp" sh -c 'export DEBIAN_FRONTEND=noninteractive
        apt-get update -q && apt-get install -y -q --no-install-recommends wine wine64 &&
        apt-get clean' >"$cache/apt.log" 2>&1 || die "apt-get install wine64 failed: see $cache/apt.log"
    wine=$(chroot "$tmp" sh -c 'command -v wine || command -v wine64 || echo /usr/lib/wine/wine64')
    in_ns "$tmp" env XDG_RUNTIME_DIR=/tmp WINEPREFIX=/root/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        sh -c "$wine wineboot -i && wineserver -w" >"$cache/wineboot.log" 2>&1 ||
        die "wineboot failed: see $cache/wineboot.log"
    echo "$wine" >"$tmp/.vmcode-wine"
    in_ns "$tmp" "$wine" --version >"$tmp/.vmcode-version" 2>/dev/null ||
        die "the chroot's wine does not run"
    mv "$tmp/.vmcode-version" "$tmp/.vmcode-complete"
    rm -rf "$root" && mv "$tmp" "$root"
}

# in_ns DIR CMD...: CMD chrooted into DIR, in a private mount namespace.
in_ns() {
    dir=$1; shift
    unshare --mount --propagation private sh -c '
        dir=$1; cwd=$2; shift 2
        mount -t proc proc "$dir/proc" &&
        mount --rbind /dev "$dir/dev" &&
        mount -t tmpfs tmpfs "$dir/tmp" &&
        cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null
        case $cwd in /) ;; *) mkdir -p "$dir$cwd" && mount --bind "$cwd" "$dir$cwd" ;; esac || exit 125
        exec chroot "$dir" sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
    ' in_ns "$dir" "$(pwd)" "$@"
}

exec 9>"$cache/wine-trixie.lock"
flock 9
[ -e "$root/.vmcode-complete" ] || build_chroot
[ $setup_only -eq 1 ] && exit 0
[ $# -gt 0 ] || die "usage: wine-chroot.sh [--host] [--setup] PROGRAM.exe [ARG...]"
wine=$(cat "$root/.vmcode-wine")
in_ns "$root" env XDG_RUNTIME_DIR=/tmp WINEPREFIX=/root/wine WINEDEBUG="${WINEDEBUG:--all}" WINEDLLOVERRIDES="mscoree,mshtml=" \
    sh -c "\"$wine\" \"\$@\"; rc=\$?; wineserver -w; exit \$rc" wine "$@"

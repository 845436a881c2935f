#!/bin/sh
# Installs the .deb with `apt-get install ./qmc_*.deb` into a clean Debian 12
# root and compiles, runs and scores digits there. Run by hand, as root, not
# by CI: it needs debootstrap and the Debian mirror, downloads about 200 MB
# (the base system once, then clang-19 and LLVM 19 for every run) and takes
# one to two minutes once the base is cached. (CI checks the package's
# metadata, dependencies and contents instead: deb.sh.)
#
# usage: tests/install/deb-chroot.sh BUILD [CACHE]
#   BUILD  a configured and built qmc build folder (cpack -G DEB runs there)
#   CACHE  where the pristine root is kept between runs (default
#          /var/tmp/qmc-deb-chroot; delete it to start from a new one)
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -eu
build=$(cd "${1:?usage: deb-chroot.sh BUILD [CACHE]}" && pwd)
cache=${2:-/var/tmp/qmc-deb-chroot}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "deb-chroot.sh: run as root (chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "deb-chroot.sh: apt-get install debootstrap" >&2; exit 1; }
start=$(date +%s)

# the base system, made once: Debian 12, minbase (apt, dpkg, coreutils)
if [ ! -f "$cache/base/etc/debian_version" ]; then
    rm -rf "$cache/base.tmp"
    mkdir -p "$cache"
    debootstrap --variant=minbase bookworm "$cache/base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log"; exit 1; }
    mv "$cache/base.tmp" "$cache/base"
fi

# a scratch copy for this run, with the sources of a fresh installation
root=$cache/run
cleanup() {
    umount "$root/proc" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT
cleanup
cp -a "$cache/base" "$root"
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"

(cd "$root/tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$root/tmp" >/dev/null)
deb=$(cd "$root/tmp" && ls qmc_*.deb)
echo "deb-chroot: $deb, $(dpkg-deb -f "$root/tmp/$deb" Depends)"

chroot "$root" /bin/sh -eu <<INSIDE
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd /tmp
apt-get update -qq
apt-get install -y --no-install-recommends ./$deb >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }
grep -E '^(Need to get|After this operation)' /tmp/apt.log
qmc --version
ex=/usr/share/doc/qmc/examples/digits
qmc compile \$ex/digits.qm --precision int8 -o digits
./digits --input x=\$ex/test_x.npy --output logits=logits.npy
acc=\$(qmc eval \$ex/digits.qm --metric accuracy --predictions logits.npy --labels \$ex/test_y.npy)
echo "deb-chroot: digits int8, compiled in the clean root: \$acc"
[ "\$acc" = "accuracy 0.9700 (485/500)" ]
qmc compile \$ex/digits.qm --emit lib -o libdigits.a
qmc compile \$ex/digits.qm --emit shared -o libdigits.so
[ -f /usr/share/man/man1/qmc.1 ]
INSIDE
echo "deb-chroot: ok ($(($(date +%s) - start)) s)"

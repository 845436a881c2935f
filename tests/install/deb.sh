#!/bin/sh
# The Debian package `cpack -G DEB` makes, checked without installing it
# (installing it into a clean Debian 12 root is deb-chroot.sh, run by
# hand: it downloads ~200 MB and takes minutes):
#  - its name, version and architecture;
#  - its dependencies: each shared library qmc needs (ELF NEEDED) and each
#    tool `qmc compile` runs (clang-19, llvm-ar-19, from the packages that
#    provide them on this machine), and no -dev package;
#  - the files it installs;
#  - unpacked anywhere, its qmc compiles and runs digits;
#  - apt accepts it here (`apt-get install --simulate ./qmc_*.deb`).
. "$(dirname "$0")/lib.sh"
arch=$(dpkg --print-architecture)
deb=$t/qmc_${version}_$arch.deb
(cd "$t" && cpack -G DEB --config "$QMC_BUILD/CPackConfig.cmake" -B "$t" >"$t/cpack.log" 2>&1) ||
    { cat "$t/cpack.log"; fail "cpack -G DEB"; }
[ -f "$deb" ] || fail "cpack made no $(basename "$deb"): $(ls "$t")"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = qmc ] && [ "$(field Version)" = "$version" ] && [ "$(field Architecture)" = "$arch" ] ||
    fail "control: $(dpkg-deb -f "$deb")"
depends=$(field Depends)
echo "Depends: $depends"
has_dep() { echo ", $depends," | grep -q ", $1[ ,]"; }
echo "$depends" | grep -q -- '-dev\b' && fail "depends on a -dev package: $depends"

# owner PATH: the package that provides PATH here (as dpkg knows it, or
# with the symbolic links resolved: /lib is /usr/lib on Debian 12)
owner() {
    { dpkg -S "$1" 2>/dev/null || dpkg -S "$(readlink -f "$1")" 2>/dev/null; } | sed -n '1s/[:,].*//p' | grep .
}
# each library qmc needs, from the package that provides it here
dpkg-deb -x "$deb" "$t/root"
qmc=$t/root/usr/bin/qmc
for lib in $(readelf -d "$qmc" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$qmc" | sed -n "s|^\t$lib => \([^ ]*\) .*|\1|p")
    pkg=$(owner "$path") || fail "no package provides $lib ($path)"
    has_dep "$pkg" || fail "qmc needs $lib from $pkg, which is not in Depends: $depends"
done
# each tool qmc compile runs (compiler/codegen/link.c)
for tool in clang-19 llvm-ar-19; do
    pkg=$(owner "$(command -v $tool)") || fail "no package provides $tool"
    has_dep "$pkg" || fail "qmc runs $tool from $pkg, which is not in Depends: $depends"
done

dpkg-deb -c "$deb" | awk '{print $6}' >"$t/files"
for f in ./usr/bin/qmc ./usr/include/qmc_runtime.h ./usr/lib/cmake/qmc/qmcConfig.cmake \
    ./usr/lib/cmake/qmc/qmcConfigVersion.cmake ./usr/lib/pkgconfig/qmc-runtime.pc \
    ./usr/lib/qmc/x86_64-linux-gnu/libqmc_rt.a ./usr/lib/qmc/aarch64-linux-gnu/libqmc_rt.a \
    ./usr/share/man/man1/qmc.1 ./usr/share/doc/qmc/examples/digits/digits.qm; do
    grep -qx "$f" "$t/files" || fail "the package lacks $f"
done

# unpacked, its qmc compiles digits (and finds its runtime beside itself)
ex=$t/root/usr/share/doc/qmc/examples/digits
"$qmc" compile "$ex/digits.qm" --precision int8 -o "$t/digits"
"$t/digits" --input x="$ex/test_x.npy" --output logits="$t/logits.npy"
acc=$("$qmc" eval "$ex/digits.qm" --metric accuracy --predictions "$t/logits.npy" --labels "$ex/test_y.npy")
echo "the package's qmc: digits int8 $acc"
[ "$acc" = "accuracy 0.9700 (485/500)" ] || fail "digits int8 from the package's qmc: $acc"

# apt resolves its dependencies against this machine's packages
apt-get install --simulate "$deb" >"$t/apt.log" 2>&1 || { cat "$t/apt.log"; fail "apt-get install --simulate"; }
grep -q "^Inst qmc " "$t/apt.log" || grep -q "qmc is already the newest version" "$t/apt.log" ||
    fail "apt would not install qmc: $(cat "$t/apt.log")"
echo ok

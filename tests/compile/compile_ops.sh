#!/bin/sh
# Every op of the language (all_ops.qm) compiled for the host and for
# aarch64 (under qemu), at -O0 and -O3, against the interpreter: outputs
# within 1e-5 of the largest value.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${NPYSLICE:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
here=$QMC_SOURCE/tests/compile
"$NPYSLICE" "$QMC_SOURCE/examples/digits/test_x.npy" 0 3 "$t/x.npy"
"$NPYSLICE" "$QMC_SOURCE/examples/digits/test_y.npy" 0 5 "$t/ids.npy"
outs="a b c d e f g g2 g3 u1 u2 r1 r2 r3 ls gt ex"
args=""
for o in $outs; do args="$args --output $o=$t/ref_$o.npy"; done
"$QMC" run "$here/all_ops.qm" --input x="$t/x.npy" --input ids="$t/ids.npy" $args
check() { # NAME RUNNER COMPILE-FLAGS...
    name=$1 runner=$2
    shift 2
    "$QMC" compile "$here/all_ops.qm" -o "$t/m" "$@"
    args=""
    for o in $outs; do args="$args --output $o=$t/got_$o.npy"; done
    $runner "$t/m" --input x="$t/x.npy" --input ids="$t/ids.npy" $args
    for o in $outs; do
        "$NPYCMP" "$t/got_$o.npy" "$t/ref_$o.npy" --rtol-max 1e-5 >/dev/null ||
            { echo "FAIL: $name: output $o differs from the interpreter"; "$NPYCMP" "$t/got_$o.npy" "$t/ref_$o.npy" --rtol-max 1e-5; exit 1; }
    done
    echo "$name: all outputs match"
}
check "host -O3" ""
check "host -O0" "" -O0
# x86-64-v3 code runs natively only on a CPU with AVX2 and FMA
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    check "x86-64-v3" "" --cpu x86-64-v3
else
    echo "x86-64-v3: skipped, this CPU lacks AVX2 or FMA"
fi
check "aarch64" "qemu-aarch64" --target aarch64-linux-gnu --cpu neoverse-n1

#!/bin/sh
# cnn.qm (every convolutional kernel, odd sizes) compiled for several
# targets and precisions against the interpreter running the same
# precision: every output within 1e-4 of its largest value (f32 and
# dequantized int8/FP8 weights differ from the interpreter only in the
# order of sums; with `:a8` the compiled integer sums are exact, the
# interpreter's float sums of the same products round). When every layer
# has int8 activations, a value an earlier layer's float sums put on a
# rounding boundary can take the neighbouring code, which moves later
# outputs by up to a quantum: such whole-model `:a8` builds are held to
# 1e-2, and one `:a8` layer at a time (dense, generic, pointwise, the rest
# f32) to 1e-4. Host (AVX-512 VNNI where present), x86-64-v3 and baseline
# x86-64 (no integer dot products: `:a8` in float), aarch64 Neoverse N1
# (sdot) and Cortex-A72 (none) under qemu.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${MKDATA:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
here=$QMC_SOURCE/tests/cnn
. "$here/weights.sh"
cnn_weights "$t/w.safetensors"
"$MKDATA" "$t/x.npy" 2x3x17x15 3
"$MKDATA" "$t/calib.npy" 4x2x3x17x15 4
outs="logits feat side up up2"
run_ref() { # PRECISION [calib]
    args=""
    for o in $outs; do args="$args --output $o=$t/ref_$o.npy"; done
    if [ -n "${2:-}" ]; then
        "$QMC" run "$here/cnn.qm" --weights "$t/w.safetensors" --precision "$1" --calib x="$t/calib.npy" \
            --input x="$t/x.npy" $args
    else
        "$QMC" run "$here/cnn.qm" --weights "$t/w.safetensors" --precision "$1" --input x="$t/x.npy" $args
    fi
}
check() { # NAME PRECISION RUNNER COMPILE-FLAGS...
    name=$1 prec=$2 runner=$3
    shift 3
    "$QMC" compile "$here/cnn.qm" --weights "$t/w.safetensors" --precision "$prec" -o "$t/m" "$@"
    args=""
    for o in $outs; do args="$args --output $o=$t/got_$o.npy"; done
    $runner "$t/m" --input x="$t/x.npy" $args
    tol=1e-4
    case $prec in *:a8*) tol=1e-2 ;; esac
    case $prec in *=*) tol=1e-4 ;; esac
    for o in $outs; do
        "$NPYCMP" "$t/got_$o.npy" "$t/ref_$o.npy" --rtol-max $tol >/dev/null || {
            echo "FAIL: $name $prec: output $o differs from the interpreter"
            "$NPYCMP" "$t/got_$o.npy" "$t/ref_$o.npy" --rtol-max $tol
            exit 1
        }
    done
    echo "$name $prec: all outputs match"
}
v3=""
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && v3=1
for prec in f32 int8 int8:a8 fp8e4m3 fp8e5m2 int4 int4:a8; do
    run_ref "$prec"
    check host "$prec" ""
    case $prec in
    f32 | int8:a8)
        [ -n "$v3" ] && check x86-64-v3 "$prec" "" --cpu x86-64-v3
        check x86-64 "$prec" "" --cpu x86-64
        check neoverse-n1 "$prec" qemu-aarch64 --target aarch64-linux-gnu --cpu neoverse-n1
        check cortex-a72 "$prec" qemu-aarch64 --target aarch64-linux-gnu --cpu cortex-a72
        ;;
    int8 | fp8e4m3) check neoverse-n1 "$prec" qemu-aarch64 --target aarch64-linux-gnu --cpu neoverse-n1 ;;
    esac
done
run_ref f32
check "host -O0" f32 "" -O0
for one in gr.weight gen.weight pw.weight; do
    run_ref "f32,$one=int8:a8"
    check host "f32,$one=int8:a8" ""
    check neoverse-n1 "f32,$one=int8:a8" qemu-aarch64 --target aarch64-linux-gnu --cpu neoverse-n1
done
run_ref int8:a8:static calib
check host int8:a8:static "" --calib x="$t/calib.npy"
check neoverse-n1 int8:a8:static qemu-aarch64 --target aarch64-linux-gnu --cpu neoverse-n1 --calib x="$t/calib.npy"

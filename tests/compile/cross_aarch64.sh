#!/bin/sh
# Both models cross-compiled for aarch64-linux-gnu (Neoverse N1), run under
# qemu-aarch64, and compared with the same models compiled for the host.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${NPYSLICE:?}"
command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 is not installed (apt-get install qemu-user)"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
digits=$QMC_SOURCE/examples/digits
lm=$QMC_SOURCE/examples/tiny-gpt
gpt="$QMC_SOURCE/examples/tiny-gpt/tiny-gpt.qm --weights $lm/lm-dev.safetensors"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$t/seq0.npy"
for p in f32 int8 int4 fp8e4m3; do
    for m in digits gpt; do
        if [ $m = digits ]; then src="$digits/digits.qm"; in="x=$digits/test_x.npy"; out=logits
        else src=$gpt; in="idx=$t/seq0.npy"; out=logits; fi
        "$QMC" compile $src --precision "$p" -o "$t/host"
        "$QMC" compile $src --precision "$p" --target aarch64-linux-gnu --cpu neoverse-n1 -o "$t/arm"
        # ELF e_machine (bytes 18-19) is 0xb7 for aarch64
        [ "$(od -An -tx1 -j18 -N2 "$t/arm" | tr -d ' ')" = b700 ] || { echo "FAIL: $m $p is not an aarch64 executable"; exit 1; }
        "$t/host" --input "$in" --output "$out=$t/host.npy"
        qemu-aarch64 "$t/arm" --input "$in" --output "$out=$t/arm.npy"
        if [ "$p" != f32 ]; then tol="--rtol-max 1e-3"; elif [ $m = digits ]; then tol="--atol 1e-4"; else tol="--atol 1e-3"; fi
        echo "$m $p: $("$NPYCMP" "$t/arm.npy" "$t/host.npy" $tol)"
    done
done

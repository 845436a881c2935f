#!/bin/sh
# End to end: both example models compiled for the host with every weight
# format, run as executables, and compared with the interpreter running the
# same quantized weights (the same numerics, not just "close to fp32");
# accuracy and perplexity per format printed; the int8 and int4 perplexity
# bounds of the codegen issue asserted.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${NPYSLICE:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
digits=$QMC_SOURCE/examples/digits
gpt=$QMC_SOURCE/examples/tiny-gpt/tiny-gpt.qm
lm=$QMC_SOURCE/examples/tiny-gpt
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$t/seq0.npy"

fail() { echo "FAIL: $*" >&2; exit 1; }
ppl() { "$QMC" eval "$gpt" --weights "$lm/lm-dev.safetensors" --metric perplexity --tokens "$lm/val_tokens.npy" "$@" |
        sed 's/^perplexity \([0-9.]*\).*/\1/'; }

ppl_f32=$(ppl)
echo "format      digits-accuracy  tiny-gpt-perplexity"
for p in f32 int8 int4 int4:g128 fp8e4m3 fp8e5m2 int8:a8 int4:a8 int3 nf4 bf16; do
    # digits: 500 images as one batch
    "$QMC" compile "$digits/digits.qm" --precision "$p" -o "$t/d"
    "$t/d" --input x="$digits/test_x.npy" --output logits="$t/d.npy"
    "$QMC" run "$digits/digits.qm" --precision "$p" --input x="$digits/test_x.npy" --output logits="$t/di.npy"
    # int8 activations: a last-bit difference upstream can move an
    # activation across a rounding boundary (one code), so the bound is looser
    case $p in f32) tol="--atol 1e-4" ;; *:a8) tol="--rtol-max 1e-2" ;; *) tol="--rtol-max 1e-3" ;; esac
    "$NPYCMP" "$t/d.npy" "$t/di.npy" $tol >/dev/null || fail "digits $p: compiled differs from the interpreter"
    acc=$("$QMC" eval "$digits/digits.qm" --precision "$p" --metric accuracy --input x="$digits/test_x.npy" \
          --labels "$digits/test_y.npy" | sed 's/^accuracy \([0-9.]*\).*/\1/')
    # tiny-gpt: sequence 0
    "$QMC" compile "$gpt" --weights "$lm/lm-dev.safetensors" --precision "$p" -o "$t/g"
    "$t/g" --input idx="$t/seq0.npy" --output logits="$t/g.npy"
    "$QMC" run "$gpt" --weights "$lm/lm-dev.safetensors" --precision "$p" --input idx="$t/seq0.npy" --output logits="$t/gi.npy"
    case $p in f32) tol="--atol 1e-3" ;; *:a8) tol="--rtol-max 1e-2" ;; *) tol="--rtol-max 1e-3" ;; esac
    "$NPYCMP" "$t/g.npy" "$t/gi.npy" $tol >/dev/null || fail "tiny-gpt $p: compiled differs from the interpreter"
    if [ "$p" = f32 ]; then
        "$NPYCMP" "$t/g.npy" "$lm/logits_fp32_seq0.npy" --atol 1e-3 >/dev/null || fail "tiny-gpt f32 differs from PyTorch"
        "$NPYCMP" "$t/d.npy" "$digits/logits_fp32.npy" --atol 1e-4 >/dev/null || fail "digits f32 differs from PyTorch"
    fi
    # the same results with two threads as with one
    "$t/g" --input idx="$t/seq0.npy" --output logits="$t/g2.npy" --threads 2
    "$NPYCMP" "$t/g.npy" "$t/g2.npy" >/dev/null || fail "tiny-gpt $p: two threads change the results"
    pp=$(ppl --precision "$p")
    printf '%-11s %-16s %s\n' "$p" "$acc" "$pp"
    case $p in
    int8) awk -v a="$pp" -v b="$ppl_f32" 'BEGIN { exit !(a <= b * 1.003) }' || fail "int8 perplexity $pp is not within 0.3% of $ppl_f32" ;;
    int4) awk -v a="$pp" -v b="$ppl_f32" 'BEGIN { exit !(a <= b * 1.03) }' || fail "int4 perplexity $pp is not within 3% of $ppl_f32" ;;
    esac
done
echo "ok"

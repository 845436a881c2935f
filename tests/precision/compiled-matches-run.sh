#!/bin/sh
# The compiled model computes what `qmc run` computes with the same
# precision flags (the interpreter simulating the same quantized weights),
# and the report's precision_spec reproduces the choice exactly; for digits
# (weights only, and int8 activations with calibrated scales) and tiny-gpt.
. "$(dirname "$0")/lib.sh"
calib="--calib x=$digits/calib_x.npy"
for p in auto auto:a8:static; do
    "$QMC" compile "$digits/digits.qm" --precision $p --budget-bits 4.5 $calib -o "$work/d" --report "$work/d.json"
    "$work/d" --input x="$digits/test_x.npy" --output logits="$work/d.npy"
    "$QMC" run "$digits/digits.qm" --precision $p --budget-bits 4.5 $calib --input x="$digits/test_x.npy" \
        --output logits="$work/di.npy"
    # int8 activations: one code can differ where a last-bit difference meets a rounding boundary
    case $p in *:a8*) tol="--rtol-max 1e-2" ;; *) tol="--rtol-max 1e-3" ;; esac
    "$NPYCMP" "$work/d.npy" "$work/di.npy" $tol >/dev/null || fail "digits $p: compiled differs from qmc run"
    spec=$(sed -n 's/^  "precision_spec": "\(.*\)",$/\1/p' "$work/d.json")
    "$QMC" run "$digits/digits.qm" --precision "$spec" $calib --input x="$digits/test_x.npy" --output logits="$work/ds.npy"
    "$NPYCMP" "$work/ds.npy" "$work/di.npy" >/dev/null || fail "digits $p: '$spec' does not reproduce the choice"
    check_report_sums "$work/d.json"
done
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$work/seq0.npy"
flags="--precision auto --budget-bits 4.5 --calib idx=$lm/calib_tokens.npy --sensitivity-samples 4"
gpt compile $flags -o "$work/g" --report "$work/g.json"
"$work/g" --input idx="$work/seq0.npy" --output logits="$work/g.npy"
gpt run $flags --input idx="$work/seq0.npy" --output logits="$work/gi.npy"
"$NPYCMP" "$work/g.npy" "$work/gi.npy" --rtol-max 1e-3 || fail "tiny-gpt: compiled differs from qmc run"
spec=$(sed -n 's/^  "precision_spec": "\(.*\)",$/\1/p' "$work/g.json")
gpt run --precision "$spec" --calib idx="$lm/calib_tokens.npy" --input idx="$work/seq0.npy" --output logits="$work/gs.npy"
"$NPYCMP" "$work/gs.npy" "$work/gi.npy" >/dev/null || fail "tiny-gpt: '$spec' does not reproduce the choice"
check_report_sums "$work/g.json"
echo ok

#!/bin/sh
# An input with an extra leading dimension runs each item and stacks the
# outputs: identical, bit for bit, to running the items one at a time
# (digits: a batch of 5 images; tiny-gpt: a batch of 2 sequences).
. "$(dirname "$0")/lib.sh"
model=$examples/digits/digits.qm
"$NPYSLICE" "$digits/test_x.npy" 0 5 "$work/x5.npy"
"$QMC" run "$model" --input x="$work/x5.npy" --output logits="$work/y5.npy"
for i in 0 1 2 3 4; do
    "$NPYSLICE" "$digits/test_x.npy" $i $((i + 1)) "$work/b.npy"
    "$NPYTOOL" reshape "$work/b.npy" "$work/x.npy" 64      # one image, no batch dimension
    "$QMC" run "$model" --input x="$work/x.npy" --output logits="$work/y.npy"
    "$NPYSLICE" "$work/y5.npy" $i $((i + 1)) "$work/row.npy"
    "$NPYTOOL" reshape "$work/row.npy" "$work/want.npy" 10
    "$NPYCMP" "$work/y.npy" "$work/want.npy" >/dev/null || fail "digits item $i differs from its batched run"
done

"$NPYSLICE" "$lm/val_tokens.npy" 0 256 "$work/t256.npy"
"$NPYTOOL" reshape "$work/t256.npy" "$work/t2.npy" 2 128
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/t2.npy" --output logits="$work/l2.npy"
for s in 0 1; do
    "$NPYSLICE" "$lm/val_tokens.npy" $((128 * s)) $((128 * s + 128)) "$work/seq.npy"
    gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/seq.npy" --output logits="$work/l.npy"
    "$NPYSLICE" "$work/l2.npy" $s $((s + 1)) "$work/row.npy"
    "$NPYTOOL" reshape "$work/row.npy" "$work/want.npy" 128 256
    "$NPYCMP" "$work/l.npy" "$work/want.npy" || fail "tiny-gpt sequence $s differs from its batched run"
done
"$NPYSLICE" "$work/l2.npy" 0 1 "$work/row.npy"
"$NPYTOOL" reshape "$work/row.npy" "$work/l0.npy" 128 256
"$NPYCMP" "$work/l0.npy" "$lm/logits_fp32_seq0.npy" --atol 1e-3

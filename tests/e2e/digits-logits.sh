#!/bin/sh
# qmc run on the digits example reproduces PyTorch's fp32 logits for all 500
# test images within 1e-4.
. "$(dirname "$0")/lib.sh"
"$QMC" run "$examples/digits/digits.qm" --input x="$digits/test_x.npy" --output logits="$work/logits.npy"
"$NPYCMP" "$work/logits.npy" "$digits/logits_fp32.npy" --atol 1e-4

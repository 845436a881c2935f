#!/bin/sh
# qmc run on tiny-gpt reproduces PyTorch's fp32 logits of validation
# sequence 0 (tokens 0..127) within 1e-3.
. "$(dirname "$0")/lib.sh"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$work/seq0.npy"
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/seq0.npy" --output logits="$work/logits.npy"
"$NPYCMP" "$work/logits.npy" "$lm/logits_fp32_seq0.npy" --atol 1e-3

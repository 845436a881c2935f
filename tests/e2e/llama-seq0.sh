#!/bin/sh
# qmc run on llama-dev (the Hugging Face checkpoint, by its own tensor
# names: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU, tied
# embeddings) reproduces the NumPy reference's fp32 logits of validation
# sequence 0 (256 tokens) within 1e-4 of their range, and its perplexity
# over the 16 validation sequences is the reference's 3.5627.
. "$(dirname "$0")/lib.sh"
llama=$examples/llama
"$NPYSLICE" "$llama/val_tokens.npy" 0 256 "$work/seq0.npy"
"$QMC" run "$llama/llama.qm" --input idx="$work/seq0.npy" --output logits="$work/logits.npy"
# the reference's logits span [-20.3, 14.8]: 1e-4 of that is 3.5e-3
"$NPYCMP" "$work/logits.npy" "$llama/logits_fp32_seq0.npy" --atol 3.5e-3
out=$("$QMC" eval "$llama/llama.qm" --metric perplexity --tokens "$llama/val_tokens.npy")
echo "$out"
case $out in
"perplexity 3.5627 "*) ;;
*) fail "llama-dev perplexity: $out (the reference: 3.5627)" ;;
esac

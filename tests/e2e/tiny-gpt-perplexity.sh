#!/bin/sh
# examples/tiny-gpt/perplexity.sh gives PyTorch's fp32 perplexity over the
# 16 validation sequences: 8.703 +- 0.001.
. "$(dirname "$0")/lib.sh"
out=$(sh "$examples/tiny-gpt/perplexity.sh" "$QMC" --weights "$lm/lm-dev.safetensors")
echo "$out"
ppl=$(printf '%s\n' "$out" | sed -n 's/^perplexity \([0-9.]*\) .*/\1/p')
[ -n "$ppl" ] || fail "no perplexity in '$out'"
awk -v p="$ppl" 'BEGIN { d = p - 8.703; if (d < 0) d = -d; exit !(d <= 0.001) }' ||
    fail "perplexity $ppl is not 8.703 +- 0.001"
printf '%s\n' "$out" | grep -q ' over 2048 tokens in 16 sequences)$' || fail "not 16 sequences of 128"

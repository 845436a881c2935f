#!/bin/sh
# Token ids given as int64 (numpy's default integer) give exactly the same
# logits as int32; out-of-range int64 values are rejected elsewhere (diag).
. "$(dirname "$0")/lib.sh"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$work/seq0.npy"
"$NPYTOOL" i64 "$work/seq0.npy" "$work/seq0-i64.npy"
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/seq0.npy" --output logits="$work/l32.npy"
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/seq0-i64.npy" --output logits="$work/l64.npy"
"$NPYCMP" "$work/l64.npy" "$work/l32.npy"
"$NPYCMP" "$work/l64.npy" "$lm/logits_fp32_seq0.npy" --atol 1e-3
# a batch of int64 sequences, and int64 token files for perplexity
"$NPYSLICE" "$lm/val_tokens.npy" 0 257 "$work/t.npy"
"$NPYTOOL" i64 "$work/t.npy" "$work/t-i64.npy"
"$NPYSLICE" "$work/t.npy" 0 256 "$work/t256.npy"
"$NPYTOOL" reshape "$work/t256.npy" "$work/t2.npy" 2 128
"$NPYTOOL" i64 "$work/t2.npy" "$work/t2-i64.npy"
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/t2.npy" --output logits="$work/b32.npy"
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/t2-i64.npy" --output logits="$work/b64.npy"
"$NPYCMP" "$work/b64.npy" "$work/b32.npy"
a=$(gpt eval "$examples/tiny-gpt/tiny-gpt.qm" --metric perplexity --tokens "$work/t.npy")
b=$(gpt eval "$examples/tiny-gpt/tiny-gpt.qm" --metric perplexity --tokens "$work/t-i64.npy")
echo "$a"
printf '%s\n' "$a" | grep -q ' over 256 tokens in 2 sequences)$' || fail "unexpected '$a'"
[ "$a" = "$b" ] || fail "int64 tokens give '$b', int32 '$a'"

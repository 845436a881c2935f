#!/bin/sh
# qmc import of the byte-level GPT (examples/tiny-gpt/lm-dev.onnx): the
# causal attention becomes attention(), the erf GELU gelu(), MatMul + Add
# linear(); the imported model's logits for validation sequence 0 (int64
# tokens, as ONNX has them) are exactly the hand-written tiny-gpt.qm's, and
# PyTorch's within 1e-3.
. "$(dirname "$0")/../e2e/lib.sh"
"$QMC" import "$lm/lm-dev.onnx" -o "$work/g.qm"
[ "$(grep -c 'attention(.*heads=4, causal=true)' "$work/g.qm")" = 2 ] || fail "expected two causal attentions"
[ "$(grep -c '= gelu(' "$work/g.qm")" = 2 ] || fail "expected two gelu"
[ "$(grep -c '= linear(' "$work/g.qm")" = 13 ] || fail "expected 13 linear"
grep -q 'input idx: i32\[1, 128\]' "$work/g.qm" || fail "idx is not i32[1, 128]"
grep -q "onnx__MatMul_270: ONNX 'onnx::MatMul_270', transposed" "$work/g.qm" || fail "renamed weights not listed"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$work/s.npy"
"$NPYTOOL" reshape "$work/s.npy" "$work/s1.npy" 1 128
"$NPYTOOL" i64 "$work/s1.npy" "$work/s64.npy"
"$QMC" run "$work/g.qm" --input idx="$work/s64.npy" --output logits="$work/l3.npy"
"$NPYTOOL" reshape "$work/l3.npy" "$work/l.npy" 128 256
gpt run "$examples/tiny-gpt/tiny-gpt.qm" --input idx="$work/s.npy" --output logits="$work/ref.npy"
"$NPYCMP" "$work/l.npy" "$work/ref.npy"
"$NPYCMP" "$work/l.npy" "$lm/logits_fp32_seq0.npy" --atol 1e-3
# --drop-batch: idx i32[128], logits [128, 256], so qmc eval's perplexity
# over the 16 validation sequences is the example's (PyTorch: 8.7032)
"$QMC" import "$lm/lm-dev.onnx" --drop-batch -o "$work/d.qm"
grep -q 'input idx: i32\[128\]' "$work/d.qm" || fail "--drop-batch kept the batch dimension"
a=$("$QMC" eval "$work/d.qm" --metric perplexity --tokens "$lm/val_tokens.npy")
b=$(gpt eval "$examples/tiny-gpt/tiny-gpt.qm" --metric perplexity --tokens "$lm/val_tokens.npy")
echo "$a"
[ "$a" = "$b" ] || fail "imported: '$a', tiny-gpt.qm: '$b'"

#!/bin/sh
# qmc import of the digits MLP (examples/digits/digits-mlp.onnx): the
# imported model gives exactly the hand-written digits.qm's logits on the
# 500 test images (PyTorch's within 1e-4), run and compiled; a weights file
# qmc import did not write is not replaced without --force.
. "$(dirname "$0")/../e2e/lib.sh"
"$QMC" import "$digits/digits-mlp.onnx" -o "$work/d.qm"
grep -q '= linear(x, fc1.weight, fc1.bias)' "$work/d.qm" || fail "fc1 is not a linear of its PyTorch weights"
[ "$(grep -c '= relu(' "$work/d.qm")" = 2 ] || fail "expected two relu"
# the ONNX input is [1, 64]: a batch of 500 is [500, 1, 64]
"$NPYTOOL" reshape "$digits/test_x.npy" "$work/x.npy" 500 1 64
"$QMC" run "$work/d.qm" --input x="$work/x.npy" --output logits="$work/l3.npy"
"$NPYTOOL" reshape "$work/l3.npy" "$work/l.npy" 500 10
"$QMC" run "$digits/digits.qm" --input x="$digits/test_x.npy" --output logits="$work/ref.npy"
"$NPYCMP" "$work/l.npy" "$work/ref.npy"
"$NPYCMP" "$work/l.npy" "$digits/logits_fp32.npy" --atol 1e-4
"$QMC" compile "$work/d.qm" -o "$work/d"
"$work/d" --input x="$work/x.npy" --output logits="$work/c3.npy"
"$NPYTOOL" reshape "$work/c3.npy" "$work/c.npy" 500 10
"$NPYCMP" "$work/c.npy" "$digits/logits_fp32.npy" --atol 1e-4
# importing again replaces qmc import's own files
"$QMC" import "$digits/digits-mlp.onnx" -o "$work/d.qm"
# but not someone else's weights
cp "$digits/digits-mlp.safetensors" "$work/e.safetensors"
if "$QMC" import "$digits/digits-mlp.onnx" -o "$work/e.qm" 2>"$work/err"; then fail "replaced a foreign weights file"; fi
grep -q "exists and was not written by qmc import; use --force" "$work/err" || fail "unexpected: $(cat "$work/err")"
cmp "$digits/digits-mlp.safetensors" "$work/e.safetensors"
[ ! -e "$work/e.qm" ] || fail "wrote e.qm after an error"
"$QMC" import "$digits/digits-mlp.onnx" -o "$work/e.qm" --force
cmp "$work/d.safetensors" "$work/e.safetensors"
# --drop-batch: x f32[64], so the [500, 64] test set is a batch as it is
"$QMC" import "$digits/digits-mlp.onnx" --drop-batch -o "$work/b.qm"
"$QMC" run "$work/b.qm" --input x="$digits/test_x.npy" --output logits="$work/b.npy"
"$NPYCMP" "$work/b.npy" "$work/ref.npy"
"$QMC" eval "$work/b.qm" --metric accuracy --input x="$digits/test_x.npy" --labels "$digits/test_y.npy" | grep -q '^accuracy 0.9700 ' || fail "accuracy"

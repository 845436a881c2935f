#!/bin/sh
# The example models' ONNX files against ONNX Runtime (the references in
# tests/data/onnx/ort, made by make_refs.mjs with onnxruntime-node 1.30):
# imported, interpreted and compiled, every output within 1e-4 of the
# range of ONNX Runtime's (issue 15's bound for f32 models).
. "$(dirname "$0")/../e2e/lib.sh"
ort=$QMC_SOURCE/tests/data/onnx/ort
cd "$work"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 s.npy
"$NPYTOOL" reshape s.npy s1.npy 1 128
"$QMC" import "$lm/lm-dev.onnx" -o gpt.qm
"$QMC" run gpt.qm --input idx=s1.npy --output logits=run.npy
echo "lm-dev interpreted: $("$NPYCMP" run.npy "$ort/lm-dev.seq0.npy" --rtol-range 1e-4)"
"$QMC" compile "$lm/lm-dev.onnx" -o gpt
./gpt --input idx=s1.npy --output logits=exe.npy
echo "lm-dev compiled: $("$NPYCMP" exe.npy "$ort/lm-dev.seq0.npy" --rtol-range 1e-4)"
# 500 images of [1, 64] (the export fixes the batch at 1): a batch of 500
"$NPYTOOL" reshape "$digits/test_x.npy" x3.npy 500 1 64
"$QMC" run "$digits/digits-mlp.onnx" --input x=x3.npy --output logits=drun.npy
echo "digits interpreted: $("$NPYCMP" drun.npy "$ort/digits.npy" --rtol-range 1e-4)"
"$QMC" compile "$digits/digits-mlp.onnx" -o dg
./dg --input x=x3.npy --output logits=dexe.npy
echo "digits compiled: $("$NPYCMP" dexe.npy "$ort/digits.npy" --rtol-range 1e-4)"

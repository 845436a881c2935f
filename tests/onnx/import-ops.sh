#!/bin/sh
# Each generated model of tests/data/onnx/ops (and the external-data model
# of ext/) imported and run: the outputs match numpy's (make_onnx_tests.py)
# within 1e-5; the patterns become the built-ins they are; the functions
# model (run-time Where, Trilu, Gather, Expand, Clip, Pow, ...) also compiled.
. "$(dirname "$0")/../e2e/lib.sh"
data=$QMC_SOURCE/tests/data/onnx
check() { # DIR NAME
    "$QMC" import "$data/$1/$2.onnx" -o "$work/$2.qm"
    args=""
    for f in "$data/$1/$2".in.*.npy; do
        k=${f##*/$2.in.}
        args="$args --input ${k%.npy}=$f"
    done
    "$QMC" run "$work/$2.qm" $args --output y="$work/$2.y.npy"
    "$NPYCMP" "$work/$2.y.npy" "$data/$1/$2.out.npy" --atol 1e-5
}
check ext ext-mlp
for n in gelu-silu shapes attention embedding norms; do check ops $n; done
# names the language cannot write are made paths and identifiers
"$QMC" import "$data/ops/names.onnx" -o "$work/names.qm"
"$QMC" run "$work/names.qm" --input input_="$data/ops/names.in.input.npy" --output out_0="$work/names.y.npy"
"$NPYCMP" "$work/names.y.npy" "$data/ops/names.out.npy" --atol 1e-5
grep -q "input input_: f32\[2, 4\]    # ONNX name 'input'" "$work/names.qm" || fail "keyword input"
grep -q "out_0 = b + blocks_0_Constant    # " "$work/names.qm" || fail "Constant weight name"
grep -q 'a = m_Mul + model_.0.weight' "$work/names.qm" || fail "keyword segment"
grep -q '#   layers.n0a.1: ONNX' "$work/names.qm" || fail "digit segment" 
grep -q '= gelu(lin)' "$work/gelu-silu.qm" || fail "no gelu"
grep -q '= silu(g)' "$work/gelu-silu.qm" || fail "no silu"
grep -q 'linear(s, gw) \* 0.5 + gc \* 2.0' "$work/gelu-silu.qm" || fail "Gemm alpha/beta"
grep -q 'heads=2, causal=true, scale=0.3)' "$work/attention.qm" || fail "no attention"
grep -q 'r = reshape(x, \[2, 12\])' "$work/shapes.qm" || fail "the shape subgraph is not folded"
! grep -q 'Shape\|Concat)' "$work/shapes.qm" || grep -q 'cc = concat' "$work/shapes.qm" || fail "shape nodes left"
grep -q '= embedding(table, idx)' "$work/embedding.qm" || fail "no embedding"
[ "$(grep -c '= layernorm(' "$work/norms.qm")" = 2 ] || fail "expected two layernorm"
[ "$(grep -c '= rmsnorm(' "$work/norms.qm")" = 2 ] || fail "expected two rmsnorm"
# the run-time functions (ONNX Runtime gives numpy's values within 3e-7),
# interpreted and compiled
f=$data/ops/functions
"$QMC" import "$f.onnx" -o "$work/fn.qm"
"$QMC" run "$work/fn.qm" --input x="$f.in.x.npy" --input idx="$f.in.idx.npy" --output y="$work/fy.npy" --output y2="$work/fy2.npy"
"$NPYCMP" "$work/fy.npy" "$f.out.npy" --atol 1e-5
"$NPYCMP" "$work/fy2.npy" "$f.out2.npy" --atol 1e-5
"$QMC" compile "$f.onnx" -o "$work/fn"
"$work/fn" --input x="$f.in.x.npy" --input idx="$f.in.idx.npy" --output y="$work/cy.npy" --output y2="$work/cy2.npy"
"$NPYCMP" "$work/cy.npy" "$f.out.npy" --atol 1e-5
"$NPYCMP" "$work/cy2.npy" "$f.out2.npy" --atol 1e-5
grep -q 'where(t_mask, w, 0.0)' "$work/fn.qm" || fail "Trilu at run time"
grep -q 'mean = reduce_mean(x, axes=\[1\], keepdims=true)' "$work/fn.qm" || fail "LayerNormalization's Mean"

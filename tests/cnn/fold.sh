#!/bin/sh
# The fold pass: a batchnorm folded into the conv before it computes what
# the two did apart (the same model with the conv's result also an output,
# which keeps them apart), within 1e-5 of the largest value; the folded
# graph has no batchnorm left, the other one keeps it. Then the exporters'
# elementwise chains: scalar multiplications and additions after a conv
# (PP-LCNet's affine blocks) folded into its weight and bias, and
# hardswish written out as x * clip(x + 3, 0, 6) / 6 made one op, which
# the compiled model fuses into the conv (act=hardswish) with the scalar
# multiplication and addition after it (post=...): the folded model,
# the one kept apart and the compiled one agree; the folded graph has no
# clip, mul, add or div left.
set -eu
: "${QMC:?}" "${NPYCMP:?}" "${MKDATA:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
"$MKDATA" "$t/w.safetensors" c.weight=6x3x3x3 c.bias=6 d.weight=5x6x1x1 s=6@0.5,1.5 b=6 \
    mu=6@-0.3,0.3 var=6@0.2,2 s2=5@0.5,1.5 b2=5 mu2=5 var2=5@0.2,2
"$MKDATA" "$t/x.npy" 2x3x9x7 1
model() { # NAME KEEP-APART
    cat >"$t/$1.qm" <<EOM
model $1 {
    weights "w.safetensors"
    input x: f32[2, 3, 9, 7]
    output y: f32[2, 5, 5, 4]
    $([ "$2" = 1 ] && echo "output c: f32[2, 6, 5, 4]")
    c = conv(x, c.weight, c.bias, stride=2, padding=1)
    h = relu(batchnorm(c, s, b, mu, var, eps=1e-3))
    y = batchnorm(conv(h, d.weight), s2, b2, mu2, var2)
}
EOM
}
model folded 0
model apart 1
"$QMC" run "$t/folded.qm" --input x="$t/x.npy" --output y="$t/y_folded.npy"
"$QMC" run "$t/apart.qm" --input x="$t/x.npy" --output y="$t/y_apart.npy" --output c="$t/c.npy"
"$NPYCMP" "$t/y_folded.npy" "$t/y_apart.npy" --rtol-max 1e-5
n=$("$QMC" inspect "$t/folded.qm" | grep -c batchnorm || true)
[ "$n" = 0 ] || { echo "FAIL: $n batchnorms left in the folded model"; exit 1; }
n=$("$QMC" inspect "$t/apart.qm" | grep -c "= batchnorm" || true)
[ "$n" = 1 ] || { echo "FAIL: the model kept apart has $n batchnorms, not 1"; exit 1; }
"$QMC" inspect "$t/folded.qm" | grep -q "^%[0-9]* y.conv.bias = weight : f32\[5\]" ||
    { echo "FAIL: the conv without a bias did not get one"; "$QMC" inspect "$t/folded.qm"; exit 1; }

"$MKDATA" "$t/w2.safetensors" c.weight=6x3x3x3 c.bias=6 d.weight=4x6x1x1 d.bias=4
model2() { # NAME KEEP-APART
    cat >"$t/$1.qm" <<EOM
model $1 {
    weights "w2.safetensors"
    input x: f32[2, 3, 9, 7]
    output y: f32[2, 4, 9, 7]
    $([ "$2" = 1 ] && echo "output a: f32[2, 6, 9, 7]")
    $([ "$2" = 1 ] && echo "output m: f32[2, 6, 9, 7]")
    $([ "$2" = 1 ] && echo "output c: f32[2, 6, 9, 7]")
    c = conv(x, c.weight, c.bias, padding=1)
    a = (c * 1.75 + 0.25 - 0.5) / 2
    m = a * clip(a + 3, 0, 6)
    h = m / 6
    y = conv(h * 0.5 + 0.125, d.weight, d.bias)
}
EOM
}
model2 folded2 0
model2 apart2 1
"$QMC" run "$t/folded2.qm" --input x="$t/x.npy" --output y="$t/y2_folded.npy"
"$QMC" run "$t/apart2.qm" --input x="$t/x.npy" --output y="$t/y2_apart.npy" --output a="$t/a.npy" \
    --output m="$t/m.npy" --output c="$t/c.npy"
"$NPYCMP" "$t/y2_folded.npy" "$t/y2_apart.npy" --rtol-max 1e-5
"$QMC" inspect "$t/folded2.qm" >"$t/folded2.ir"
n=$(grep -c -E "= (clip|mul|add|sub|div) " "$t/folded2.ir" || true)
[ "$n" = 2 ] || { echo "FAIL: the folded model has $n elementwise ops, not 2"; exit 1; }
grep -q "= hardswish %" "$t/folded2.ir" || { echo "FAIL: no hardswish"; cat "$t/folded2.ir"; exit 1; }
n=$("$QMC" inspect "$t/apart2.qm" | grep -c -E "= (clip|mul|add|sub|div) " || true)
[ "$n" = 10 ] || { echo "FAIL: the model kept apart has $n elementwise ops, not 10"; exit 1; }
"$QMC" compile "$t/folded2.qm" -o "$t/folded2" --dump-ir >"$t/compiled2.ir"
grep -q "act=hardswish, post=(\* 0.5 + 0.125)" "$t/compiled2.ir" ||
    { echo "FAIL: the compiled conv has no fused hardswish and affine map"; cat "$t/compiled2.ir"; exit 1; }
if grep -E "= (clip|mul|add|sub|div) " "$t/compiled2.ir"; then
    echo "FAIL: elementwise ops left in the compiled model"
    exit 1
fi
"$t/folded2" --input x="$t/x.npy" --output y="$t/y2_compiled.npy"
"$NPYCMP" "$t/y2_compiled.npy" "$t/y2_apart.npy" --rtol-max 1e-5
echo "fold: folded and apart agree"

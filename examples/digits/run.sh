#!/bin/sh
# The main job on the bundled example: compile the digits classifier to a
# native executable for this CPU with int8 weights, run it on the 500 test
# images, and print its accuracy (PyTorch fp32: 0.970).
# Usage: examples/digits/run.sh [PATH/TO/qmc] [qmc compile options]
set -eu
here=$(dirname "$0")
qmc=${1:-qmc}
[ $# -gt 0 ] && shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$qmc" compile "$here/digits.qm" -o "$out/digits" --precision int8 --print-target "$@" | sed -n 's/^cpu: /compiled for cpu: /p'
"$out/digits" --input x="$here/test_x.npy" --output logits="$out/logits.npy"
printf 'digits, int8 weights, native code: '
"$qmc" eval "$here/digits.qm" --metric accuracy --predictions "$out/logits.npy" --labels "$here/test_y.npy"

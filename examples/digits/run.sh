#!/bin/sh
# Evaluates the digits classifier on its 500 test images and prints the
# accuracy. Usage: examples/digits/run.sh [PATH/TO/qmc]
set -eu
here=$(dirname "$0")
qmc=${1:-qmc}
"$qmc" eval "$here/digits.qm" --metric accuracy \
    --input x="$here/test_x.npy" --labels "$here/test_y.npy"

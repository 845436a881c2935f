#!/bin/sh
# qmc eval reports the fp32 accuracy PyTorch reaches on the digits test set.
. "$(dirname "$0")/lib.sh"
out=$("$QMC" eval "$examples/digits/digits.qm" --metric accuracy --input x="$digits/test_x.npy" \
    --labels "$digits/test_y.npy")
echo "$out"
[ "$out" = "accuracy 0.9700 (485/500)" ] || fail "expected 'accuracy 0.9700 (485/500)', got '$out'"

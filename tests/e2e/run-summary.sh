#!/bin/sh
# Without --output, qmc run prints one summary line per output (exit 0).
. "$(dirname "$0")/lib.sh"
out=$("$QMC" run "$examples/digits/digits.qm" --input x="$digits/test_x.npy")
echo "$out"
printf '%s\n' "$out" | grep -Eq '^logits: batch of f32\[10\] min -?[0-9.e+-]+ max [0-9.e+-]+ mean -?[0-9.e+-]+$' ||
    fail "unexpected summary '$out'"

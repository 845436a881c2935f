#!/bin/sh
# digits, auto at 4.5 bits per weight calibrated on calib_x.npy: accuracy on
# the 500 test images at least 0.968 (fp32: 0.970).
. "$(dirname "$0")/lib.sh"
out=$("$QMC" eval "$digits/digits.qm" --metric accuracy --input x="$digits/test_x.npy" --labels "$digits/test_y.npy" \
      --precision auto --budget-bits 4.5 --calib x="$digits/calib_x.npy" --report "$work/r.json")
acc=$(printf '%s\n' "$out" | sed -n 's/^accuracy \([0-9.]*\) .*/\1/p')
bits=$(json_num "$work/r.json" avg_bits_per_weight)
echo "digits auto: accuracy $acc at $bits bits per weight"
holds "$acc" ">=" 0.968 || fail "accuracy $acc is below 0.968"
holds "$bits" "<=" 4.5 || fail "$bits bits per weight is above the budget"
check_report_sums "$work/r.json"
echo ok

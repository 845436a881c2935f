#!/bin/sh
# digits, auto at 4.5 bits per weight calibrated on calib_x.npy: accuracy on
# the 500 test images at least 0.968 (fp32: 0.970), by default (exact: the
# exhaustive measurement is cheap for digits) and with --sensitivity fast.
. "$(dirname "$0")/lib.sh"
for m in auto fast; do
    out=$("$QMC" eval "$digits/digits.qm" --metric accuracy --input x="$digits/test_x.npy" --labels "$digits/test_y.npy" \
          --precision auto --budget-bits 4.5 --sensitivity $m --calib x="$digits/calib_x.npy" --report "$work/r.json")
    acc=$(printf '%s\n' "$out" | sed -n 's/^accuracy \([0-9.]*\) .*/\1/p')
    bits=$(json_num "$work/r.json" avg_bits_per_weight)
    echo "digits auto ($m): accuracy $acc at $bits bits per weight"
    holds "$acc" ">=" 0.968 || fail "$m: accuracy $acc is below 0.968"
    holds "$bits" "<=" 4.5 || fail "$m: $bits bits per weight is above the budget"
    want=$([ $m = auto ] && echo exact || echo fast)
    grep -q "\"method\": \"$want\"" "$work/r.json" || fail "$m: the report does not say $want"
    check_report_sums "$work/r.json"
done
echo ok

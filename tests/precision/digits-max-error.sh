#!/bin/sh
# digits, auto with --max-error 1e-4 (mean KL against f32), with each
# sensitivity method: the chosen model meets it on the calibration set and
# stays within 2x on held-out images. Calibration and held-out data are the
# two halves of the 500 test images, so that they come from one
# distribution (calib_x.npy holds training images, on which the f32 model
# is far more confident: errors on it are ten times smaller than on any
# other images, whatever the formats). 1e-4 binds: the smallest formats
# (int2, 2.166 bits) give far more, int4's 2e-4.
. "$(dirname "$0")/lib.sh"
E=0.0001
"$NPYSLICE" "$digits/test_x.npy" 0 250 "$work/calib.npy"
"$NPYSLICE" "$digits/test_x.npy" 250 500 "$work/held.npy"
for m in exact fast; do
    out=$("$QMC" eval "$digits/digits.qm" --metric error --input x="$work/held.npy" --precision auto \
          --max-error $E --sensitivity $m --calib x="$work/calib.npy" --report "$work/r.json")
    held=$(printf '%s\n' "$out" | sed -n 's/^error \([-0-9.e]*\) .*/\1/p')
    calib=$(json_num "$work/r.json" calib_error)
    bits=$(json_num "$work/r.json" avg_bits_per_weight)
    echo "$m: $bits bits per weight; KL $calib on the calibration half, $held on the held-out half"
    [ -n "$held" ] && [ -n "$calib" ] || fail "$m: no numbers"
    grep -q "\"method\": \"$m\"" "$work/r.json" || fail "$m: the report names another method"
    holds "$calib" "<=" $E || fail "$m: calibration error $calib is above $E"
    holds "$held" "<=" "2 * $E" || fail "$m: held-out error $held is above 2 x $E"
    holds "$bits" ">" 2.17 || fail "$m: $bits bits: the target should need more than the smallest formats"
    check_report_sums "$work/r.json"
done
echo ok

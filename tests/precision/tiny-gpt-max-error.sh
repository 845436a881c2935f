#!/bin/sh
# tiny-gpt, auto with --max-error 0.005 (mean KL against f32 on the
# calibration set; docs/precision.md: about 4.6 bits): the chosen model
# meets it on the calibration set and stays within 2x on the 16 held-out
# validation sequences.
. "$(dirname "$0")/lib.sh"
E=0.005
"$NPYSLICE" "$lm/val_tokens.npy" 0 2048 "$work/v.npy"
"$NPYTOOL" reshape "$work/v.npy" "$work/val.npy" 16 128
out=$(gpt eval --metric error --input idx="$work/val.npy" --precision auto --max-error $E \
      --calib idx="$lm/calib_tokens.npy" --report "$work/r.json")
held=$(printf '%s\n' "$out" | sed -n 's/^error \([-0-9.e]*\) .*/\1/p')
calib=$(json_num "$work/r.json" calib_error)
bits=$(json_num "$work/r.json" avg_bits_per_weight)
echo "max-error $E: $bits bits per weight; KL $calib on the calibration set, $held on the validation sequences"
[ -n "$held" ] && [ -n "$calib" ] || fail "no numbers"
holds "$calib" "<=" $E || fail "calibration error $calib is above $E"
holds "$held" "<=" "2 * $E" || fail "held-out error $held is above 2 x $E"
check_report_sums "$work/r.json"
echo ok

#!/bin/sh
# tiny-gpt, auto at 4.5 bits per weight (calibrated on calib_tokens.npy, its
# 32 training sequences) against qmc's own uniform int4 g32 round-to-nearest
# (4.5 bits, perplexity 8.873): lower perplexity on the 16 validation
# sequences, at most the same size; the report's numbers add up.
. "$(dirname "$0")/lib.sh"
int4=$(gpt eval --metric perplexity --tokens "$lm/val_tokens.npy" --precision int4 | sed -n 's/^perplexity \([0-9.]*\) .*/\1/p')
out=$(gpt eval --metric perplexity --tokens "$lm/val_tokens.npy" --precision auto --budget-bits 4.5 \
      --calib idx="$lm/calib_tokens.npy" --report "$work/r.json")
auto=$(printf '%s\n' "$out" | sed -n 's/^perplexity \([0-9.]*\) .*/\1/p')
bits=$(json_num "$work/r.json" avg_bits_per_weight)
err=$(json_num "$work/r.json" calib_error)
echo "uniform int4 g32: perplexity $int4 at 4.5 bits; auto: perplexity $auto at $bits bits, calibration KL $err"
[ -n "$auto" ] && [ -n "$int4" ] && [ -n "$bits" ] || fail "no numbers"
holds "$bits" "<=" 4.5 || fail "auto uses $bits bits per weight, more than the budget"
holds "$auto" "<" "$int4" || fail "auto ($auto) is not better than uniform int4 g32 ($int4)"
check_report_sums "$work/r.json"
grep -q '"mode": "auto-budget-bits"' "$work/r.json" || fail "report mode"
echo ok

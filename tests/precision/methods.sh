#!/bin/sh
# The methods of issue 17 through `qmc`:
#  - the -v table's and the report's method column, and where :awq and
#    :smooth put their scales (golden: methods-report.golden), for specs
#    fixing one method per matrix on digits and tiny-gpt;
#  - on tiny-gpt, :hqq and :awq each lower the calibration KL of uniform
#    int4 g32 below round to nearest's, :awq:gptq and :gptq:act below
#    GPTQ's, and :smooth that of int8:a8, every number measured here
#    (:imat lowers the error it weighs, test_quant_methods; on tiny-gpt's
#    KL it no longer beats the default rounding, which spends all 16
#    levels since the formats work: 0.0161 against 0.0159);
#  - the weights they write are the same bytes on every run.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
spec='int8,fc1.weight=int4:imat,fc2.weight=int4:g64:asym:hqq,fc3.weight=int4:mse:gptq:act'
"$QMC" eval "$digits/digits.qm" --precision "$spec" --calib x="$digits/calib_x.npy" \
    --input x="$digits/test_x.npy" --labels "$digits/test_y.npy" --metric accuracy -v \
    --report "$work/d.json" 2>"$work/table" >/dev/null
# tensor, format, method, bits, bytes of each row of the table; then the
# report's format and method of each tensor
{
    awk '/^tensor / { on = 1; next } /^total:/ { on = 0 } on { print $1, $4, $5, $6, $7 }' "$work/table"
    sed -n 's/.*"format": "\([^"]*\)".*"method": "\([a-z+-]*\)".*/\1 \2/p' "$work/d.json"
    tspec='int4:awq,blocks.1.*=int4:awq:gptq,lm_head.weight=int8:a8:smooth'
    gpt eval --metric perplexity --tokens "$lm/val_tokens.npy" --precision "$tspec" \
        --calib idx="$lm/calib_tokens.npy" --report "$work/t.json" >/dev/null
    sed -n 's/.*{"name": "\([^"]*\)".*"format": "\([^"]*\)".*"method": "\([a-z+-]*\)".*/\1 \2 \3/p' "$work/t.json"
    sed -n 's/^.*"scaling": \("[^"(]*\).*/\1/p' "$work/t.json"
} >"$work/got"
diff -u "$here/methods-report.golden" "$work/got" || fail "the method column differs from methods-report.golden"

# tiny-gpt: the calibration KL of each method against round to nearest
kl() {
    gpt inspect --precision "$1" --calib idx="$lm/calib_tokens.npy" --report "$work/t.json" >/dev/null
    json_num "$work/t.json" calib_error
}
rtn=$(kl int4)
imat=$(kl int4:imat)
hqq=$(kl int4:hqq)
awq=$(kl int4:awq)
gptq=$(kl int4:gptq)
act=$(kl int4:gptq:act)
awq_gptq=$(kl int4:awq:gptq)
a8=$(kl int8:a8)
smooth=$(kl int8:a8:smooth)
echo "tiny-gpt int4 g32, calibration KL: rtn $rtn, imat $imat, hqq $hqq, awq $awq; gptq $gptq, act-order $act, awq+gptq $awq_gptq"
echo "tiny-gpt int8:a8, calibration KL: $a8, with :smooth $smooth"
holds "$hqq" "<" "$rtn" || fail "int4:hqq ($hqq) is not better than round to nearest ($rtn)"
holds "$awq" "<" "$rtn" || fail "int4:awq ($awq) is not better than round to nearest ($rtn)"
holds "$awq_gptq" "<" "$gptq" || fail "int4:awq:gptq ($awq_gptq) is not better than GPTQ ($gptq)"
holds "$act" "<" "$gptq" || fail "int4:gptq:act ($act) is not better than GPTQ in column order ($gptq)"
holds "$smooth" "<" "$a8" || fail "int8:a8:smooth ($smooth) is not better than int8:a8 ($a8)"

# the same bytes on every run
for i in 1 2; do
    "$QMC" compile "$digits/digits.qm" --precision "$spec" --calib x="$digits/calib_x.npy" \
        --weights-file "$work/w$i.bin" -o "$work/m$i"
done
cmp "$work/w1.bin" "$work/w2.bin" || fail "two runs wrote different weights"
echo ok

#!/bin/sh
# The parameter methods :imat and :hqq through `qmc`:
#  - the -v table's and the report's method column (golden:
#    methods-report.golden) for a spec fixing one method per matrix;
#  - on tiny-gpt, each lowers the calibration KL of uniform int4 g32
#    below round to nearest's, both measured here;
#  - the weights they write are the same bytes on every run.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
spec='int8,fc1.weight=int4:imat,fc2.weight=int4:g64:asym:hqq,fc3.weight=int4:mse:gptq'
"$QMC" eval "$digits/digits.qm" --precision "$spec" --calib x="$digits/calib_x.npy" \
    --input x="$digits/test_x.npy" --labels "$digits/test_y.npy" --metric accuracy -v \
    --report "$work/d.json" 2>"$work/table" >/dev/null
# tensor, format, method, bits, bytes of each row of the table; then the
# report's format and method of each tensor
{
    awk '/^tensor / { on = 1; next } /^total:/ { on = 0 } on { print $1, $4, $5, $6, $7 }' "$work/table"
    sed -n 's/.*"format": "\([^"]*\)".*"method": "\([a-z]*\)".*/\1 \2/p' "$work/d.json"
} >"$work/got"
diff -u "$here/methods-report.golden" "$work/got" || fail "the method column differs from methods-report.golden"

# tiny-gpt: the calibration KL of each method against round to nearest
kl() {
    gpt eval --metric perplexity --tokens "$lm/val_tokens.npy" --precision "$1" \
        --calib idx="$lm/calib_tokens.npy" --report "$work/t.json" >/dev/null
    json_num "$work/t.json" calib_error
}
rtn=$(kl int4)
imat=$(kl int4:imat)
hqq=$(kl int4:hqq)
echo "tiny-gpt int4 g32, calibration KL: rtn $rtn, imat $imat, hqq $hqq"
holds "$imat" "<" "0.9 * $rtn" || fail "int4:imat ($imat) is not clearly better than round to nearest ($rtn)"
holds "$hqq" "<" "$rtn" || fail "int4:hqq ($hqq) is not better than round to nearest ($rtn)"

# the same bytes on every run
for i in 1 2; do
    "$QMC" compile "$digits/digits.qm" --precision "$spec" --calib x="$digits/calib_x.npy" \
        --weights-file "$work/w$i.bin" -o "$work/m$i"
done
cmp "$work/w1.bin" "$work/w2.bin" || fail "two runs wrote different weights"
echo ok

#!/bin/sh
# qmc report draws a report as a self-contained page: well-formed SVG and
# HTML (XHTML, so xmllint checks both), every tensor named, nothing fetched
# from elsewhere, no temporary files left; -v prints the same decisions as
# a table.
. "$(dirname "$0")/lib.sh"
"$QMC" run "$digits/digits.qm" --precision auto --budget-bits 4.5 --calib x="$digits/calib_x.npy" \
    --input x="$digits/test_x.npy" --report "$work/r.json" -v 2>"$work/table" >/dev/null
"$QMC" report "$work/r.json" --html "$work/r.html" --svg "$work/r.svg"
for name in fc1.weight fc2.weight fc3.weight; do
    grep -q "$name" "$work/r.svg" || fail "$name is not in the SVG"
    grep -q "^$name " "$work/table" || fail "$name is not in the -v table"
done
grep -q '^total: 50432 weights in ' "$work/table" || fail "no totals in the -v table"
if command -v xmllint >/dev/null; then
    xmllint --noout "$work/r.svg" || fail "the SVG is not well-formed XML"
    xmllint --noout "$work/r.html" || fail "the HTML is not well-formed (it is written as XHTML)"
fi
grep -o 'https\?://[^"]*' "$work/r.html" | grep -v '^http://www.w3.org/2000/svg$' | grep . && fail "the page loads something"
ls "$work" | grep -q 'tmp' && fail "temporary files left"
echo ok

#!/bin/sh
# `qmc compile --depfile FILE`: a Make rule whose targets are the files
# written and whose prerequisites are the model, its weights (the model's
# `weights` statement or --weights) and the --calib files, with paths
# escaped for make; make reads it and rebuilds when a prerequisite changes.
# Not written when the compile fails.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
d="$t/in dir"  # a space, and below a '$' and a '#', which make needs escaped
mkdir -p "$d"
cp "$QMC_SOURCE/examples/digits/digits.qm" "$QMC_SOURCE/examples/digits/digits-mlp.safetensors" "$d/"
cp "$QMC_SOURCE/examples/digits/calib_x.npy" "$d/calib\$#.npy"
cd "$t"

"$QMC" compile "$d/digits.qm" --emit obj -o out --depfile out.d
[ "$(cat out.d)" = "out.o out.h: $t/in\\ dir/digits.qm $t/in\\ dir/digits-mlp.safetensors" ] ||
    fail "obj: $(cat out.d)"
"$QMC" compile "$d/digits.qm" --emit lib -o libm.a --depfile lib.d --weights "$d/digits-mlp.safetensors" \
    --precision int8:a8:static --calib "x=$d/calib\$#.npy"
[ "$(cat lib.d)" = "libm.a libm.h: $t/in\\ dir/digits.qm $t/in\\ dir/digits-mlp.safetensors $t/in\\ dir/calib\$\$\\#.npy" ] ||
    fail "lib with --weights and --calib: $(cat lib.d)"
"$QMC" compile "$d/digits.qm" --emit llvm -o m.ll --depfile ll.d
[ "$(cat ll.d)" = "m.ll: $t/in\\ dir/digits.qm $t/in\\ dir/digits-mlp.safetensors" ] || fail "llvm: $(cat ll.d)"

# make reads it: up to date, then out of date once the calibration data changes
printf 'libm.a:\n\ttouch libm.a\n-include lib.d\n' >Makefile
make -q libm.a || fail "make: libm.a is not up to date after the compile"
touch "$d/calib\$#.npy"
if make -q libm.a; then fail "make: touching the calibration data did not make libm.a out of date"; fi

# a failed compile writes no depfile
if "$QMC" compile "$d/digits.qm" --precision int5 -o bad --depfile bad.d 2>/dev/null; then fail "int5 accepted"; fi
[ ! -e bad.d ] || fail "a failed compile wrote its depfile"
echo ok

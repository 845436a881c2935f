#!/bin/sh
# A plain Makefile project (make-project/) against an installed, moved qmc:
# the model compiled with `qmc compile --emit obj` (the compiler named by
# `pkg-config --variable=qmc`), the program linked with
# `pkg-config --cflags --libs qmc-runtime`; its accuracy checked; make's
# -include of qmc's --depfile recompiles the model when its weights change.
. "$(dirname "$0")/lib.sh"
P=$t/prefix
install_prefix "$P"
src=$t/src
project_sources "$src"
cp "$here/make-project/Makefile" "$src/"
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
make -C "$src" >"$t/make.log" 2>&1 || { cat "$t/make.log"; fail "make"; }
grep -q "^$P/lib/pkgconfig/../../bin/qmc compile digits/digits.qm --emit obj" "$t/make.log" ||
    fail "make did not use the installed qmc: $(cat "$t/make.log")"
grep -q -- "-L$P/lib/pkgconfig/../../lib/qmc/x86_64-linux-gnu -lqmc_rt" "$t/make.log" ||
    fail "the program was not linked through pkg-config: $(cat "$t/make.log")"
acc=$("$src/digits_app" "$digits/test_x.npy" "$digits/test_y.npy" $MIN_ACCURACY) ||
    fail "accuracy below $MIN_ACCURACY: $acc"
echo "digits int8 (make, pkg-config): $acc"
make -C "$src" >"$t/make.log" 2>&1
grep -q "qmc compile" "$t/make.log" && fail "make recompiled an unchanged model"
touch "$src/digits/digits-mlp.safetensors"
make -C "$src" >"$t/make.log" 2>&1
grep -q "qmc compile" "$t/make.log" || fail "touching the weights did not recompile the model"
echo ok

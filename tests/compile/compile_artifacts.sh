#!/bin/sh
# What `qmc compile` writes besides executables, and how it fails:
#  - --emit obj: OUT.o + OUT.h, used by a C program that includes only the header;
#  - --emit lib / shared: the runtime inside, linkable alone;
#  - --emit llvm / bc / asm;
#  - --weights-file: weights mapped at load and checked (size + checksum);
#  - bad --target/--cpu/--features/--emit/--precision: exit 1, valid choices
#    listed, nothing written;
#  - an executable built for a CPU feature this machine lacks says which and
#    exits 1 instead of dying on an illegal instruction;
#  - -v names each layer's kernel: how its activations meet its weights on
#    the chosen CPU, and the layers that share one input's int8 rows.
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${NPYCMP:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
digits=$QMC_SOURCE/examples/digits
cc=${CC_FOR_TESTS:-cc}
fail() { echo "FAIL: $*" >&2; exit 1; }

# object + header, and a C program that includes only the header
"$QMC" compile "$digits/digits.qm" --emit obj -o "$t/digits_model"
[ -f "$t/digits_model.o" ] && [ -f "$t/digits_model.h" ] || fail "--emit obj did not write OUT.o and OUT.h"
grep -q "DIGITS_WORKSPACE_SIZE" "$t/digits_model.h" || fail "the header does not state the workspace size"
rtlib=$(dirname "$QMC")/../runtime/x86_64-linux-gnu/libqmc_rt.a
$cc -std=c11 -Wall -Wextra -Werror -I"$t" "$QMC_SOURCE/tests/compile/use_header.c" "$t/digits_model.o" "$rtlib" \
    -lpthread -lm -o "$t/use_header"
"$t/use_header" "$digits/test_x.npy" "$digits/logits_fp32.npy"

# static and shared libraries with the runtime inside
"$QMC" compile "$digits/digits.qm" --emit lib -o "$t/libdigits_model.a"
$cc -std=c11 -I"$t" "$QMC_SOURCE/tests/compile/use_header.c" "$t/libdigits_model.a" -lpthread -lm -o "$t/use_lib"
"$t/use_lib" "$digits/test_x.npy" "$digits/logits_fp32.npy"
"$QMC" compile "$digits/digits.qm" --emit shared -o "$t/libdigits_model.so"
$cc -std=c11 -I"$t" "$QMC_SOURCE/tests/compile/use_header.c" -L"$t" -ldigits_model -Wl,-rpath,"$t" -lm -o "$t/use_so"
"$t/use_so" "$digits/test_x.npy" "$digits/logits_fp32.npy"

# -v: the kernels, per CPU
"$QMC" compile "$digits/digits.qm" --precision 'int4,fc3.weight=f32' --cpu znver4 -v --emit obj -o "$t/k" 2>"$t/v.txt"
grep -qx "kernels for znver4 (x86_64-unknown-linux-gnu):" "$t/v.txt" || fail "-v: no kernels heading: $(cat "$t/v.txt")"
grep -qx "  int4:g32 codes x f32 activations as three int8 digits (f32-accurate), vpdpbusd: fc1.weight fc2.weight" "$t/v.txt" ||
    fail "-v: the int4 layers on znver4: $(cat "$t/v.txt")"
grep -qx "  f32 weights, FMA: fc3.weight" "$t/v.txt" || fail "-v: the f32 layer: $(cat "$t/v.txt")"
"$QMC" compile "$digits/digits.qm" --precision int8:a8 --cpu x86-64-v3 -v --emit obj -o "$t/k" 2>"$t/v.txt"
grep -qx "  int8:a8 codes x int8 activations (per-row scale), in float (no integer dot product): fc1.weight fc2.weight fc3.weight" "$t/v.txt" ||
    fail "-v: int8:a8 without VNNI: $(cat "$t/v.txt")"
"$QMC" compile "$digits/digits.qm" --precision int4 --target aarch64-linux-gnu --cpu cortex-a72 -v --emit obj -o "$t/k" 2>"$t/v.txt"
grep -qx "  int4:g32 codes decoded to float in registers, FMA: fc1.weight fc2.weight fc3.weight" "$t/v.txt" ||
    fail "-v: int4 without dotprod: $(cat "$t/v.txt")"
# -v: layers reading one input with weights of one format share its int8
# rows (tiny-gpt's q, k and v; not a v with int8 weights)
"$QMC" compile "$QMC_SOURCE/examples/tiny-gpt/tiny-gpt.qm" --weights "$QMC_SOURCE/examples/tiny-gpt/lm-dev.safetensors" \
    --precision 'int4,blocks.1.v.weight=int8' --cpu znver4 -v --emit obj -o "$t/g" 2>"$t/v.txt"
grep -qx "  int8 rows made once for layers with the same input: blocks.0.q.weight+blocks.0.k.weight+blocks.0.v.weight blocks.1.q.weight+blocks.1.k.weight" "$t/v.txt" ||
    fail "-v: shared int8 rows: $(cat "$t/v.txt")"

# accuracy of a compiled model's outputs (what .ci/setup prints)
"$QMC" compile "$digits/digits.qm" -o "$t/dexe"
"$t/dexe" --input x="$digits/test_x.npy" --output logits="$t/logits.npy"
acc=$("$QMC" eval "$digits/digits.qm" --metric accuracy --predictions "$t/logits.npy" --labels "$digits/test_y.npy")
[ "$acc" = "accuracy 0.9700 (485/500)" ] || fail "accuracy of the compiled digits: $acc"
if "$QMC" eval "$digits/digits.qm" --metric accuracy --predictions "$digits/test_x.npy" --labels "$digits/test_y.npy" 2>"$t/err"; then
    fail "predictions of the wrong shape were accepted"
fi
grep -q "expected f32\[500, 10\].*found f32\[500, 64\]" "$t/err" || fail "unclear message: $(cat "$t/err")"

# IR, bitcode and assembly
"$QMC" compile "$digits/digits.qm" --emit llvm -o "$t/d.ll"
grep -q '^define .*@digits_run_v' "$t/d.ll" || fail "--emit llvm lacks the entry point"
"$QMC" compile "$digits/digits.qm" --emit bc -o "$t/d.bc"
[ "$(head -c 2 "$t/d.bc")" = BC ] || fail "--emit bc did not write bitcode"
"$QMC" compile "$digits/digits.qm" --emit asm -o "$t/d.s"
grep -q '^fc2:' "$t/d.s" || fail "--emit asm lacks the function of node fc2"

# weights in a separate file
"$QMC" compile "$digits/digits.qm" --precision int4 --weights-file "$t/w.bin" -o "$t/dw"
"$QMC" compile "$digits/digits.qm" --precision int4 -o "$t/din"
"$t/dw" --input x="$digits/test_x.npy" --output logits="$t/a.npy"
"$t/din" --input x="$digits/test_x.npy" --output logits="$t/b.npy"
"$NPYCMP" "$t/a.npy" "$t/b.npy" >/dev/null || fail "--weights-file changes the results"
[ "$(wc -c < "$t/dw")" -lt "$(wc -c < "$t/din")" ] || fail "--weights-file did not move the weights out"
cp "$t/w.bin" "$t/bad.bin"
printf 'X' | dd of="$t/bad.bin" bs=1 seek=200 conv=notrunc 2>/dev/null
if "$t/dw" --weights "$t/bad.bin" --input x="$digits/test_x.npy" 2>"$t/err"; then fail "a corrupted weights file was accepted"; fi
grep -q "does not match" "$t/err" || fail "unclear message for a corrupted weights file: $(cat "$t/err")"

# bad options: exit 1, the valid choices listed, nothing written
expect_error() { # PATTERN ARGS...
    pattern=$1; shift
    if "$QMC" compile "$digits/digits.qm" -o "$t/never" "$@" 2>"$t/err"; then fail "accepted: $*"; fi
    grep -q -- "$pattern" "$t/err" || fail "for $*: expected '$pattern' in: $(cat "$t/err")"
    [ ! -e "$t/never" ] || fail "for $*: an output was written"
    ls "$t" | grep -q 'never\.' && fail "for $*: a temporary file was left behind" || true
}
expect_error "targets: x86_64-linux-gnu, aarch64-linux-gnu" --target riscv64-linux-gnu
expect_error "CPUs: .*znver4" --cpu pentium9
expect_error "known: .*avx512vnni" --features +avx1024
expect_error "must start with" --features avx2
expect_error "choices: exe, obj, lib, shared, llvm, bc, asm" --emit wasm
expect_error "formats: f32, int8, int4" --precision int5
expect_error "fc1.weight fc2.weight fc3.weight" --precision "int8,fc9.weight=int4"
expect_error "describes this" --target aarch64-linux-gnu --cpu native

# a feature this machine lacks
if grep -q amx_int8 /proc/cpuinfo; then
    echo "this machine has AMX: skipping the missing-feature check"
else
    "$QMC" compile "$digits/digits.qm" --features +amx-int8 -o "$t/amx"
    if "$t/amx" --input x="$digits/test_x.npy" 2>"$t/err"; then fail "ran code built for amx-int8"; fi
    grep -q "lacks features.*amx-int8" "$t/err" || fail "the missing feature is not named: $(cat "$t/err")"
fi
echo ok

#!/bin/sh
# Automatic precision selection in bounded memory: a GPT of 50.8 M
# parameters (tiny-gpt's layout, d 768, 7 blocks, MLP 3072, vocabulary 256,
# bench/gen_checkpoint), T = 16, calibrated on 16 random sequences, auto at
# 4.5 bits: the peak resident set of load + calibrate + select precision
# stays below the bound auto_memory derives from the design (it prints each
# term; the f32 weights alone are 203 MB). The weights' writing after it is
# the compile's, bounded on its own.
set -eu
: "${GEN_CHECKPOINT:?}" "${AUTO_MEMORY:?}"
t=$(mktemp -d "${TMPDIR:-/tmp}/qmc-auto-memory.XXXXXX")
trap 'rm -rf "$t"' EXIT
"$GEN_CHECKPOINT" model "$t/m" --layout gpt --preset 125m --layers 7 --seq 16 >/dev/null
"$GEN_CHECKPOINT" tokens "$t/calib.npy" --samples 16 --seq 16 --vocab 256 >/dev/null
"$AUTO_MEMORY" "$t/m/model.qm" "$t/calib.npy" 4.5
echo ok

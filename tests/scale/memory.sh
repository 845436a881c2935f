#!/bin/sh
# qmc compile holds one weight at a time, not the model. A GPT of 50.8 M
# parameters (tiny-gpt's layout, d 768, 7 blocks, MLP 3072, vocabulary 256,
# context 1024: bench/gen_checkpoint) is compiled
#  - with int4 weights from bf16 in 5 shards of 20 MB (converted as read),
#  - with f32 weights into a --weights-file, from one f32 file (203 MB),
# and each compile's peak resident set (wait4's ru_maxrss, mapped input
# pages included) must stay below
#
#     BASE + 16 bytes x the largest tensor's elements
#
# BASE, 112 MiB: qmc with the LLVM library loaded (about 50 MiB resident
# before any weight) and the LLVM module of the model's code (the layers of
# all blocks are built, then merged into one block's worth: about 40 MiB
# here). 16 bytes per element of the largest tensor (fc1 and fc2, 3072 x 768 =
# 2.4 M: 38 MB): what the weight being written needs, which is at most its
# input pages (4 bytes f32, 2 bf16), its f32 values (4), the codes (1),
# the dequantized values the error statistics compare with (4) and the packed
# form (0.5 int4, 4 f32), plus slack. The bound is 148 MiB; the model's f32
# weights alone are 203 MB, and the compiler before streaming peaked at 1.2 GB.
set -eu
: "${QMC:?}" "${GEN_CHECKPOINT:?}" "${PEAKRSS:?}"
t=$(mktemp -d "${TMPDIR:-/tmp}/qmc-memory.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

shape="--layout gpt --preset 125m --layers 7"
"$GEN_CHECKPOINT" model "$t/f32" $shape >/dev/null
"$GEN_CHECKPOINT" model "$t/bf16" $shape --dtype bf16 --shard-size 20MB >/dev/null
largest=$((3072 * 768))
bound_kb=$((112 * 1024 + 16 * largest / 1024))

check() { # WHAT ARGS...
    what=$1
    shift
    "$PEAKRSS" "$t/rss" "$QMC" compile "$@" || fail "$what: qmc compile failed"
    kb=$(cat "$t/rss")
    echo "$what: peak resident set $((kb / 1024)) MiB (bound $((bound_kb / 1024)) MiB)"
    [ "$kb" -le "$bound_kb" ] || fail "$what: peak resident set $kb KiB over the bound of $bound_kb KiB"
}
check "int4 from bf16 shards" "$t/bf16/model.qm" --precision int4 --emit obj -o "$t/a"
check "f32 --weights-file" "$t/f32/model.qm" --emit obj --weights-file "$t/a.weights" -o "$t/b"
[ "$(stat -c %s "$t/a.weights")" -ge 203000000 ] || fail "the weights file is too small"
echo ok

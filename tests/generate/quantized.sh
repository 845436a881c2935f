#!/bin/sh
# llama-dev compiled with int8 weights, run with its KV cache:
#  - perplexity on the validation tokens within 0.5% of f32's (3.5627);
#  - the same perplexity fed in one step per window and one token at a
#    time, and the interpreter's full forward with the same precision
#    (qmc eval) within 0.05% of it;
#  - teacher-forced along the reference's greedy path (prompt and the 128
#    tokens), the likeliest token agrees with f32's on at least 95% of the
#    128 steps;
# and with f32 weights and an int8 or FP8 KV cache: the executable's
# perplexity with the cache equals the interpreter's simulation of the same
# cache (qmc eval --kv-cache) within 0.05%, costs at most 0.5% over f32's,
# and the step API passes its checks (decode against one step within 1e-3
# of the logits' range: a cache code can round the other way).
set -eu
: "${QMC:?}" "${QMC_SOURCE:?}" "${TOP1_AGREE:?}" "${NPYSLICE:?}"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
llama=$QMC_SOURCE/examples/llama
fail() { echo "FAIL: $*" >&2; exit 1; }
ppl() { sed -n 's/^perplexity \([0-9.]*\) .*/\1/p'; }
within() { # A B FRACTION: |A - B| <= FRACTION * B
    awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= f * b) }'
}

"$QMC" compile "$llama/llama.qm" -o "$t/f32"
"$QMC" compile "$llama/llama.qm" --precision int8 -o "$t/int8"
whole=$("$t/int8" --perplexity "$llama/val_tokens.npy" | ppl)
ones=$("$t/int8" --perplexity "$llama/val_tokens.npy" --chunk 1 | ppl)
full=$("$QMC" eval "$llama/llama.qm" --precision int8 --metric perplexity \
    --tokens "$llama/val_tokens.npy" | ppl)
echo "int8 perplexity: one step per window $whole, one token at a time $ones, qmc eval $full"
within "$whole" 3.5627 0.005 || fail "int8 perplexity $whole is more than 0.5% above f32's 3.5627"
within "$ones" "$whole" 0.0005 || fail "int8 perplexity token by token $ones, in one step $whole"
within "$full" "$whole" 0.0005 || fail "int8 perplexity with the cache $whole, full forward $full"

# teacher forcing: teacher_path.npy is the prompt and the greedy tokens but the
# last (greedy_prompt.npy, greedy_tokens.npy[:127]); rows 63.. predict the 128
path=$QMC_SOURCE/tests/generate/teacher_path.npy
"$t/f32" --input idx="$path" --output logits="$t/f32.npy"
"$t/int8" --input idx="$path" --output logits="$t/int8.npy"
"$TOP1_AGREE" "$t/f32.npy" "$t/int8.npy" 63 0.95 || fail "int8's top-1 agrees with f32's on fewer than 95% of the steps"

rtlib=$(dirname "$QMC")/../runtime/x86_64-linux-gnu/libqmc_rt.a
for kv in int8 fp8e4m3; do
    "$QMC" compile "$llama/llama.qm" --kv-cache $kv -o "$t/kv_$kv"
    got=$("$t/kv_$kv" --perplexity "$llama/val_tokens.npy" | ppl)
    sim=$("$QMC" eval "$llama/llama.qm" --kv-cache $kv --metric perplexity \
        --tokens "$llama/val_tokens.npy" | ppl)
    echo "$kv KV cache: perplexity $got (interpreter $sim, f32 cache 3.5627)"
    within "$got" "$sim" 0.0005 || fail "$kv cache: perplexity $got, the interpreter's $sim"
    within "$got" 3.5627 0.005 || fail "$kv cache: perplexity $got is more than 0.5% above 3.5627"
    "$QMC" compile "$llama/llama.qm" --kv-cache $kv --emit obj -o "$t/llama_model"
    ${CC_FOR_TESTS:-cc} -std=c11 -O2 -DMODEL_DESC=llama_model -I"$QMC_SOURCE/include" \
        "$QMC_SOURCE/tests/generate/step_check.c" "$t/llama_model.o" "$rtlib" -lpthread -lm \
        -o "$t/check_$kv"
    "$NPYSLICE" "$llama/val_tokens.npy" 0 256 "$t/seq0.npy"
    STEP_TOLERANCE=1e-3 "$t/check_$kv" "$t/seq0.npy" 256
done

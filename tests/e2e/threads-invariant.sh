#!/bin/sh
# A compiled model gives the same outputs, bit for bit, on 1, 2 and 3
# threads: the pool hands out chunks to whichever thread is free, and every
# kernel computes each index the same way whichever chunk holds it
# (tiny-gpt with int4 weights and f32-accurate activations, whose q, k and
# v share one set of int8 rows on CPUs with integer dot products, and with
# int8 weights and activations).
. "$(dirname "$0")/lib.sh"
"$NPYSLICE" "$lm/val_tokens.npy" 0 128 "$work/seq0.npy"
for precision in int4 int8:a8; do
    gpt compile "$examples/tiny-gpt/tiny-gpt.qm" --precision "$precision" -o "$work/gpt"
    for t in 1 2 3; do
        "$work/gpt" --input idx="$work/seq0.npy" --output logits="$work/l$t.npy" --threads $t >/dev/null
    done
    for t in 2 3; do
        cmp -s "$work/l1.npy" "$work/l$t.npy" || fail "$precision: logits on $t threads differ from one thread's"
    done
    echo "$precision: 1, 2 and 3 threads agree bit for bit"
done

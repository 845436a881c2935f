#!/bin/sh
# A checkpoint split into Hugging Face shards is the same set of weights as
# one file: bench/gen_checkpoint writes tiny-gpt's layout (4.9 M parameters)
# once as model.safetensors and once in 4 MB shards with
# model.safetensors.index.json, in f32 and in bf16 (converted as read), and
#  - `qmc run` gives bit-identical logits from the file, the index and the
#    folder, with f32 and with int4 weights;
#  - `qmc compile --emit obj` writes the very same object file from either;
#  - executables compiled from either print bit-identical logits;
#  - --depfile names the index and every shard.
set -eu
: "${QMC:?}" "${GEN_CHECKPOINT:?}"
t=$(mktemp -d "${TMPDIR:-/tmp}/qmc-sharded.XXXXXX")
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; }

for dtype in f32 bf16; do
    one=$t/$dtype-one sharded=$t/$dtype-sharded
    "$GEN_CHECKPOINT" model "$one" --layout gpt --preset tiny --dtype "$dtype" >/dev/null
    "$GEN_CHECKPOINT" model "$sharded" --layout gpt --preset tiny --dtype "$dtype" --shard-size 4MB >/dev/null
    [ -f "$sharded/model.safetensors.index.json" ] || fail "$dtype: gen_checkpoint wrote no index"
    n=$(ls "$sharded" | grep -c '^model-.*-of-.*\.safetensors$')
    [ "$n" -ge 3 ] || fail "$dtype: expected several shards, found $n"
    "$GEN_CHECKPOINT" tokens "$t/idx.npy" --samples 2 --seq 16 --vocab 256 >/dev/null

    # the model as gen_checkpoint wrote it (its weights statement names the index)
    # and the single file's model, pointed at the index and at the folder
    for p in f32 int4; do
        "$QMC" run "$one/model.qm" --precision "$p" --input idx="$t/idx.npy" --output logits="$t/a.npy"
        "$QMC" run "$sharded/model.qm" --precision "$p" --input idx="$t/idx.npy" --output logits="$t/b.npy"
        "$QMC" run "$one/model.qm" --weights "$sharded" --precision "$p" --input idx="$t/idx.npy" \
            --output logits="$t/c.npy"
        same "$t/a.npy" "$t/b.npy" "$dtype $p: qmc run, file and index"
        same "$t/a.npy" "$t/c.npy" "$dtype $p: qmc run, file and folder"
    done

    "$QMC" compile "$one/model.qm" --precision int4 --emit obj -o "$t/one"
    "$QMC" compile "$one/model.qm" --weights "$sharded/model.safetensors.index.json" --precision int4 \
        --emit obj -o "$t/sharded"
    same "$t/one.o" "$t/sharded.o" "$dtype: the object files"
    "$QMC" compile "$sharded/model.qm" --precision int4 --emit obj -o "$t/dep" --depfile "$t/dep.d"
    for f in "$sharded/model.safetensors.index.json" "$sharded"/model-*-of-*.safetensors; do
        grep -qF " $f" "$t/dep.d" || fail "$dtype: --depfile lacks $f: $(cat "$t/dep.d")"
    done

    "$QMC" compile "$one/model.qm" --precision int8 -o "$t/one.exe"
    "$QMC" compile "$sharded/model.qm" --precision int8 -o "$t/sharded.exe"
    "$t/one.exe" --input idx="$t/idx.npy" --output logits="$t/a.npy"
    "$t/sharded.exe" --input idx="$t/idx.npy" --output logits="$t/b.npy"
    same "$t/a.npy" "$t/b.npy" "$dtype: the executables' logits"
done
echo ok

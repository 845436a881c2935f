#!/usr/bin/env bash
# decode.sh: generation speed of a Llama-layout model compiled by qmc:
# decode tokens/s (one token per step, the context filled to 256 first) for
# each precision at 1 and 2 threads, as a fraction of the memory-bandwidth
# limit measured in the same run (weight bytes read per token / stream-read
# bandwidth), and prefill tokens/s of 128 and 512-token prompts, the
# int8:a8 build's against oneDNN's u8s8 GEMM on the model's layer shapes.
#
#   bench/decode.sh [--size 1b|125m|tiny] [--precisions "int4 int4:a8 int8 int8:a8 fp8e4m3 f32"]
#                   [--threads 1,2] [--no-docs]
#
# The checkpoint comes from bench/gen_checkpoint (llama layout, f32; 1b is
# TinyLlama-1.1B's shape); every build keeps its weights in a file
# (--weights-file), whose size minus the token table (read a row per token)
# is the weight bytes a decode step reads. Writes bench/work/decode/results.txt
# and the section "## Generation: decode and prefill" of docs/benchmarks.md.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
WORK=$BENCH/work/decode
BUILD=$ROOT/build-bench
SIZE=1b
PRECISIONS="int4 int4:a8 int8 int8:a8 fp8e4m3 f32"
THREADS=1,2
DOCS=1
while [ $# -gt 0 ]; do
    case $1 in
    --size) SIZE=$2; shift 2 ;;
    --precisions) PRECISIONS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --no-docs) DOCS=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "decode.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }
mkdir -p "$WORK"

step "build qmc and the yardsticks"
if [ "$(id -u)" = 0 ]; then
    "$ROOT/.ci/deps"
    dpkg-query -W -f='${Status}' libdnnl-dev 2>/dev/null | grep -q "install ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libdnnl-dev >/dev/null
fi
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$BUILD" -j2 --no-print-directory qmc qmc_model_runtime >/dev/null
QMC=$BUILD/compiler/qmc
CFLAGS="-O3 -march=native -std=gnu11 -I$BENCH -I$ROOT/include -I$ROOT/runtime"
gcc $CFLAGS "$BENCH/gen_checkpoint.c" -o "$WORK/gen_checkpoint" -lm
gcc $CFLAGS -fopenmp "$BENCH/decode_peers.c" "$BENCH/yardstick.c" "$BENCH/peer_dnnl.c" "$BENCH/timing.c" \
    "$BUILD/runtime/libqmc_runtime.a" -o "$WORK/decode_peers" -ldnnl -lm -lpthread

step "checkpoint: llama $SIZE"
M=$WORK/llama-$SIZE
"$WORK/gen_checkpoint" model "$M" --layout llama --preset "$SIZE" --context 1024 >"$WORK/gen.txt"
cat "$WORK/gen.txt"
stamp() { sed -n "s/^$1 //p" "$M/gen_checkpoint.stamp"; }
D=$(stamp d_model); V=$(stamp vocab); L=$(stamp layers); H=$(stamp heads); KVH=$(stamp kv_heads)
MLP=$(stamp mlp)
KV=$((D / H * KVH))
"$WORK/decode_peers" tokens 256 "$V" "$WORK/p256.npy"
"$WORK/decode_peers" tokens 128 "$V" "$WORK/p128.npy"
"$WORK/decode_peers" tokens 512 "$V" "$WORK/p512.npy"

OUT=$WORK/results.txt
: >"$OUT"
best() { sort -g | tail -1; }
for p in $PRECISIONS; do
    step "compile $p"
    exe=$WORK/llama-$SIZE-${p//:/_}
    /usr/bin/time -f "%e s, %M KB" "$QMC" compile "$M/model.qm" --precision "$p" --steps 1,16,128,512 \
        --weights-file "$exe.weights" -o "$exe" 2>&1 | tail -1
    bytes=$(( $(stat -c %s "$exe.weights") - V * D * 4 ))
    for t in ${THREADS//,/ }; do
        bw=$("$WORK/decode_peers" bandwidth "$t")
        dec=$(for r in 1 2 3; do
            "$exe" --prompt-tokens "$WORK/p256.npy" --max-tokens 65 --threads "$t" 2>&1 >/dev/null |
                sed -n 's/.*decode 64 tokens in .* (\([0-9.]*\) tokens\/s).*/\1/p'
        done | best)
        pre=()
        for n in 128 512; do
            pre+=("$(for r in 1 2 3; do
                "$exe" --prompt-tokens "$WORK/p$n.npy" --max-tokens 1 --threads "$t" 2>&1 >/dev/null |
                    sed -n 's/.*prefill [0-9]* tokens in [^(]* (\([0-9.]*\) tokens\/s).*/\1/p'
            done | best)")
        done
        frac=$(awk -v d="$dec" -v b="$bytes" -v w="$bw" 'BEGIN { printf "%.2f", d * b / (w * 1e9) }')
        gemm=-
        if [ "$p" = int8:a8 ]; then
            gemm=$("$WORK/decode_peers" gemm "$t" 512 "${D}x${D}" "${KV}x${D}" "${KV}x${D}" "${D}x${D}" \
                "${MLP}x${D}" "${MLP}x${D}" "${D}x${MLP}" | cut -d' ' -f1)
        fi
        echo "$p $t $bytes $bw $dec $frac ${pre[0]} ${pre[1]} $gemm" | tee -a "$OUT"
    done
done

# prefill's GEMM work per token: 2 x the linear layers' weights (without the output layer)
OPS=$(( 2 * L * (2 * D * D + 2 * KV * D + 3 * MLP * D) ))
table() {
    echo "| precision | threads | weight MB/token | stream read GB/s | decode tokens/s | of the bandwidth limit | prefill 128 tokens/s | prefill 512 tokens/s | 512: GEMM GOP/s, qmc / oneDNN u8s8 |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    while read -r p t bytes bw dec frac p128 p512 gemm; do
        ratio=-
        [ "$gemm" != - ] && ratio=$(awk -v s="$p512" -v o="$OPS" -v g="$gemm" \
            'BEGIN { q = s * o / 1e9; printf "%.0f / %.0f = %.2f", q, g, q / g }')
        awk -v p="$p" -v t="$t" -v b="$bytes" -v w="$bw" -v d="$dec" -v f="$frac" -v a="$p128" -v c="$p512" -v r="$ratio" \
            'BEGIN { printf "| `%s` | %d | %.0f | %.1f | %.1f | %.2f | %.0f | %.0f | %s |\n", p, t, b / 1e6, w, d, f, a, c, r }'
    done <"$OUT"
}
table
if [ "$DOCS" = 1 ]; then
    docs=$ROOT/docs/benchmarks.md
    section=$WORK/section.md
    {
        echo "## Generation: decode and prefill"
        echo
        echo "\`bench/decode.sh --size $SIZE\` on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(date -u +%Y-%m-%d),"
        echo "qmc $(git -C "$ROOT" rev-parse --short HEAD). $(sed -n 1p "$WORK/gen.txt" | sed 's/^gen_checkpoint: //')."
        echo "Decode: 64 tokens after a 256-token prompt, best of 3; the bandwidth limit is the weight bytes a"
        echo "step reads over the stream-read bandwidth measured just before. Prefill: the prompt in steps of"
        echo "512, 128, 16 and 1 tokens; its GOP/s count the linear layers' 2 x weights per token."
        echo
        table
        echo
    } >"$section"
    touch "$docs"
    awk -v sec="$section" '
        /^## Generation: decode and prefill/ { skip = 1; while ((getline l < sec) > 0) print l; next }
        skip && /^## / { skip = 0 }
        !skip { print }
        END { if (!done_any) {} }' "$docs" >"$docs.tmp"
    grep -q "^## Generation: decode and prefill" "$docs.tmp" || cat "$section" >>"$docs.tmp"
    mv "$docs.tmp" "$docs"
fi
echo "decode: done in ${SECONDS}s"

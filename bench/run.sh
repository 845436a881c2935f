#!/bin/bash
# bench/run.sh: the benchmark, in one command (see bench/README.md).
#
#   bench/run.sh [--threads 1,2] [--only machine|gemv|gemm|conv|e2e] [--no-docs]
#   bench/run.sh --report-only      (the report of the last run again)
#
# As root it installs what is missing (the project's build dependencies,
# libdnnl-dev, node and npm from Debian; onnxruntime-node@1.30.0 from npm
# into bench/work/), then builds qmc (Release, build-bench/), writes the
# synthetic weights, compiles one single-linear model per (shape, precision)
# and the tiny-gpt builds with --emit obj, links the harness against them,
# the qmc runtime and oneDNN, runs every case, and writes
# bench/results/latest.json and docs/benchmarks.md.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
WORK=$BENCH/work
BUILD=$ROOT/build-bench
MODELS=$(cd "$ROOT/.." && pwd)/shared/models/lm-dev
THREADS=1,2
ONLY=""
DOCS=1
REPORT_ONLY=0
while [ $# -gt 0 ]; do
    case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-docs) DOCS=0; shift ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }

RESULTS=$WORK/results.jsonl
H=$WORK/harness
if [ "$REPORT_ONLY" = 0 ]; then
# ---- install what is missing ------------------------------------------------
step "dependencies"
need_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=""
for p in libdnnl-dev; do need_deb "$p" || missing="$missing $p"; done
command -v node >/dev/null && command -v npm >/dev/null || missing="$missing nodejs npm"
if [ "$(id -u)" = 0 ]; then
    "$ROOT/.ci/deps"
    if [ -n "$missing" ]; then
        echo "bench: installing$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
elif [ -n "$missing" ]; then
    echo "bench: missing$missing; run as root to install them" >&2
    exit 1
fi
mkdir -p "$WORK/w" "$WORK/m" "$BENCH/results"
ORT_PKG=$WORK/node_modules/onnxruntime-node/package.json
if want e2e && ! grep -q '"version": "1.30.0"' "$ORT_PKG" 2>/dev/null; then
    echo "bench: npm install onnxruntime-node@1.30.0"
    (cd "$WORK" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error onnxruntime-node@1.30.0 >/dev/null)
fi

# ---- build qmc ----------------------------------------------------------------
step "build qmc (Release, $BUILD)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
make -C "$BUILD" -j2 --no-print-directory qmc qmc_model_runtime >/dev/null
QMC=$BUILD/compiler/qmc
RT=$BUILD/runtime/x86_64-linux-gnu/libqmc_rt.a

# ---- weights and models ------------------------------------------------------
CFLAGS="-O3 -march=native -std=gnu11 -Wall -Wextra -I$BENCH -I$ROOT/include -I$ROOT/runtime"
gcc $CFLAGS "$BENCH/gen_weights.c" -o "$WORK/gen_weights" -lm

# The cases (N x K shapes; each list can be overridden from the environment).
GEMV_SHAPES=${BENCH_GEMV_SHAPES:-"4096x4096 11008x4096"}
GEMV_PRECISIONS=${BENCH_GEMV_PRECISIONS:-"int4:g32 int8 fp8e4m3 fp8e5m2 int4:a8 int8:a8 int3 int2 nf4 bf16 f16"}
GEMM_MS=${BENCH_GEMM_MS:-"8 64"}
GEMM_SHAPES=${BENCH_GEMM_SHAPES:-"4096x4096"}
GEMM_PRECISIONS=${BENCH_GEMM_PRECISIONS:-"f32 int8 int4:g32 int4:g64 int4:g128 fp8e4m3 fp8e5m2 int8:a8 int4:a8"}
E2E_PRECISIONS=${BENCH_E2E_PRECISIONS:-"f32 int8 int4:g32 int8:a8 int4:a8"}
# conv layers, NAME:C:H:W:M:K:STRIDE:PAD:GROUPS (batch 1, bias and relu fused)
CONV_SHAPES=${BENCH_CONV_SHAPES:-"rn50_conv1:3:224:224:64:7:2:3:1 rn50_3x3:64:56:56:64:3:1:1:1
rn50_1x1_up:64:56:56:256:1:1:0:1 rn50_1x1_down:256:56:56:64:1:1:0:1 rn50_3x3_s2:128:56:56:128:3:2:1:1
rn50_1x1_s2:256:56:56:512:1:2:0:1 rn50_3x3_14:256:14:14:256:3:1:1:1 rn50_1x1_14:1024:14:14:256:1:1:0:1
rn50_3x3_7:512:7:7:512:3:1:1:1 mb_1x1_expand:24:56:56:144:1:1:0:1 mb_1x1_project:144:56:56:24:1:1:0:1
mb_dw3_112:32:112:112:32:3:1:1:32 mb_dw3_56:144:56:56:144:3:1:1:144 mb_dw3_s2:144:56:56:144:3:2:1:144
mb_dw5_28:240:28:28:240:5:1:2:240"}
CONV_PRECISIONS=${BENCH_CONV_PRECISIONS:-"f32 int8:a8 int8:a8:static"}

# The weights file a precision is compiled from: lossless for its format.
wfmt() { case $1 in int8*) echo int8 ;; int4*) echo int4 ;; int3*) echo int3 ;; int2*) echo int2 ;; nf4*) echo nf4 ;; bf16*) echo bf16 ;; f16*) echo f16 ;;
    fp8e4m3*) echo fp8e4m3 ;; fp8e5m2*) echo fp8e5m2 ;; *) echo f32 ;; esac; }
ident() { echo "$1" | tr ':' '_'; }

step "synthetic weights ($WORK/w)"
specs=""
for s in $GEMV_SHAPES; do for p in $GEMV_PRECISIONS; do specs="$specs $(wfmt "$p"):${s/x/:}"; done; done
for s in $GEMM_SHAPES; do for p in $GEMM_PRECISIONS; do specs="$specs $(wfmt "$p"):${s/x/:}"; done; done
if want conv; then
    for s in $CONV_SHAPES; do
        IFS=: read -r _ c h w m k _ _ g <<<"$s"
        specs="$specs conv:$m:$((c / g)):$k:$k act:$h:$w:$c"
    done
fi
"$WORK/gen_weights" "$WORK/w" $(echo "$specs" | tr ' ' '\n' | sort -u)

CASES=$WORK/cases.c
OBJS=()
cases_body=""
cases_decl=""
c_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# compile_case GROUP M N K PRECISION NAME QM WEIGHTS_ST [--weights-file]
compile_case() {
    local group=$1 m=$2 n=$3 k=$4 prec=$5 name=$6 qm=$7 wst=$8 wfile=${9:-}
    local out=$WORK/m/$name args=(compile "$qm" -o "$WORK/m/$name" --emit obj --cpu native --precision "$prec"
        --weights "$wst")
    [ -n "$wfile" ] && args+=(--weights-file "$out.weights")
    if "$QMC" "${args[@]}" 2>"$out.err"; then
        OBJS+=("$out.o")
        cases_decl+="extern const qmc_model_desc ${name}_model;"$'\n'
        local wf=NULL
        [ -n "$wfile" ] && wf=$(c_str "$out.weights")
        cases_body+="    {\"$group\", $m, $n, $k, $(c_str "$prec"), $(c_str "$wst"), &${name}_model, $wf, NULL},"$'\n'
        echo "  $name"
    else
        local err
        err=$(grep -m1 -i 'error' "$out.err" || head -n1 "$out.err")
        cases_body+="    {\"$group\", $m, $n, $k, $(c_str "$prec"), $(c_str "$wst"), NULL, NULL, $(c_str "$err")},"$'\n'
        echo "  $name: unsupported: $err"
    fi
}

linear_qm() { # NAME M N K -> the .qm of one linear layer
    cat >"$WORK/m/$1.qm" <<EOF
# generated by bench/run.sh: y[$2, $3] = x[$2, $4] · wᵀ
model $1 {
    input  x: f32[$2, $4]
    output y: f32[$2, $3]
    y = linear(x, w)
}
EOF
}

step "qmc compile (single linear layers, tiny-gpt)"
if want gemv; then
    for s in $GEMV_SHAPES; do
        n=${s%x*} k=${s#*x}
        for p in $GEMV_PRECISIONS; do
            name=gemv_$(ident "$p")_${s}
            linear_qm "$name" 1 "$n" "$k"
            compile_case gemv 1 "$n" "$k" "$p" "$name" "$WORK/m/$name.qm" "$WORK/w/w_$(wfmt "$p")_${s}.safetensors" x
        done
    done
fi
if want gemm; then
    for m in $GEMM_MS; do
        for s in $GEMM_SHAPES; do
            n=${s%x*} k=${s#*x}
            for p in $GEMM_PRECISIONS; do
                name=gemm_m${m}_$(ident "$p")_${s}
                linear_qm "$name" "$m" "$n" "$k"
                compile_case gemm "$m" "$n" "$k" "$p" "$name" "$WORK/m/$name.qm" "$WORK/w/w_$(wfmt "$p")_${s}.safetensors" x
            done
        done
    done
fi
conv_body=""
if want conv; then
    for s in $CONV_SHAPES; do
        IFS=: read -r cname c h w m k st pad g <<<"$s"
        oh=$(((h + 2 * pad - k) / st + 1)) ow=$(((w + 2 * pad - k) / st + 1))
        wst=$WORK/w/c_${m}x$((c / g))x${k}x${k}.safetensors
        for p in $CONV_PRECISIONS; do
            name=conv_${cname}_$(ident "$p")
            {
                echo "# generated by bench/run.sh: one conv layer, channels-last in and out"
                echo "model $name {"
                echo "    input  x: f32[1, $h, $w, $c]"
                echo "    output y: f32[1, $oh, $ow, $m]"
                echo "    h = conv(transpose(x, [0, 3, 1, 2]), w, b, stride=$st, padding=$pad, groups=$g)"
                echo "    y = transpose(relu(h), [0, 2, 3, 1])"
                echo "}"
            } >"$WORK/m/$name.qm"
            shape="{\"$cname\", $c, $h, $w, $m, $k, $k, $st, $pad, $g, true}"
            out=$WORK/m/$name
            calib=()
            case $p in *:static*) calib=(--calib "x=$WORK/w/x_${h}x${w}x${c}.npy") ;; esac
            if "$QMC" compile "$WORK/m/$name.qm" -o "$out" --emit obj --cpu native --precision "$p" \
                --weights "$wst" "${calib[@]}" 2>"$out.err"; then
                OBJS+=("$out.o")
                cases_decl+="extern const qmc_model_desc ${name}_model;"$'\n'
                conv_body+="    {$shape, $(c_str "$p"), &${name}_model, NULL},"$'\n'
                echo "  $name"
            else
                err=$(grep -m1 -i 'error' "$out.err" || head -n1 "$out.err")
                conv_body+="    {$shape, $(c_str "$p"), NULL, $(c_str "$err")},"$'\n'
                echo "  $name: unsupported: $err"
            fi
        done
    done
fi
LIVE_ARGS=()
if want e2e; then
    for p in $E2E_PRECISIONS; do
        name=tiny_gpt_$(ident "$p")
        sed "s/^model tiny_gpt {/model $name {/" "$ROOT/examples/tiny-gpt/tiny-gpt.qm" >"$WORK/m/$name.qm"
        compile_case e2e 128 256 128 "$p" "$name" "$WORK/m/$name.qm" "$MODELS/lm-dev.safetensors"
        [ -f "$WORK/m/$name.h" ] && LIVE_ARGS+=("qmc $p=$WORK/m/$name.h")
    done
fi
{
    echo "/* generated by bench/run.sh: the qmc builds the harness times */"
    echo "#include \"bench.h\""
    echo
    printf '%s' "$cases_decl"
    echo
    echo "const bench_qmc_case bench_qmc_cases[] = {"
    printf '%s' "$cases_body"
    echo "    {NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}"
    echo "};"
    echo "const int bench_n_qmc_cases = (int)(sizeof bench_qmc_cases / sizeof bench_qmc_cases[0]) - 1;"
    echo
    echo "const bench_conv_case bench_conv_cases[] = {"
    printf '%s' "$conv_body"
    echo "    {{NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, false}, NULL, NULL, NULL}"
    echo "};"
    echo "const int bench_n_conv_cases = (int)(sizeof bench_conv_cases / sizeof bench_conv_cases[0]) - 1;"
} >"$CASES"

# ---- the harness ---------------------------------------------------------------
step "build the harness"
gcc $CFLAGS -fopenmp -c "$BENCH/harness.c" -o "$WORK/harness.o"
gcc $CFLAGS -fopenmp -c "$BENCH/yardstick.c" -o "$WORK/yardstick.o"
gcc $CFLAGS -fopenmp -mavx512f -mavx512vnni -c "$BENCH/vnni_peak.c" -o "$WORK/vnni_peak.o"
for f in timing peer_dnnl peer_dnnl_conv conv e2e_qmc files; do gcc $CFLAGS -c "$BENCH/$f.c" -o "$WORK/$f.o"; done
gcc $CFLAGS -c "$CASES" -o "$WORK/cases.o"
gcc -fopenmp -o "$H" "$WORK"/{harness,yardstick,vnni_peak,timing,peer_dnnl,peer_dnnl_conv,conv,e2e_qmc,files,cases}.o "${OBJS[@]}" \
    "$RT" -ldnnl -lpthread -lm

# ---- run ----------------------------------------------------------------------
: >"$RESULTS"
step "run: qmc and oneDNN (one process), threads $THREADS"
"$H" --out "$RESULTS" --threads "$THREADS" ${ONLY:+--only "$ONLY"} \
    --tokens "$MODELS/val_tokens.npy" --logits "$MODELS/logits_fp32_seq0.npy"
if want e2e; then
    step "run: ONNX Runtime (onnxruntime-node), threads $THREADS"
    (cd "$WORK" && node "$BENCH/e2e_ort.mjs" "$MODELS" "$RESULTS" "$THREADS")
    step "memory: tiny-gpt workspace vs live activations"
    "$QMC" inspect "$ROOT/examples/tiny-gpt/tiny-gpt.qm" --weights "$MODELS/lm-dev.safetensors" >"$WORK/tiny-gpt.ir"
    node "$BENCH/liveness.mjs" "$WORK/tiny-gpt.ir" "$RESULTS" "${LIVE_ARGS[@]}"
fi

    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
    git -C "$ROOT" diff --quiet HEAD -- compiler runtime frontend include 2>/dev/null || COMMIT="$COMMIT+local changes"
    printf '{"group":"meta","case":"run","impl":"run.sh","threads":0,"elapsed_s":%d,"commit":"%s"}\n' \
        "$SECONDS" "$COMMIT" >>"$RESULTS"
fi

step "report"
machine() { # lscpu's model name, family/model, L3 and the ISA the kernels care about
    local flags
    flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_int8' |
        tr '\n' ' ')
    printf '%s (family %s, model %s), L3 %s; %s' "$(lscpu | sed -n 's/^Model name: *//p' | head -n1)" \
        "$(lscpu | sed -n 's/^CPU family: *//p')" "$(lscpu | sed -n 's/^Model: *//p')" \
        "$(lscpu | sed -n 's/^L3 cache: *//p')" "${flags% }"
}
DOC_ARGS=()
[ "$DOCS" = 1 ] && DOC_ARGS=(--markdown "$ROOT/docs/benchmarks.md")
node "$BENCH/report.mjs" "$RESULTS" --json "$BENCH/results/latest.json" "${DOC_ARGS[@]}" \
    --machine "$(machine)" \
    --cores "$(nproc)"
echo "bench: done in ${SECONDS}s"

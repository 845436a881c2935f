#!/bin/bash
# bench/scale.sh: the scale benchmark, compile time and memory of real model
# sizes (see bench/README.md, "Scale benchmark").
#
#   bench/scale.sh [--sizes 125m,1b] [--only gpt|llama] [--precisions LIST]
#                  [--timeout SEC] [--max-rss GB] [--seq T] [--keep]
#                  [--no-docs | --docs FILE]
#   bench/scale.sh --report-only [--no-docs | --docs FILE]
#
# Builds qmc (Release, build-bench/; or uses $QMC) and gen_checkpoint, writes
# the synthetic checkpoints into bench/work/scale/ (kept between runs: the data
# is deterministic), times one sequential read of each, then compiles each
# model at each precision with `qmc compile --emit obj` under /usr/bin/time -v
# and writes bench/work/scale/results.jsonl and the section "Scale: compile
# time and memory" of docs/benchmarks.md.
#
# Sizes: tiny (~5 M parameters, for trying the script), 125m, 1b, 7b (bf16 in
# 5 GB shards; skipped with a message when the disk lacks the space).
# Precisions: int4, int8, fp8e4m3, f32-wf (f32 --weights-file), auto-4.5 (auto
# --budget-bits 4.5 --calib idx=...); any qmc precision X, X-wf (with
# --weights-file) and auto-B are accepted.
# The llama layout compiles gen_checkpoint's model.qm (examples/llama/llama.qm
# with the size's constants: generation steps over a KV cache), or
# QMC_LLAMA_QM=FILE.qm ({size} in the name is replaced by the size).
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
WORK=$BENCH/work/scale
BUILD=$ROOT/build-bench
RESULTS=$WORK/results.jsonl
SIZES=125m,1b
ONLY=""
PRECISIONS=int4,int8,fp8e4m3,f32-wf,auto-4.5
TIMEOUT=1800
MAX_RSS_GB=""
SEQ=16
CALIB_SAMPLES=${SCALE_CALIB_SAMPLES:-128}
KEEP=0
DOCS=$ROOT/docs/benchmarks.md
REPORT_ONLY=0
ARGV="$*"
while [ $# -gt 0 ]; do
    case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --precisions) PRECISIONS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --max-rss) MAX_RSS_GB=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-docs) DOCS=""; shift ;;
    --docs) DOCS=$2; shift 2 ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "scale.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
case $ONLY in ""|gpt|llama) ;; *) echo "scale.sh: --only gpt or llama, not '$ONLY'" >&2; exit 2 ;; esac
for s in ${SIZES//,/ }; do
    case $s in tiny|125m|1b|7b) ;; *) echo "scale.sh: unknown size '$s' (tiny, 125m, 1b, 7b)" >&2; exit 2 ;; esac
done
step() { printf '\n== %s (%ds)\n' "$1" "$SECONDS"; }

# ---- dependencies ---------------------------------------------------------------
missing=""
[ -x /usr/bin/time ] || missing="$missing time"
command -v node >/dev/null || missing="$missing nodejs"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "scale: installing$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "scale: missing$missing; run as root to install them" >&2
        exit 1
    fi
fi
mkdir -p "$WORK"

report() {
    step "report"
    local args=("$RESULTS")
    [ -n "$DOCS" ] && args+=(--markdown "$DOCS")
    node "$BENCH/scale_report.mjs" "${args[@]}"
}
if [ "$REPORT_ONLY" = 1 ]; then
    report
    exit 0
fi

# ---- qmc and the generator -----------------------------------------------------
if [ -n "${QMC:-}" ]; then
    COMMIT="external qmc ($QMC)"
else
    step "build qmc (Release, $BUILD)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    make -C "$BUILD" -j2 --no-print-directory qmc >/dev/null
    QMC=$BUILD/compiler/qmc
    [ -x "$QMC" ] || QMC=$(find "$BUILD" -type f -name qmc -perm -u+x | head -n1)
    COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
    git -C "$ROOT" diff --quiet HEAD -- compiler runtime frontend include 2>/dev/null || COMMIT="$COMMIT+local changes"
fi
GEN=$WORK/gen_checkpoint
if [ ! -x "$GEN" ] || [ "$BENCH/gen_checkpoint.c" -nt "$GEN" ]; then
    cc -O2 -std=c11 -Wall -Wextra -o "$GEN" "$BENCH/gen_checkpoint.c"
fi

# ---- measuring ------------------------------------------------------------------
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
[ -n "$MAX_RSS_GB" ] || MAX_RSS_GB=$(awk -v k="$MEM_KB" 'BEGIN {printf "%.1f", k * 0.75 / 1048576}')
MAX_RSS_KB=$(awk -v g="$MAX_RSS_GB" 'BEGIN {printf "%d", g * 1048576}')
HZ=$(getconf CLK_TCK)

jstr() { # a JSON string
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/ }
    s=${s//$'\r'/}
    s=${s//$'\n'/ }
    printf '"%s"' "$s"
}
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
now() { date +%s.%N; }
tv() { sed -n "s/^[[:space:]]*$1: //p" "$2" | head -n1; } # a field of /usr/bin/time -v
free_bytes() { df -B1 --output=avail "$1" | tail -n1 | tr -d ' '; }

# run_measured LOG TIMES CMD...: runs CMD under /usr/bin/time -v and timeout
# $TIMEOUT, and kills it (by its pid) when its resident set exceeds
# $MAX_RSS_GB so that a compiler that needs more than the machine has does not
# starve it. Sets RC (the exit status) and KILLED (why it was killed, or "").
run_measured() {
    local log=$1 times=$2 pidfile=$1.pid pid="" rss
    shift 2
    rm -f "$pidfile"
    /usr/bin/time -v -o "$times" timeout -k 10 "$TIMEOUT" sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
        >"$log" 2>&1 &
    local bg=$!
    KILLED=""
    while kill -0 "$bg" 2>/dev/null; do
        sleep 0.5
        [ -z "$pid" ] && [ -s "$pidfile" ] && pid=$(cat "$pidfile")
        [ -n "$pid" ] && [ -z "$KILLED" ] || continue
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        if [ -n "$rss" ] && [ "$rss" -gt "$MAX_RSS_KB" ] &&
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$(basename "$1" | cut -c1-15)" ]; then
            KILLED="killed: resident set over $MAX_RSS_GB GB (--max-rss)"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    RC=0
    wait "$bg" || RC=$?
}

wall_s() { # /usr/bin/time's "h:mm:ss" or "m:ss.ss" in seconds
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"
}

# ---- one run ------------------------------------------------------------------
machine() {
    printf '%s, %s cores, %s GB RAM' "$(lscpu | sed -n 's/^Model name: *//p' | head -n1)" "$(nproc)" \
        "$(awk -v k="$MEM_KB" 'BEGIN {printf "%.1f", k / 1048576}')"
}
: >"$RESULTS"
printf '{"kind":"meta","machine":%s,"date":"%s","commit":%s,"args":%s,"timeout_s":%s,"max_rss_gb":%s,"seq":%s,"calib_samples":%s}\n' \
    "$(jstr "$(machine)")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(jstr "$COMMIT")" "$(jstr "$ARGV")" "$TIMEOUT" \
    "$MAX_RSS_GB" "$SEQ" "$CALIB_SAMPLES" >>"$RESULTS"

stamp() { sed -n "s/^$1 //p" "$2/gen_checkpoint.stamp" | head -n1; }

# case_label CASE: how the table names it
case_label() {
    local c=$1 wf=""
    [[ $c == *-wf ]] && wf=" --weights-file" && c=${c%-wf}
    [[ $c == auto-* ]] && c="auto --budget-bits ${c#auto-}"
    printf '%s%s' "$c" "$wf"
}

# output_estimate CASE PARAMS: bytes the output may need, to skip a case the disk cannot hold
output_estimate() {
    local c=${1%-wf} bpp=1.2
    case $c in f32) bpp=4.1 ;; int8*|fp8*) bpp=1.2 ;; int4*) bpp=0.7 ;; esac
    awk -v p="$2" -v b="$bpp" 'BEGIN {printf "%.0f", p * b + 268435456}'
}

# row MODEL CASE STATUS [FIELDS]: one compile record
row() {
    printf '{"kind":"compile","model":"%s","case":"%s","label":%s,"status":%s%s}\n' "$1" "$2" \
        "$(jstr "$(case_label "$2")")" "$(jstr "$3")" "${4:-}" >>"$RESULTS"
}

# stage_split OUT QM WEIGHTS ARGS...: the case compiled again with -v, whose
# stage table says where the time goes (read, quantize, error statistics,
# pack and write, the code); prints the record's "stages" field. The
# measured run has no -v: -v also measures every weight's error.
stage_split() {
    local out=$1 qm=$2 weights=$3 log=$1.vlog
    shift 3
    timeout -k 10 "$TIMEOUT" "$QMC" compile "$qm" -o "$out" --emit obj --weights "$weights" "$@" -v \
        >"$log" 2>&1 || return 0
    local fields="" name key v
    for name in weights read quantize error 'pack, write' module optimise 'machine code'; do
        key=${name//, /_}
        v=$(sed -n "s/^ *$name  *\([0-9.][0-9.]*\).*/\1/p" "$log" | head -n1)
        [ -n "$v" ] && fields="$fields${fields:+,}\"${key// /_}\":$v"
    done
    printf ',"stages":{%s}' "$fields"
}

compile_case() { # MODEL DIR QM WEIGHTS CASE PARAMS
    local model=$1 dir=$2 qm=$3 weights=$4 c=$5 params=$6
    local out=$WORK/out/$model-$c args=() need free
    mkdir -p "$WORK/out"
    rm -f "$out".*
    need=$(output_estimate "$c" "$params")
    free=$(free_bytes "$WORK/out")
    if [ "$free" -lt "$need" ]; then
        local msg
        msg=$(printf 'skipped: not enough disk space for the output (about %.1f GB, %.1f GB free)' \
            "$(awk -v b="$need" 'BEGIN {print b / 1e9}')" "$(awk -v b="$free" 'BEGIN {print b / 1e9}')")
        echo "  $c: $msg"
        row "$model" "$c" "$msg"
        return
    fi
    local p=$c
    [[ $p == *-wf ]] && p=${p%-wf} && args+=(--weights-file "$out.weights")
    if [[ $p == auto-* ]]; then
        args+=(--precision auto --budget-bits "${p#auto-}" --calib "idx=$dir/calib.npy")
        # a model with a sequence calibrates on calls of the calibration's length
        grep -q '^ *sequence ' "$qm" && args+=(--seq "$SEQ")
    else
        args+=(--precision "$p")
    fi
    local b0 t0 t1 b1
    b0=$(busy_ticks)
    t0=$(now)
    run_measured "$out.log" "$out.time" "$QMC" compile "$qm" -o "$out" --emit obj --weights "$weights" "${args[@]}"
    t1=$(now)
    b1=$(busy_ticks)
    local wall rss user sys status msg="" obj=0 wts=0 bg
    wall=$(wall_s "$(tv 'Elapsed (wall clock) time (h:mm:ss or m:ss)' "$out.time")")
    rss=$(tv 'Maximum resident set size (kbytes)' "$out.time")
    user=$(tv 'User time (seconds)' "$out.time")
    sys=$(tv 'System time (seconds)' "$out.time")
    [ -f "$out.o" ] && obj=$(stat -c %s "$out.o")
    [ -f "$out.weights" ] && wts=$(stat -c %s "$out.weights")
    # other processes' CPU during the case, in CPUs
    bg=$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v u="${user:-0}" -v s="${sys:-0}" -v t0="$t0" -v t1="$t1" \
        'BEGIN {o = d / hz - u - s; if (o < 0) o = 0; printf "%.2f", o / (t1 - t0)}')
    if [ -n "$KILLED" ]; then
        status=$KILLED
    elif [ "$RC" = 0 ]; then
        status=ok
    elif [ "$RC" = 124 ]; then
        status="timeout after $TIMEOUT s"
    else
        msg=$(grep -m1 -i 'error' "$out.log" || tail -n1 "$out.log" || true)
        status="failed (exit $RC)"
        [ "$RC" -gt 128 ] && status="failed (signal $((RC - 128)))"
    fi
    local stages=""
    [ "$status" = ok ] && [ "$p" = int4 ] && stages=$(stage_split "$out" "$qm" "$weights" "${args[@]}")
    row "$model" "$c" "$status" "$(printf ',"exit":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"peak_rss_kb":%s,"obj_bytes":%s,"weights_bytes":%s,"bg_load":%s,"message":%s%s' \
        "$RC" "$wall" "${user:-0}" "${sys:-0}" "${rss:-0}" "$obj" "$wts" "$bg" "$(jstr "$msg")" "$stages")"
    printf '  %-22s %s: %s s, peak RSS %s MB, output %s MB%s\n' "$(case_label "$c")" "$status" "$wall" \
        "$(( ${rss:-0} / 1024 ))" "$(( (obj + wts) / 1048576 ))" "${msg:+ ($msg)}"
    [ "$KEEP" = 1 ] || rm -f "$out.o" "$out.h" "$out.weights"
}

# read_once FILES...: seconds for one sequential read, as the page cache has them
read_once() {
    local t0 t1
    t0=$(now)
    for f in "$@"; do dd if="$f" of=/dev/null bs=16M status=none; done
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}
cached_fraction() {
    local res=0 size=0 f
    for f in "$@"; do
        res=$((res + $(fincore --bytes --noheadings --output RES "$f" 2>/dev/null || echo 0)))
        size=$((size + $(stat -c %s "$f")))
    done
    awk -v r="$res" -v s="$size" 'BEGIN {printf "%.2f", s ? r / s : 0}'
}

run_model() { # LAYOUT SIZE
    local layout=$1 size=$2 model=$1-$2
    local dir=$WORK/$model
    step "$model: checkpoint ($dir)"
    local gen_log=$WORK/$model.gen.log t0 t1 rc=0
    t0=$(now)
    "$GEN" model "$dir" --layout "$layout" --preset "$size" --seq "$SEQ" >"$gen_log" 2>&1 || rc=$?
    t1=$(now)
    cat "$gen_log"
    if [ "$rc" != 0 ]; then
        local why
        why=$(tail -n1 "$gen_log")
        why=${why#gen_checkpoint: "$dir": }
        if [ "$rc" = 3 ]; then why="skipped: $why"; else why="generator failed (exit $rc): $why"; fi
        echo "scale: $model: $why"
        printf '{"kind":"input","model":"%s","layout":"%s","size":"%s","status":%s}\n' "$model" "$layout" "$size" \
            "$(jstr "$why")" >>"$RESULTS"
        return
    fi
    local gen_s=null gen_rss=null
    if ! grep -q 'up to date' "$gen_log"; then
        gen_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
        gen_rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' "$gen_log")
    fi
    local files=() f weights
    while read -r f; do files+=("$dir/$f"); done < <(sed -n 's/^file \([^ ]*\) .*/\1/p' "$dir/gen_checkpoint.stamp")
    weights=$dir/model.safetensors
    [ "${#files[@]}" -gt 1 ] && weights=$dir/model.safetensors.index.json
    local params bytes cached read_s vocab
    params=$(stamp parameters "$dir")
    vocab=$(stamp vocab "$dir")
    bytes=$(stat -c %s "${files[@]}" | awk '{s += $1} END {printf "%.0f", s}')
    cached=$(cached_fraction "${files[@]}")
    read_s=$(read_once "${files[@]}")
    echo "scale: $model: $params parameters, $bytes bytes in ${#files[@]} file(s); one read: $read_s s (${cached} cached before)"
    "$GEN" tokens "$dir/calib.npy" --samples "$CALIB_SAMPLES" --seq "$SEQ" --vocab "$vocab" >/dev/null
    printf '{"kind":"input","model":"%s","layout":"%s","size":"%s","status":"ok","params":%s,"dtype":"%s","files":%s,"bytes":%s,"read_s":%s,"cached_before":%s,"gen_s":%s,"gen_rss_mb":%s,"shape":%s}\n' \
        "$model" "$layout" "$size" "$params" "$(stamp dtype "$dir")" "${#files[@]}" "$bytes" "$read_s" "$cached" \
        "$gen_s" "${gen_rss:-null}" \
        "$(jstr "$(printf 'd %s, %s layers, %s heads%s, MLP %s, vocab %s' "$(stamp d_model "$dir")" \
            "$(stamp layers "$dir")" "$(stamp heads "$dir")" \
            "$([ "$layout" = llama ] && printf ' (%s kv)' "$(stamp kv_heads "$dir")")" "$(stamp mlp "$dir")" "$vocab")")" \
        >>"$RESULTS"

    local qm=$dir/model.qm
    [ "$layout" = llama ] && [ -n "${QMC_LLAMA_QM:-}" ] && qm=${QMC_LLAMA_QM//\{size\}/$size}
    step "$model: qmc compile --emit obj (timeout $TIMEOUT s, killed over $MAX_RSS_GB GB)"
    for c in ${PRECISIONS//,/ }; do compile_case "$model" "$dir" "$qm" "$weights" "$c" "$params"; done
}

for layout in gpt llama; do
    [ -z "$ONLY" ] || [ "$ONLY" = "$layout" ] || continue
    for size in ${SIZES//,/ }; do run_model "$layout" "$size"; done
done
printf '{"kind":"meta","elapsed_s":%d}\n' "$SECONDS" >>"$RESULTS"
report
echo "scale: done in ${SECONDS}s"

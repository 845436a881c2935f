#!/bin/sh
# quant_taps.sh: where qmc and ONNX Runtime part ways on the lm-dev peers
# with int8 activations (docs/onnx.md, *Against ONNX Runtime*): the peer
# with its quantized layers' inputs as outputs, run by both on sequence 0,
# each tap compared value by value and code by code; then the logits of
# all 16 sequences. Not part of the test suite (it needs ONNX Runtime).
#   quant_taps.sh QMC NODE_MODULES_PARENT [PEER ...]
# QMC: a built qmc; NODE_MODULES_PARENT: a folder where
# `npm install --ignore-scripts onnxruntime-node@1.30.0` was run.
set -eu
qmc=$(realpath "$1")
nm=$(realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/quant-taps.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -c "import numpy as np; t = np.load('$src/examples/tiny-gpt/val_tokens.npy'); \
np.save('$work/seq0.npy', t[:128].reshape(1, 1, 128).astype(np.int32)); \
np.save('$work/seqs.npy', t[:2048].reshape(16, 1, 128).astype(np.int32))"
for peer in ${*:-ort-int4-b32-acc4 ort-dyn-int8}; do
    case $peer in *acc4) kind=acc4 ;; *) kind=dyn ;; esac
    d=$work/$peer
    mkdir -p "$d"
    names=$(/usr/bin/python3 "$here/quant_taps.py" tap "$src/tests/data/onnx/lm-dev-peers/lm-dev.$peer.onnx" "$d/taps.onnx")
    (cd "$nm" && node "$here/quant_taps.mjs" "$src" "$d/taps.onnx" "$d" 1)
    outs="--output logits=$d/qmc.logits.npy"
    for n in $names; do outs="$outs --output $n=$d/qmc.$n.npy"; done
    # shellcheck disable=SC2086
    "$qmc" run "$d/taps.onnx" --input idx="$work/seq0.npy" $outs
    echo "$peer, sequence 0:"
    /usr/bin/python3 "$here/quant_taps.py" compare $kind "$d" "$names"
    (cd "$nm" && node "$here/quant_taps.mjs" "$src" "$src/tests/data/onnx/lm-dev-peers/lm-dev.$peer.onnx" "$d" 16)
    "$qmc" run "$src/tests/data/onnx/lm-dev-peers/lm-dev.$peer.onnx" --input idx="$work/seqs.npy" --output logits="$d/qmc16.npy"
    /usr/bin/python3 -c "
import numpy as np
a = np.load('$d/ort.logits.npy'); b = np.load('$d/qmc16.npy').reshape(a.shape)
r = [float(np.abs(a[i] - b[i]).max() / (a[i].max() - a[i].min())) for i in range(len(a))]
print('$peer, 16 sequences: max |qmc - ORT| / range', ' '.join('%.1e' % x for x in r), '; within 1e-3:', sum(x <= 1e-3 for x in r))"
done

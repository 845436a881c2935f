#!/usr/bin/python3
"""quant_taps.py: qmc against ONNX Runtime inside the lm-dev peers that
quantize activations at run time (docs/onnx.md, *Against ONNX Runtime*).

  quant_taps.py tap PEER.onnx OUT.onnx   the peer with the input of every
      MatMulNBits / DynamicQuantizeLinear as a graph output too; prints
      their names as qmc names them
  quant_taps.py compare KIND DIR         KIND acc4 or dyn: DIR holds
      ort.NAME.npy and qmc.NAME.npy for every tap and the logits; prints per
      tap the largest difference over the range, how many of the int8 codes
      each side's quantization gives differ, and the first such code

Debian's python3-onnx and numpy (/usr/bin/python3). quant_taps.sh runs it.
"""
import sys

import numpy as np


def ident(name):
    name = name.lstrip("/")
    if name.endswith("_output_0"):
        name = name[: -len("_output_0")]
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def tap(src, dst):
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(src)
    taps = []
    for n in m.graph.node:
        if n.op_type in ("MatMulNBits", "DynamicQuantizeLinear") and n.input[0] not in taps:
            taps.append(n.input[0])
    for t in taps:
        m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    onnx.save(m, dst)
    print(" ".join(ident(t) for t in taps))


def values(kind, x):
    """What each side's quantization divides before rounding (ONNX
    Runtime's formulas: 127 / max per block of 32, or DynamicQuantizeLinear's
    scale over the tensor)."""
    x = x.astype(np.float32)
    if kind == "acc4":
        b = x.reshape(-1, 32)
        return (b * (np.float32(127) / np.abs(b).max(axis=1, keepdims=True))).astype(np.float32).reshape(-1)
    lo, hi = np.float32(min(x.min(), 0)), np.float32(max(x.max(), 0))
    return (x / np.float32((hi - lo) / np.float32(255))).astype(np.float32).reshape(-1)


def compare(kind, d, names):
    for n in names + ["logits"]:
        a = np.load("%s/ort.%s.npy" % (d, n)).astype(np.float32)
        b = np.load("%s/qmc.%s.npy" % (d, n)).astype(np.float32).reshape(a.shape)
        r = float(a.max() - a.min())
        line = "%-34s max %.2e  median %.2e of the range" % (n, np.abs(a - b).max() / r, np.median(np.abs(a - b)) / r)
        if n == "logits":
            pos = np.abs(a - b).reshape(-1, a.shape[-1]).max(axis=1) / r
            line += ";  positions beyond 1e-3: %s" % np.nonzero(pos > 1e-3)[0].tolist()
        else:
            va, vb = values(kind, a), values(kind, b)
            diff = np.nonzero(np.rint(va) != np.rint(vb))[0]
            line += ";  codes differing %d of %d" % (diff.size, va.size)
            if diff.size:
                i = diff[0]
                line += " (first: element %d, %.9g -> %.7f in ORT, %.9g -> %.7f in qmc)" % (
                    i, a.reshape(-1)[i], va[i], b.reshape(-1)[i], vb[i])
        print(line)


if __name__ == "__main__":
    if sys.argv[1] == "tap":
        tap(sys.argv[2], sys.argv[3])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4].split())

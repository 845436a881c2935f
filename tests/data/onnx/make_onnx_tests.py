#!/usr/bin/python3
"""Writes the small ONNX models the ONNX tests read (tests/onnx), with
numpy reference outputs, into this folder. The outputs are committed, so
the tests need no Python; rerun after changing this file:

    /usr/bin/python3 tests/data/onnx/make_onnx_tests.py

Needs Debian's python3-onnx (1.12) and python3-numpy (`/usr/bin/python3`:
a pyenv python on PATH does not see them). Deterministic: fixed seeds.

  ext/    a model whose weights are external data, and its reference output
  ops/    one model per translation the importer does (patterns, folding of
          shape subgraphs, layout operators), each with inputs and outputs
  bad/    malformed models (tests/onnx/bad.sh compares the errors with .err)
  types/  tensors in every data type and storage field the reader converts
  direct/ models for `qmc run|compile MODEL.onnx` (tests/onnx/direct.sh)
"""
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = [helper.make_opsetid("", 17)]
erf = np.vectorize(math.erf)


def path(*parts):
    p = os.path.join(HERE, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def model(nodes, inputs, outputs, inits=(), opset=OPSET, ir=8, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=opset, producer_name="make_onnx_tests.py")
    m.ir_version = ir
    return m


def f32(*shape, seed=0, scale=0.5):
    return (np.random.RandomState(seed).randn(*shape) * scale).astype(np.float32)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def const(name, a):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(a), name))


def save_case(name, m, ins, out):
    onnx.checker.check_model(m)
    onnx.save_model(m, path("ops", name + ".onnx"))
    for k, v in ins.items():
        np.save(path("ops", "%s.in.%s.npy" % (name, k)), v)
    np.save(path("ops", name + ".out.npy"), out.astype(np.float32))


# ---- ext/: external data ------------------------------------------------------


def ext_model():
    w1, b1, w2 = f32(16, 32, seed=1), f32(32, seed=2), f32(32, 4, seed=3)
    x = f32(1, 16, seed=4, scale=1.0)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [1, 16])], [vi("y", TensorProto.FLOAT, [1, 4])],
              [init("w1", w1), init("b1", b1), init("w2", w2)])
    if os.path.exists(path("ext", "ext-mlp.data")):
        os.remove(path("ext", "ext-mlp.data"))  # onnx appends to it
    onnx.save_model(m, path("ext", "ext-mlp.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext-mlp.data", size_threshold=0)
    np.save(path("ext", "ext-mlp.in.x.npy"), x)
    np.save(path("ext", "ext-mlp.out.npy"), np.maximum(x @ w1 + b1, 0) @ w2)


# ---- ops/: translations ----------------------------------------------------------


def gelu_silu():
    """MatMul + bias -> gelu written as (x*0.5)*(1+erf(x*(1/sqrt2))) -> silu
    -> Gemm with alpha, beta and transB=0 -> Softmax over axis 0."""
    w, b = f32(16, 32, seed=5), f32(32, seed=6)
    gw, gc = f32(32, 8, seed=7), f32(8, seed=8)
    x = f32(4, 16, seed=9, scale=1.0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("Add", ["b", "mm"], ["lin"]),
        const("half", np.float32(0.5)), const("one", np.float32(1.0)),
        const("rsqrt2", np.float32(1 / math.sqrt(2))),
        helper.make_node("Mul", ["lin", "half"], ["xh"]),
        helper.make_node("Mul", ["lin", "rsqrt2"], ["xs"]),
        helper.make_node("Erf", ["xs"], ["e"]),
        helper.make_node("Add", ["one", "e"], ["e1"]),
        helper.make_node("Mul", ["xh", "e1"], ["g"]),
        helper.make_node("Sigmoid", ["g"], ["sg"]),
        helper.make_node("Mul", ["sg", "g"], ["s"]),
        helper.make_node("Gemm", ["s", "gw", "gc"], ["gm"], alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["gm"], ["y"], axis=0),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [4, 16])], [vi("y", TensorProto.FLOAT, [4, 8])],
              [init("w", w), init("b", b), init("gw", gw), init("gc", gc)])
    lin = x @ w + b
    g = lin * 0.5 * (1 + erf(lin / math.sqrt(2)))
    s = g / (1 + np.exp(-g))
    gm = 0.5 * (s @ gw) + 2.0 * gc
    e = np.exp(gm - gm.max(axis=0, keepdims=True))
    save_case("gelu-silu", m, {"x": x}, e / e.sum(axis=0, keepdims=True))


def shapes():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape folded at import
    time, then Transpose, Slice, Concat with a constant, Split, Squeeze,
    Unsqueeze, Flatten, Identity, Dropout, Cast, Expand, Neg, Reciprocal,
    Pow 2, Tanh, Gather of consecutive indices and LayerNormalization
    without a bias."""
    x = f32(2, 3, 4, seed=10, scale=1.0)
    c = f32(2, 2, seed=11)
    lnw = f32(2, seed=12) + 1
    i64 = lambda *v: np.array(v, dtype=np.int64)
    nodes = [
        helper.make_node("Shape", ["x"], ["sh"]),
        const("zero", np.array(0, np.int64)), const("minus1", np.array(-1, np.int64)), const("ax0", i64(0)),
        helper.make_node("Gather", ["sh", "zero"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Unsqueeze", ["minus1", "ax0"], ["m1"]),
        helper.make_node("Concat", ["n1", "m1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["x", "newshape"], ["r"]),                 # [2, 12]
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),              # [12, 2]
        const("st", i64(1)), const("en", i64(11)),
        helper.make_node("Slice", ["t", "st", "en", "ax0"], ["sl"]),           # [10, 2]
        helper.make_node("Concat", ["sl", "c"], ["cc"], axis=0),               # [12, 2]
        const("parts", i64(6, 6)),
        helper.make_node("Split", ["cc", "parts"], ["p0", "p1"], axis=0),      # 2 x [6, 2]
        helper.make_node("Identity", ["p0"], ["id"]),
        helper.make_node("Dropout", ["p1"], ["dr"]),
        helper.make_node("Cast", ["dr"], ["ca"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["id", "ca"], ["s"]),
        helper.make_node("Unsqueeze", ["s", "ax0"], ["u"]),                    # [1, 6, 2]
        helper.make_node("Squeeze", ["u", "ax0"], ["q"]),                      # [6, 2]
        helper.make_node("Neg", ["q"], ["ng"]),
        helper.make_node("Tanh", ["ng"], ["th"]),
        helper.make_node("Pow", ["th", "two"], ["pw"]),
        const("two", np.float32(2.0)),
        helper.make_node("Reciprocal", ["one_plus"], ["rc"]),
        helper.make_node("Add", ["pw", "onef"], ["one_plus"]),
        const("onef", np.float32(1.0)),
        const("shape62", i64(6, 2)),
        helper.make_node("Expand", ["rc", "shape62"], ["ex"]),
        helper.make_node("LayerNormalization", ["ex", "lnw"], ["ln"], epsilon=1e-3),
        const("rows", i64(1, 2, 3, 4)),
        helper.make_node("Gather", ["ln", "rows"], ["ga"], axis=0),            # [4, 2]
        helper.make_node("Flatten", ["ga"], ["y"], axis=0),                    # [1, 8]
    ]
    # topological order: the constants first
    order = [n for n in nodes if n.op_type == "Constant"] + [n for n in nodes if n.op_type != "Constant"]
    order = [n for n in order if n.output[0] not in ("rc", "one_plus")]
    at = [i for i, n in enumerate(order) if n.output[0] == "pw"][0] + 1
    order[at:at] = [nodes[[n.output[0] for n in nodes].index("one_plus")], nodes[[n.output[0] for n in nodes].index("rc")]]
    m = model(order, [vi("x", TensorProto.FLOAT, [2, 3, 4])], [vi("y", TensorProto.FLOAT, [1, 8])],
              [init("c", c), init("lnw", lnw)])
    t = x.reshape(2, 12).T[1:11]
    cc = np.concatenate([t, c], 0)
    s = cc[:6] + cc[6:]
    rc = 1 / (np.tanh(-s) ** 2 + 1)
    mu = rc.mean(-1, keepdims=True)
    ln = (rc - mu) / np.sqrt(((rc - mu) ** 2).mean(-1, keepdims=True) + 1e-3) * lnw
    save_case("shapes", m, {"x": x}, ln[1:5].reshape(1, 8))


def attention():
    """Causal self-attention of one sequence in ONNX's primitives: a Mul
    scale that is not the default, the mask as an Add of -inf above the
    diagonal, K transposed by two Transposes; batch 1, T 8, D 16, 2 heads."""
    T, D, H = 8, 16, 2
    d = D // H
    wq, wk, wv = f32(D, D, seed=13), f32(D, D, seed=14), f32(D, D, seed=15)
    x = f32(1, T, D, seed=16, scale=1.0)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    i64 = lambda *v: np.array(v, dtype=np.int64)
    scale = 0.3
    nodes = [const("s4", i64(1, T, H, d)), const("s3", i64(1, T, D)), const("scale", np.float32(scale))]
    for n in "qkv":
        nodes += [helper.make_node("MatMul", ["x", "w" + n], [n]),
                  helper.make_node("Reshape", [n, "s4"], [n + "4"]),
                  helper.make_node("Transpose", [n + "4"], [n + "t"], perm=[0, 2, 1, 3])]
    nodes += [
        helper.make_node("Transpose", ["kt"], ["ktt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["qt", "ktt"], ["sc"]),
        helper.make_node("Mul", ["sc", "scale"], ["scs"]),
        helper.make_node("Add", ["scs", "mask"], ["scm"]),
        helper.make_node("Softmax", ["scm"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "vt"], ["o"]),
        helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["ot", "s3"], ["y"]),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [1, T, D])], [vi("y", TensorProto.FLOAT, [1, T, D])],
              [init("wq", wq), init("wk", wk), init("wv", wv), init("mask", mask)])
    q, k, v = (x[0] @ w for w in (wq, wk, wv))
    out = np.zeros((T, D), np.float32)
    for h in range(H):
        c = slice(h * d, (h + 1) * d)
        s = q[:, c] @ k[:, c].T * scale + mask
        p = np.exp(s - s.max(-1, keepdims=True))
        out[:, c] = (p / p.sum(-1, keepdims=True)) @ v[:, c]
    save_case("attention", m, {"x": x}, out.reshape(1, T, D))


def embedding():
    """int64 token ids -> Gather of a table, plus a position table added."""
    table, pos = f32(10, 8, seed=17), f32(5, 8, seed=18)
    idx = np.array([[3, 1, 4, 1, 5]], dtype=np.int64)
    nodes = [helper.make_node("Gather", ["table", "idx"], ["e"]), helper.make_node("Add", ["e", "pos"], ["y"])]
    m = model(nodes, [vi("idx", TensorProto.INT64, [1, 5])], [vi("y", TensorProto.FLOAT, [1, 5, 8])],
              [init("table", table), init("pos", pos)])
    save_case("embedding", m, {"idx": idx}, table[idx] + pos)


def norms():
    """LayerNorm and RMSNorm written out in primitives (opset 13, as PyTorch
    exports LayerNorm before opset 17 and RMSNorm always): with and without
    scale and bias, the square as Pow or Mul, 1/x as Reciprocal or Div."""
    x = f32(2, 3, 8, seed=25, scale=2.0) + 1
    w1, b1, w3 = f32(8, seed=26) + 1, f32(8, seed=27), f32(8, seed=28) + 1
    ax = dict(axes=[-1])
    nodes = [
        const("eps1", np.float32(1e-5)), const("eps2", np.float32(1e-3)), const("two", np.float32(2.0)),
        # layernorm(x, w1, b1): Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add
        helper.make_node("ReduceMean", ["x"], ["m1"], **ax),
        helper.make_node("Sub", ["x", "m1"], ["d1"]),
        helper.make_node("Pow", ["d1", "two"], ["p1"]),
        helper.make_node("ReduceMean", ["p1"], ["v1"], **ax),
        helper.make_node("Add", ["v1", "eps1"], ["a1"]),
        helper.make_node("Sqrt", ["a1"], ["s1"]),
        helper.make_node("Div", ["d1", "s1"], ["n1"]),
        helper.make_node("Mul", ["n1", "w1"], ["y1w"]),
        helper.make_node("Add", ["y1w", "b1"], ["y1"]),
        # layernorm without scale or bias, the square as Mul, eps first
        helper.make_node("ReduceMean", ["y1"], ["m2"], **ax),
        helper.make_node("Sub", ["y1", "m2"], ["d2"]),
        helper.make_node("Mul", ["d2", "d2"], ["p2"]),
        helper.make_node("ReduceMean", ["p2"], ["v2"], **ax),
        helper.make_node("Add", ["eps2", "v2"], ["a2"]),
        helper.make_node("Sqrt", ["a2"], ["s2"]),
        helper.make_node("Div", ["d2", "s2"], ["y2"]),
        # rmsnorm with a scale: x * Reciprocal(Sqrt(mean(x^2) + eps)) * w
        helper.make_node("Pow", ["y2", "two"], ["p3"]),
        helper.make_node("ReduceMean", ["p3"], ["v3"], **ax),
        helper.make_node("Add", ["v3", "eps1"], ["a3"]),
        helper.make_node("Sqrt", ["a3"], ["s3"]),
        helper.make_node("Reciprocal", ["s3"], ["r3"]),
        helper.make_node("Mul", ["y2", "r3"], ["n3"]),
        helper.make_node("Mul", ["w3", "n3"], ["y3"]),
        # rmsnorm without a scale: x / Sqrt(mean(x*x) + eps)
        helper.make_node("Mul", ["y3", "y3"], ["p4"]),
        helper.make_node("ReduceMean", ["p4"], ["v4"], **ax),
        helper.make_node("Add", ["v4", "eps2"], ["a4"]),
        helper.make_node("Sqrt", ["a4"], ["s4"]),
        helper.make_node("Div", ["y3", "s4"], ["y"]),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [2, 3, 8])], [vi("y", TensorProto.FLOAT, [2, 3, 8])],
              [init("w1", w1), init("b1", b1), init("w3", w3)], opset=[helper.make_opsetid("", 13)])

    def ln(v, eps):
        d = v - v.mean(-1, keepdims=True)
        return d / np.sqrt((d * d).mean(-1, keepdims=True) + eps)

    def rms(v, eps):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps)

    y1 = ln(x, 1e-5) * w1 + b1
    y3 = rms(ln(y1, 1e-3), 1e-5) * w3
    save_case("norms", m, {"x": x}, rms(y3, 1e-3))


def names():
    """Names the language cannot write: a keyword input, an output with ':',
    initializers with '::', a keyword segment and a segment starting with a
    digit, a Constant with a path-like name used as a weight."""
    w1, w2, w3 = f32(4, seed=20), f32(4, seed=21), f32(4, seed=22)
    cst = f32(4, seed=23)
    x = f32(2, 4, seed=24, scale=1.0)
    nodes = [
        helper.make_node("Constant", [], ["/blocks.0/Constant_output_0"], value=numpy_helper.from_array(cst)),
        helper.make_node("Mul", ["input", "onnx::Mul_7"], ["/m/Mul_output_0"]),
        helper.make_node("Add", ["/m/Mul_output_0", "model.0.weight"], ["a"]),
        helper.make_node("Add", ["a", "layers.0a.1"], ["b"]),
        helper.make_node("Add", ["b", "/blocks.0/Constant_output_0"], ["out:0"]),
    ]
    m = model(nodes, [vi("input", TensorProto.FLOAT, [2, 4])], [vi("out:0", TensorProto.FLOAT, [2, 4])],
              [init("onnx::Mul_7", w1), init("model.0.weight", w2), init("layers.0a.1", w3)])
    save_case("names", m, {"input": x}, x * w1 + w2 + w3 + cst)


def functions():
    """The run-time translations the node tests do not reach: Gelu (opset
    20, not in ONNX 1.12's schema: no checker), Where on a comparison,
    Trilu of a run-time matrix, Gather by run-time indices along axis 1,
    Expand of a run-time tensor, Clip with a run-time bound, Pow with a general exponent,
    LayerNormalization's Mean and InvStdDev used, LogSoftmax before opset
    13 (flattened), ReduceMean, HardSwish, LeakyRelu, Max of three."""
    x = f32(3, 4, seed=30, scale=1.5)
    idx = np.array([[3, 0], [1, 1]], np.int64)
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"]),
        helper.make_node("Greater", ["x", "zero"], ["pos"]),
        helper.make_node("Where", ["pos", "g", "x"], ["w"]),
        helper.make_node("Trilu", ["w"], ["t"], upper=0),
        helper.make_node("Gather", ["t", "idx"], ["ga"], axis=1),            # [3, 2, 2]
        helper.make_node("ReduceMean", ["ga", "ax2"], ["gm"], keepdims=0),  # [3, 2]
        helper.make_node("ReduceMean", ["x"], ["xm"], keepdims=0),            # a run-time scalar
        helper.make_node("Clip", ["x", "xm"], ["c"]),
        helper.make_node("ReduceMean", ["x", "ax1"], ["rm"]),                 # [3, 1]
        helper.make_node("Expand", ["rm", "shape34"], ["ex"]),
        helper.make_node("Abs", ["c"], ["ca"]),
        helper.make_node("Pow", ["ca", "p15"], ["pw"]),
        helper.make_node("LayerNormalization", ["x", "lnw"], ["ln", "mean", "inv"], epsilon=1e-3),
        helper.make_node("HardSwish", ["ln"], ["hs"]),
        helper.make_node("LeakyRelu", ["hs"], ["lr"], alpha=0.2),
        helper.make_node("Max", ["lr", "pw", "mean", "ex"], ["mx"]),
        helper.make_node("Mul", ["mx", "inv"], ["mi"]),
        helper.make_node("LogSoftmax", ["mi"], ["y"], axis=1),
        helper.make_node("Concat", ["gm", "gm"], ["y2"], axis=1),             # [3, 4]
    ]
    lnw = f32(4, seed=32) + 1
    opset = [helper.make_opsetid("", 20)]
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [3, 4]), vi("idx", TensorProto.INT64, [2, 2])],
                          [vi("y", TensorProto.FLOAT, [3, 4]), vi("y2", TensorProto.FLOAT, [3, 4])],
                          initializer=[init("zero", np.float32(0)), init("shape34", np.array([3, 4])),
                                       init("p15", np.float32(1.5)), init("lnw", lnw), init("ax2", np.array([2])),
                                       init("ax1", np.array([1]))])
    m = helper.make_model(g, opset_imports=opset, producer_name="make_onnx_tests.py")
    m.ir_version = 9
    onnx.save_model(m, path("ops", "functions.onnx"))
    gel = x * 0.5 * (1 + erf(x / math.sqrt(2)))
    w = np.where(x > 0, gel, x)
    t = np.tril(w)
    gm = t[:, idx].mean(axis=2)
    pw = np.abs(np.maximum(x, x.mean())) ** 1.5
    ex = np.broadcast_to(x.mean(axis=1, keepdims=True), (3, 4))
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    inv = 1 / np.sqrt(var + 1e-3)
    ln = (x - mean) * inv * lnw
    hs = ln * np.clip(ln / 6 + 0.5, 0, 1)
    lr = np.where(hs < 0, 0.2 * hs, hs)
    mi = np.maximum(np.maximum(np.maximum(lr, pw), mean), ex) * inv
    y = mi - mi.max(axis=1, keepdims=True)
    y = y - np.log(np.exp(y).sum(axis=1, keepdims=True))
    np.save(path("ops", "functions.in.x.npy"), x)
    np.save(path("ops", "functions.in.idx.npy"), idx)
    np.save(path("ops", "functions.out.npy"), y.astype(np.float32))
    np.save(path("ops", "functions.out2.npy"), np.ascontiguousarray(np.concatenate([gm, gm], axis=1), np.float32))


# ---- bad/: malformed models ---------------------------------------------------------


def bad_models():
    x, y = vi("x", TensorProto.FLOAT, [1, 4]), vi("y", TensorProto.FLOAT, [1, 4])
    w = init("w", f32(4, 4, seed=19))

    def mm(*inits, nodes=None, ins=(x,)):
        return model(nodes or [helper.make_node("MatMul", ["x", "w"], ["y"])], list(ins), [y], inits)

    def ext(name, **kv):
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
        t.data_location = TensorProto.EXTERNAL
        for k, v in kv.items():
            t.external_data.add(key=k, value=str(v))
        return t

    def save(name, m):
        with open(path("bad", name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())

    with open(path("bad", "w.data"), "wb") as f:
        f.write(f32(4, 4, seed=19).tobytes())
    save("ext-offset", mm(ext("w", location="w.data", offset=80)))
    save("ext-length", mm(ext("w", location="w.data", offset=0, length=60)))
    save("ext-short", mm(ext("w", location="w.data", offset=8)))
    save("ext-escape", mm(ext("w", location="../onnx/bad/w.data")))
    save("ext-absolute", mm(ext("w", location="/etc/passwd")))
    save("ext-missing", mm(ext("w", location="missing.data")))
    save("ext-nolocation", mm(ext("w", offset=0)))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=b"\0" * 60)
    save("raw-size", mm(t))
    t = TensorProto(name="w", data_type=42, dims=[4, 4], raw_data=b"\0" * 64)
    save("dtype-unknown", mm(t))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, -4], raw_data=b"")
    save("dim-negative", mm(t))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=b"")
    save("dim-overflow", mm(t))
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], float_data=[1.0] * 15)
    save("typed-count", mm(t))
    t = TensorProto(name="", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=b"\0" * 64)
    save("init-noname", mm(t))
    save("init-duplicate", mm(w, init("w", f32(4, 4))))
    save("undefined-input", mm(w, nodes=[helper.make_node("MatMul", ["x", "v"], ["y"], name="mm")]))
    save("defined-twice", mm(w, nodes=[helper.make_node("MatMul", ["x", "w"], ["y"], name="a"),
                                       helper.make_node("Relu", ["x"], ["y"], name="b")]))
    save("output-undefined", model([helper.make_node("Relu", ["x"], ["z"])], [x], [y]))
    # translation errors
    # Sigmoid translates; Sin does not (listed once, for its first node);
    # Conv and MatMulNBits after it are listed though their inputs are not
    # translated; Range with a run-time limit has a reason
    save("unsupported", model([helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
                               helper.make_node("Sin", ["s"], ["e"], name="sin1"),
                               helper.make_node("Sin", ["e"], ["e2"], name="sin2"),
                               helper.make_node("Conv", ["e2", "w"], ["c"], name="conv"),
                               helper.make_node("MatMulNBits", ["c", "w"], ["y"], name="q4", domain="com.microsoft"),
                               helper.make_node("ReduceMax", ["x"], ["m"], name="max", keepdims=0),
                               helper.make_node("Range", ["zero", "m", "one"], ["r"], name="range")],
                              [x], [y, vi("r", TensorProto.FLOAT, ["n"])],
                              [w, init("zero", np.float32(0)), init("one", np.float32(1))],
                              opset=OPSET + [helper.make_opsetid("com.microsoft", 1)]))
    save("dynamic", model([helper.make_node("Relu", ["x"], ["y"])],
                          [vi("x", TensorProto.FLOAT, ["batch", 4])], [vi("y", TensorProto.FLOAT, ["batch", 4])]))
    save("opset-new", model([helper.make_node("Relu", ["x"], ["y"])], [x], [y], opset=[helper.make_opsetid("", 99)]))
    with open(path("bad", "not-onnx.onnx"), "wb") as f:
        f.write(b"\xff\xff\xff\xff this is not a protobuf\n")


# ---- direct/: ONNX models compiled and run without `qmc import` ---------------------


def direct_models():
    # one tensor in both layouts (MatMul's transposed weight, and added as it
    # is), another transposed by the model for Gemm, a third read once as a
    # MatMul weight, a fourth transposed by the model and added (both
    # transposed where they lie, non-square)
    w, v, u, t = f32(4, 4, seed=40), f32(4, 6, seed=41), f32(6, 3, seed=42), f32(6, 4, seed=44)
    x = f32(4, 4, seed=43, scale=1.0)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"]),
        helper.make_node("Add", ["a", "w"], ["b"]),
        helper.make_node("Transpose", ["v"], ["vt"], perm=[1, 0]),
        helper.make_node("Gemm", ["b", "vt"], ["c"], transB=1),
        helper.make_node("Transpose", ["t"], ["tt"], perm=[1, 0]),
        helper.make_node("Add", ["c", "tt"], ["ct"]),
        helper.make_node("Relu", ["ct"], ["r"]),
        helper.make_node("MatMul", ["r", "u"], ["y"]),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [4, 4])], [vi("y", TensorProto.FLOAT, [4, 3])],
              [init("w", w), init("v", v), init("u", u), init("t", t)])
    onnx.checker.check_model(m)
    onnx.save_model(m, path("direct", "layouts.onnx"))
    np.save(path("direct", "layouts.in.x.npy"), x)
    y = np.maximum((x @ w + w) @ v + t.T, 0) @ u
    np.save(path("direct", "layouts.out.npy"), y.astype(np.float32))
    # a Concat of so many inputs that the language's concat (16 operands)
    # nests past the parser's 1000 levels: an error located in the text
    n = 16 + 15 * 1000
    m = model([helper.make_node("Concat", ["x"] * n, ["y"], axis=0)],
              [vi("x", TensorProto.FLOAT, [1, 2])], [vi("y", TensorProto.FLOAT, [n, 2])])
    with open(path("direct", "deep-concat.onnx"), "wb") as f:
        f.write(m.SerializeToString())


# ---- types/: every storage form ---------------------------------------------------------


def types_model():
    """Initializers in typed fields and raw_data for the types the reader
    converts, plus FP8 and int4 codes the 1.12 schema has no names for."""
    ts = [
        helper.make_tensor("f32_typed", TensorProto.FLOAT, [3], [1.5, -2.0, 0.25]),
        helper.make_tensor("f64_typed", TensorProto.DOUBLE, [2], [0.1, -3.0]),
        helper.make_tensor("i64_typed", TensorProto.INT64, [3], [-1, 2, 1 << 40]),
        helper.make_tensor("i8_typed", TensorProto.INT8, [3], [-128, 0, 127]),
        helper.make_tensor("u16_typed", TensorProto.UINT16, [2], [65535, 7]),
        helper.make_tensor("bool_typed", TensorProto.BOOL, [3], [True, False, True]),
        helper.make_tensor("f16_typed", TensorProto.FLOAT16, [2], [1.5, -0.5]),  # int32_data bit patterns
        helper.make_tensor("u32_typed", TensorProto.UINT32, [2], [4000000000, 1]),
        helper.make_tensor("f16_raw", TensorProto.FLOAT16, [2], np.array([65504, -2], np.float16).tobytes(), raw=True),
        helper.make_tensor("bf16_raw", TensorProto.BFLOAT16, [2], b"\x80\x3f\x00\xc0", raw=True),  # 1.0, -2.0
        helper.make_tensor("str_typed", TensorProto.STRING, [2], [b"ab", b""]),
        helper.make_tensor("empty", TensorProto.FLOAT, [0, 3], []),
    ]

    def raw(name, dtype, dims, data):
        return TensorProto(name=name, data_type=dtype, dims=dims, raw_data=bytes(data))

    ts += [
        raw("e4m3fn", 17, [4], [0x38, 0xB8, 0x7E, 0x7F]),  # 1.0, -1.0, 448, NaN
        raw("e4m3fnuz", 18, [2], [0x40, 0x80]),  # 1.0, NaN
        raw("e5m2", 19, [3], [0x3C, 0x7C, 0x01]),  # 1.0, inf, 2^-16
        raw("e5m2fnuz", 20, [1], [0x40]),  # 1.0
        raw("uint4", 21, [3], [0x21, 0x0F]),  # 1, 2, 15
        raw("int4", 22, [3], [0xF7, 0x08]),  # 7, -1, -8
    ]
    i4 = TensorProto(name="int4_typed", data_type=22, dims=[3], int32_data=[0xF7, 0x08])
    ts.append(i4)
    nodes = [helper.make_node("Constant", [], ["cf"], value_float=2.5),
             helper.make_node("Constant", [], ["cis"], value_ints=[1, 2, 3]),
             helper.make_node("Identity", ["x"], ["y"])]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [1])], [vi("y", TensorProto.FLOAT, [1])], ts)
    with open(path("types", "types.onnx"), "wb") as f:
        f.write(m.SerializeToString())

# ---- quant/: pre-quantized models ------------------------------------------------


def save_quant(name, m, ins, out, check=True):
    if check:
        onnx.checker.check_model(m)
    onnx.save_model(m, path("quant", name + ".onnx"))
    for k, v in ins.items():
        np.save(path("quant", "%s.in.%s.npy" % (name, k)), v)
    np.save(path("quant", name + ".out.npy"), out.astype(np.float32))


def f16_exact(a):
    """Scales qmc's int4 groups hold exactly (f16 values)."""
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


def qdq():
    """QDQ: int8 weights per output channel (DequantizeLinear of codes), a
    uint8 weight with one scale and zero point 128, a float weight quantized
    by the model (QuantizeLinear -> DequantizeLinear of an initializer), and
    a QuantizeLinear -> DequantizeLinear pair on an activation."""
    rs = np.random.RandomState(7)
    K, H, N = 64, 48, 16
    x = f32(4, K, seed=8, scale=1.0)
    w1q = rs.randint(-127, 128, size=(K, H)).astype(np.int8)
    w1s = (rs.rand(H) * 0.02 + 0.005).astype(np.float32)
    b1 = f32(H, seed=9, scale=0.1)
    w2q = rs.randint(0, 256, size=(H, N)).astype(np.uint8)
    w2s, w2z = np.float32(0.0123), np.uint8(128)
    w3 = f32(N, N, seed=10, scale=0.3)
    w3s = np.float32(0.004)
    a_s, a_z = np.float32(0.05), np.uint8(100)
    nodes = [
        helper.make_node("DequantizeLinear", ["w1q", "w1s"], ["w1"], axis=1),
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("QuantizeLinear", ["h", "a_s", "a_z"], ["hq"]),
        helper.make_node("DequantizeLinear", ["hq", "a_s", "a_z"], ["hd"]),
        helper.make_node("DequantizeLinear", ["w2q", "w2s", "w2z"], ["w2"]),
        helper.make_node("MatMul", ["hd", "w2"], ["y0"]),
        helper.make_node("QuantizeLinear", ["w3", "w3s", "w3z"], ["w3q"]),
        helper.make_node("DequantizeLinear", ["w3q", "w3s", "w3z"], ["w3d"]),
        helper.make_node("MatMul", ["y0", "w3d"], ["y"]),
    ]
    inits = [init("w1q", w1q), init("w1s", w1s), init("b1", b1), init("w2q", w2q), init("w2s", w2s),
             init("w2z", w2z), init("w3", w3), init("w3s", w3s), init("w3z", np.int8(0)),
             init("a_s", a_s), init("a_z", a_z)]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [4, K])], [vi("y", TensorProto.FLOAT, [4, N])], inits)
    w1 = w1q.astype(np.float32) * w1s
    h = np.maximum(x @ w1 + b1, 0)
    hq = np.clip(np.rint(h / a_s) + 100, 0, 255)
    hd = ((hq - 100) * a_s).astype(np.float32)
    w2 = ((w2q.astype(np.float32) - 128) * w2s).astype(np.float32)
    w3d = (np.clip(np.rint(w3 / w3s), -128, 127) * w3s).astype(np.float32)
    save_quant("qdq", m, {"x": x}, (hd @ w2) @ w3d)


def nbits_weight(rs, K, N, block, zero_points, name):
    """MatMulNBits' B, scales and zero points for a random 4-bit matrix,
    and its dequantized [K, N] matrix."""
    nb = (K + block - 1) // block
    codes = rs.randint(0, 16, size=(N, nb * block)).astype(np.uint8)
    scales = f16_exact(rs.rand(N, nb) * 0.05 + 0.01) * np.where(rs.rand(N, nb) < 0.3, -1, 1).astype(np.float32)
    zps = rs.randint(0, 16, size=(N, nb)).astype(np.uint8) if zero_points else np.full((N, nb), 8, np.uint8)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(N, nb, block // 2)
    w = (codes.reshape(N, nb, block).astype(np.float32) - zps[:, :, None]) * scales[:, :, None]
    w = w.reshape(N, nb * block)[:, :K].T.astype(np.float32)
    inits = [init(name + "_Q4", packed), init(name + "_scales", scales.reshape(-1))]
    if zero_points:
        zp = zps if nb % 2 == 0 else np.concatenate([zps, np.zeros((N, 1), np.uint8)], axis=1)
        inits.append(init(name + "_zp", (zp[:, 0::2] | (zp[:, 1::2] << 4)).reshape(-1)))
    return inits, w


def nbits():
    """com.microsoft.MatMulNBits: blocks of 32 with zero points and a bias
    input, blocks of 64 without (symmetric, signed codes), blocks of 16
    (no qmc format: dequantized to f32 and quantized again)."""
    rs = np.random.RandomState(11)
    K, N1, N2, N3 = 64, 32, 64, 8
    x = f32(3, K, seed=12, scale=1.0)
    i1, w1 = nbits_weight(rs, K, N1, 32, True, "w1")
    i2, w2 = nbits_weight(rs, N1, N2, 64, False, "w2")
    i3, w3 = nbits_weight(rs, N2, N3, 16, False, "w3")
    b1 = f32(N1, seed=13, scale=0.1)
    ms = "com.microsoft"
    nodes = [
        helper.make_node("MatMulNBits", ["x", "w1_Q4", "w1_scales", "w1_zp", "", "b1"], ["h"], domain=ms,
                         K=K, N=N1, bits=4, block_size=32),
        helper.make_node("MatMulNBits", ["h", "w2_Q4", "w2_scales"], ["g"], domain=ms, K=N1, N=N2, bits=4,
                         block_size=64),
        helper.make_node("MatMulNBits", ["g", "w3_Q4", "w3_scales"], ["y"], domain=ms, K=N2, N=N3, bits=4,
                         block_size=16),
    ]
    opset = OPSET + [helper.make_opsetid(ms, 1)]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [3, K])], [vi("y", TensorProto.FLOAT, [3, N3])],
              i1 + i2 + i3 + [init("b1", b1)], opset=opset)
    save_quant("nbits", m, {"x": x}, ((x @ w1 + b1) @ w2) @ w3, check=False)


def nbits_acc4():
    """MatMulNBits with accuracy_level 4: ONNX Runtime's kernel quantizes the
    input to int8 in blocks of 32 along K (symmetric, max|block| / 127)."""
    rs = np.random.RandomState(16)
    K, N = 128, 32
    x = f32(1, 6, K, seed=17, scale=1.0)
    i1, w1 = nbits_weight(rs, K, N, 32, False, "w")
    ms = "com.microsoft"
    nodes = [helper.make_node("MatMulNBits", ["x", "w_Q4", "w_scales"], ["y"], domain=ms, K=K, N=N, bits=4,
                              block_size=32, accuracy_level=4)]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [1, 6, K])], [vi("y", TensorProto.FLOAT, [1, 6, N])], i1,
              opset=OPSET + [helper.make_opsetid(ms, 1)])
    save_quant("nbits-acc4", m, {"x": x}, int8_blocks(x, 32) @ w1, check=False)


def int8_blocks(x, bs):
    """accuracy_level 4's input: int8 codes per block of bs, rint(x * (127 /
    max|block|)) (MLAS's QuantizeARow_CompInt8), times the scale max / 127."""
    xb = x.reshape(-1, bs)
    amax = np.abs(xb).max(axis=1, keepdims=True)
    s = (amax / np.float32(127)).astype(np.float32)
    return (np.rint(xb * (np.float32(127) / amax)) * s).astype(np.float32).reshape(x.shape)


def nbits_f32():
    """MatMulNBits with scales as ONNX Runtime's quantizer writes them, f32
    values that f16 does not hold (qmc keeps them: int4:g32:sf32), with zero
    points, and with accuracy_level 4."""
    rs = np.random.RandomState(25)
    K, N1, N2 = 64, 32, 16
    x = f32(2, 3, K, seed=26, scale=1.0)

    def scales_f32(inits, w, name, nb, block, zero_points):
        s = (rs.rand(w.shape[1], nb) * 0.05 + 0.01).astype(np.float32)
        assert (s.astype(np.float16).astype(np.float32) != s).any()
        codes = inits[0]
        inits[1] = init(name + "_scales", s.reshape(-1))
        old = np.frombuffer(numpy_helper.to_array(codes).tobytes(), np.uint8).reshape(w.shape[1], nb, block // 2)
        c = np.empty((w.shape[1], nb, block), np.float32)
        c[:, :, 0::2], c[:, :, 1::2] = old & 15, old >> 4
        z = 8 if not zero_points else zps[name]
        return inits, ((c - z) * s[:, :, None]).reshape(w.shape[1], -1)[:, :w.shape[0]].T.astype(np.float32)

    zps = {}
    i1, w1 = nbits_weight(rs, K, N1, 32, True, "w1")
    zp = numpy_helper.to_array(i1[2]).reshape(N1, -1)
    zps["w1"] = np.stack([zp & 15, zp >> 4], axis=2).reshape(N1, -1)[:, :K // 32, None].astype(np.float32)
    i1, w1 = scales_f32(i1, w1, "w1", K // 32, 32, True)
    i2, w2 = nbits_weight(rs, N1, N2, 32, False, "w2")
    i2, w2 = scales_f32(i2, w2, "w2", N1 // 32, 32, False)
    ms = "com.microsoft"
    nodes = [
        helper.make_node("MatMulNBits", ["x", "w1_Q4", "w1_scales", "w1_zp"], ["h"], domain=ms, K=K, N=N1,
                         bits=4, block_size=32),
        helper.make_node("MatMulNBits", ["h", "w2_Q4", "w2_scales"], ["y"], domain=ms, K=N1, N=N2, bits=4,
                         block_size=32, accuracy_level=4),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [2, 3, K])], [vi("y", TensorProto.FLOAT, [2, 3, N2])],
              i1 + i2, opset=OPSET + [helper.make_opsetid(ms, 1)])
    h = (x @ w1).astype(np.float32)
    save_quant("nbits-f32", m, {"x": x}, int8_blocks(h, 32) @ w2, check=False)


def fp8_decode(codes, e5m2):
    """The values of FP8 codes (E4M3FN: bias 7, no inf; E5M2: bias 15), no NaNs given."""
    c = codes.astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    mbits, bias = (2, 15) if e5m2 else (3, 7)
    e = (c >> mbits) & ((1 << (7 - mbits)) - 1)
    m = c & ((1 << mbits) - 1)
    v = np.where(e == 0, m / 2.0 ** mbits * 2.0 ** (1 - bias), (1 + m / 2.0 ** mbits) * 2.0 ** (e - bias))
    return (sign * v).astype(np.float32)


def fp8():
    """DequantizeLinear of FP8 codes (opset 19): E4M3FN with a scale per
    output channel, E5M2 with one scale."""
    rs = np.random.RandomState(18)
    K, H, N = 32, 16, 8
    x = f32(2, K, seed=19, scale=1.0)
    c1 = rs.randint(0, 256, size=(K, H)).astype(np.uint8)
    c1[(c1 & 0x7F) == 0x7F] = 0x10  # no NaN
    c2 = rs.randint(0, 256, size=(H, N)).astype(np.uint8)
    c2[(c2 & 0x7C) == 0x7C] = 0x10  # no inf or NaN
    s1 = (rs.rand(H) * 0.01 + 0.001).astype(np.float32)
    s2 = np.float32(0.002)
    t1 = TensorProto(name="w1q", data_type=17, dims=[K, H], raw_data=c1.tobytes())
    t2 = TensorProto(name="w2q", data_type=19, dims=[H, N], raw_data=c2.tobytes())
    nodes = [
        helper.make_node("DequantizeLinear", ["w1q", "s1"], ["w1"], axis=1),
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("DequantizeLinear", ["w2q", "s2"], ["w2"]),
        helper.make_node("MatMul", ["h", "w2"], ["y"]),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [2, K])], [vi("y", TensorProto.FLOAT, [2, N])],
              [t1, t2, init("s1", s1), init("s2", s2)], opset=[helper.make_opsetid("", 19)], ir=9)
    w1 = (fp8_decode(c1, False) * s1).astype(np.float32)
    w2 = (fp8_decode(c2, True) * s2).astype(np.float32)
    save_quant("fp8", m, {"x": x}, (x @ w1) @ w2, check=False)


def dynamic():
    """DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by the product
    of the scales, as onnxruntime.quantization.quantize_dynamic writes it
    (int8 weights, a scale per output channel). The reference computes with
    the input quantized as DynamicQuantizeLinear defines (uint8 over the
    whole tensor, asymmetric)."""
    rs = np.random.RandomState(14)
    K, N = 64, 24
    x = f32(5, K, seed=15, scale=1.0)
    wq = rs.randint(-127, 128, size=(K, N)).astype(np.int8)
    ws = (rs.rand(N) * 0.02 + 0.002).astype(np.float32)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("Mul", ["xs", "ws"], ["s"]),
        helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["yi"]),
        helper.make_node("Cast", ["yi"], ["yf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["yf", "s"], ["y"]),
    ]
    inits = [init("wq", wq), init("ws", ws), init("wz", np.zeros(N, np.int8))]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [5, K])], [vi("y", TensorProto.FLOAT, [5, N])], inits)
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    xs = np.float32((hi - lo) / np.float32(255))
    xz = np.clip(np.rint(-lo / xs), 0, 255)
    xq = np.clip(np.rint(x / xs) + xz, 0, 255)
    xd = ((xq - xz) * xs).astype(np.float32)
    save_quant("dynamic", m, {"x": x}, xd @ (wq.astype(np.float32) * ws))


def qdq_codes(x, s, z, lo, hi):
    """ONNX's QuantizeLinear of f32 values: saturate(rint(x / s) + z)."""
    return np.clip(np.rint(x / np.float32(s)) + z, lo, hi)


def static_mlp():
    """A small MLP statically quantized in QDQ format, as
    onnxruntime.quantization.quantize_static writes it: every MatMul/Gemm
    input through QuantizeLinear -> DequantizeLinear with one scale and zero
    point (uint8 with zero points 120 and 0, int8 symmetric with a scale
    small enough that codes saturate at -128), int8 weights per output
    channel and per tensor, one pair read by two MatMuls, a Gemm with
    transB. qmc maps each pair onto its layers' `:a8:static`."""
    rs = np.random.RandomState(21)
    K, H, M, N = 64, 48, 32, 16
    x = f32(6, K, seed=22, scale=1.0)
    w1q = rs.randint(-127, 128, size=(K, H)).astype(np.int8)
    w1s = (rs.rand(H) * 0.01 + 0.004).astype(np.float32)
    b1 = f32(H, seed=23, scale=0.2)
    w2q = rs.randint(-127, 128, size=(H, M)).astype(np.int8)
    w2s = np.float32(0.011)
    w4q = rs.randint(-127, 128, size=(H, M)).astype(np.int8)
    w4s = (rs.rand(M) * 0.01 + 0.005).astype(np.float32)
    w3q = rs.randint(-127, 128, size=(N, M)).astype(np.int8)
    w3s = (rs.rand(N) * 0.02 + 0.01).astype(np.float32)
    b3 = f32(N, seed=24, scale=0.1)
    s0, z0 = np.float32(0.02), np.uint8(120)
    s1, z1 = np.float32(0.03), np.uint8(0)
    s2, z2 = np.float32(0.0075), np.int8(0)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s0", "z0"], ["xq"], name="q0"),
        helper.make_node("DequantizeLinear", ["xq", "s0", "z0"], ["xd"], name="dq0"),
        helper.make_node("DequantizeLinear", ["w1q", "w1s"], ["w1"], axis=1, name="w1_dq"),
        helper.make_node("MatMul", ["xd", "w1"], ["h0"], name="mm1"),
        helper.make_node("Add", ["h0", "b1"], ["h1a"], name="add1"),
        helper.make_node("Relu", ["h1a"], ["h1"], name="relu1"),
        helper.make_node("QuantizeLinear", ["h1", "s1", "z1"], ["h1q"], name="q1"),
        helper.make_node("DequantizeLinear", ["h1q", "s1", "z1"], ["h1d"], name="dq1"),
        helper.make_node("DequantizeLinear", ["w2q", "w2s"], ["w2"], name="w2_dq"),
        helper.make_node("DequantizeLinear", ["w4q", "w4s"], ["w4"], axis=1, name="w4_dq"),
        helper.make_node("MatMul", ["h1d", "w2"], ["ga"], name="mm2"),
        helper.make_node("MatMul", ["h1d", "w4"], ["gb"], name="mm4"),
        helper.make_node("Add", ["ga", "gb"], ["g0"], name="add2"),
        helper.make_node("Tanh", ["g0"], ["g"], name="tanh"),
        helper.make_node("QuantizeLinear", ["g", "s2", "z2"], ["gq"], name="q2"),
        helper.make_node("DequantizeLinear", ["gq", "s2", "z2"], ["gd"], name="dq2"),
        helper.make_node("DequantizeLinear", ["w3q", "w3s"], ["w3"], axis=0, name="w3_dq"),
        helper.make_node("Gemm", ["gd", "w3", "b3"], ["y"], transB=1, name="gemm"),
    ]
    inits = [init("w1q", w1q), init("w1s", w1s), init("b1", b1), init("w2q", w2q), init("w2s", w2s),
             init("w4q", w4q), init("w4s", w4s), init("w3q", w3q), init("w3s", w3s), init("b3", b3),
             init("s0", s0), init("z0", z0), init("s1", s1), init("z1", z1), init("s2", s2),
             init("z2", z2)]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [6, K])], [vi("y", TensorProto.FLOAT, [6, N])], inits)
    xd = ((qdq_codes(x, s0, 120, 0, 255) - 120) * s0).astype(np.float32)
    h1 = np.maximum(xd @ (w1q.astype(np.float32) * w1s) + b1, 0).astype(np.float32)
    h1d = (qdq_codes(h1, s1, 0, 0, 255) * s1).astype(np.float32)
    g = np.tanh(h1d @ (w2q.astype(np.float32) * w2s) + h1d @ (w4q.astype(np.float32) * w4s))
    gc = qdq_codes(g.astype(np.float32), s2, 0, -128, 127)
    assert (gc == -128).any() and (gc == 127).any()  # codes saturate at both ends
    gd = (gc * s2).astype(np.float32)
    save_quant("static", m, {"x": x}, gd @ (w3q.astype(np.float32) * w3s[:, None]).T + b3)


def static_int4():
    """Static quantization into int4 weights (opset 21's blocked
    DequantizeLinear of int4 codes with int4 zero points, f32 scales): the
    layer is int4:g32:asym:sf32:a8:static with the pair's scale and zero
    point."""
    rs = np.random.RandomState(29)
    K, N, B = 64, 16, 32
    x = f32(3, K, seed=30, scale=1.0)
    codes = rs.randint(-8, 8, size=(K, N)).astype(np.int8)
    zps = rs.randint(-8, 8, size=(K // B, N)).astype(np.int8)
    sc = (rs.rand(K // B, N) * 0.05 + 0.01).astype(np.float32)

    def int4(name, a):
        u = (a.reshape(-1).astype(np.int64) & 15).astype(np.uint8)
        if u.size % 2:
            u = np.concatenate([u, np.zeros(1, np.uint8)])
        return TensorProto(name=name, data_type=22, dims=list(a.shape), raw_data=(u[0::2] | (u[1::2] << 4)).tobytes())

    s0, z0 = np.float32(0.025), np.uint8(77)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s0", "z0"], ["xq"], name="q0"),
        helper.make_node("DequantizeLinear", ["xq", "s0", "z0"], ["xd"], name="dq0"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0, block_size=B, name="w_dq"),
        helper.make_node("MatMul", ["xd", "w"], ["y"], name="mm"),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [3, K])], [vi("y", TensorProto.FLOAT, [3, N])],
              [int4("wq", codes), int4("wz", zps), init("ws", sc), init("s0", s0), init("z0", z0)],
              opset=[helper.make_opsetid("", 21)], ir=10)
    xd = ((np.clip(np.rint(x / s0) + 77, 0, 255) - 77) * s0).astype(np.float32)
    w = ((codes.astype(np.float32) - np.repeat(zps, B, axis=0)) * np.repeat(sc, B, axis=0)).astype(np.float32)
    save_quant("static-int4", m, {"x": x}, xd @ w, check=False)


def qoperator():
    """QOperator format (quantize_static with QuantFormat.QOperator): a
    QuantizeLinear, QLinearConv (int8 weights per output channel, an int32
    bias), com.microsoft.QLinearAdd, a DequantizeLinear, a Reshape and a
    QuantizeLinear, a QLinearMatMul (int8 weights per column) and a
    com.microsoft.QGemm (transB, int8 weights per output, an int32 bias) on
    the codes, and a DequantizeLinear at the end. The two products become
    `:a8:static` layers."""
    rs = np.random.RandomState(27)
    x = f32(1, 2, 6, 6, seed=28, scale=1.0)
    wq = rs.randint(-127, 128, size=(4, 2, 3, 3)).astype(np.int8)
    ws = (rs.rand(4) * 0.01 + 0.01).astype(np.float32)
    bq = rs.randint(-300, 300, size=4).astype(np.int32)
    mq = rs.randint(-127, 128, size=(64, 24)).astype(np.int8)
    msc = (rs.rand(24) * 0.01 + 0.005).astype(np.float32)
    nq = rs.randint(-127, 128, size=(10, 24)).astype(np.int8)
    nsc = (rs.rand(10) * 0.004 + 0.006).astype(np.float32)
    nb = rs.randint(-500, 500, size=10).astype(np.int32)
    s = {"x": (0.02, 128), "c": (0.05, 100), "d": (0.07, 90), "f": (0.07, 90), "h": (0.1, 110),
         "y": (0.05, 120)}
    inits = [init("wq", wq), init("ws", ws), init("wz", np.zeros(4, np.int8)), init("bq", bq), init("mq", mq),
             init("mz", np.zeros(24, np.int8)), init("ms", msc), init("nq", nq), init("nz", np.zeros(10, np.int8)),
             init("ns", nsc), init("nb", nb), init("shape", np.array([1, 64], np.int64))]
    for k, (sc, z) in s.items():
        inits += [init(k + "_s", np.float32(sc)), init(k + "_z", np.uint8(z))]
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_s", "x_z"], ["xq"], name="quant"),
        helper.make_node("QLinearConv", ["xq", "x_s", "x_z", "wq", "ws", "wz", "c_s", "c_z", "bq"], ["cq"],
                         pads=[0, 0, 0, 0], strides=[1, 1], name="conv"),
        helper.make_node("QLinearAdd", ["cq", "c_s", "c_z", "cq", "c_s", "c_z", "d_s", "d_z"], ["dq"], domain=ms,
                         name="add"),
        helper.make_node("DequantizeLinear", ["dq", "d_s", "d_z"], ["d"], name="dequant_d"),
        helper.make_node("Reshape", ["d", "shape"], ["f"], name="flatten"),
        helper.make_node("QuantizeLinear", ["f", "f_s", "f_z"], ["fq"], name="quant_f"),
        helper.make_node("QLinearMatMul", ["fq", "f_s", "f_z", "mq", "ms", "mz", "h_s", "h_z"], ["hq"],
                         name="matmul1"),
        helper.make_node("QGemm", ["hq", "h_s", "h_z", "nq", "ns", "nz", "nb", "y_s", "y_z"], ["yq"],
                         domain=ms, transB=1, name="gemm"),
        helper.make_node("DequantizeLinear", ["yq", "y_s", "y_z"], ["y"], name="dequant"),
    ]
    m = model(nodes, [vi("x", TensorProto.FLOAT, [1, 2, 6, 6])], [vi("y", TensorProto.FLOAT, [1, 10])], inits,
              opset=[helper.make_opsetid("", 13), helper.make_opsetid(ms, 1)])

    def q(v, k):
        sc, z = s[k]
        return np.clip(np.rint(v / np.float32(sc)) + z, 0, 255)

    def dq(c, k):
        sc, z = s[k]
        return ((c - z) * np.float32(sc)).astype(np.float32)

    xd = dq(q(x, "x"), "x")
    w = (wq.astype(np.float32) * ws[:, None, None, None]).astype(np.float32)
    conv = np.zeros((1, 4, 4, 4), np.float32)
    for o in range(4):
        for i in range(4):
            for j in range(4):
                conv[0, o, i, j] = (xd[0, :, i:i + 3, j:j + 3] * w[o]).sum()
    conv += (bq.astype(np.float32) * (np.float32(0.02) * ws))[None, :, None, None]
    cd = dq(q(conv, "c"), "c")
    dd = dq(q(cd + cd, "d"), "d")
    fd = dq(q(dd.reshape(1, 64), "f"), "f")
    hd = dq(q(fd @ (mq.astype(np.float32) * msc), "h"), "h")
    nbd = (nb.astype(np.float32) * (np.float32(0.1) * nsc)).astype(np.float32)
    yd = dq(q(hd @ (nq.astype(np.float32) * nsc[:, None]).T + nbd, "y"), "y")
    save_quant("qoperator", m, {"x": x}, yd, check=False)


if __name__ == "__main__":
    ext_model()
    gelu_silu()
    shapes()
    attention()
    embedding()
    norms()
    names()
    functions()
    bad_models()
    direct_models()
    types_model()
    qdq()
    nbits()
    nbits_acc4()
    nbits_f32()
    fp8()
    dynamic()
    static_mlp()
    qoperator()
    static_int4()

#!/usr/bin/python3
"""Writes small-cnn.onnx, a CNN with every operator qmc's ONNX import of
convolutional networks translates (tests/cnn/onnx.sh), with random
weights (fixed seed). ONNX Runtime's outputs for it are made by
make_refs.mjs. Rerun after changing this file:

    /usr/bin/python3 tests/data/cnn/make_small_cnn.py

Needs Debian's python3-onnx (1.12) and python3-numpy.

The graph, on x [1, 3, 20, 20]:
  Conv 3x3 pads 1 + bias -> BatchNormalization -> Relu
  -> MaxPool 3x3 stride 2 ceil_mode -> Conv 3x3 depthwise stride 1 SAME_UPPER
  -> Clip(0, 6) -> Conv 1x1 (no bias) -> HardSwish
  -> AveragePool 3x3 stride 1 pads 1 count_include_pad
  -> Resize nearest x2 (asymmetric, floor) -> Pad reflect 1
  -> ConvTranspose 3x3 stride 2 pads 1 output_padding 1 -> PRelu (per channel)
  -> Conv 3x3 stride 2 dilation 2 -> HardSigmoid -> Upsample linear-free:
     Resize linear (half_pixel) to sizes -> GlobalAveragePool -> Flatten -> Gemm
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(16)


def w(*shape, scale=0.4):
    return (rng.randn(*shape) * scale).astype(np.float32)


inits = []


def init(name, a):
    inits.append(numpy_helper.from_array(np.asarray(a), name))
    return name


N = helper.make_node
nodes = [
    N("Conv", ["x", init("c1.w", w(8, 3, 3, 3)), init("c1.b", w(8))], ["c1"], pads=[1, 1, 1, 1]),
    N("BatchNormalization",
      ["c1", init("bn.s", 1 + w(8, scale=0.1)), init("bn.b", w(8, scale=0.1)),
       init("bn.m", w(8, scale=0.1)), init("bn.v", np.abs(w(8)) + 0.5)], ["bn"], epsilon=1e-3),
    N("Relu", ["bn"], ["r1"]),
    N("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    N("Conv", ["p1", init("dw.w", w(8, 1, 3, 3)), init("dw.b", w(8))], ["dw"], group=8,
      auto_pad="SAME_UPPER"),
    N("Clip", ["dw", init("lo", np.float32(0)), init("hi", np.float32(6))], ["r6"]),
    N("Conv", ["r6", init("pw.w", w(16, 8, 1, 1))], ["pw"]),
    N("HardSwish", ["pw"], ["hs"]),
    N("AveragePool", ["hs"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
    N("Resize", ["ap", "", init("sc", np.array([1, 1, 2, 2], np.float32))], ["up"], mode="nearest",
      coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    N("Pad", ["up", init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], ["pd"],
      mode="reflect"),
    N("ConvTranspose", ["pd", init("ct.w", w(16, 4, 3, 3)), init("ct.b", w(4))], ["ct"],
      strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
    N("PRelu", ["ct", init("slope", w(4, 1, 1, scale=0.2))], ["pr"]),
    N("Conv", ["pr", init("c2.w", w(12, 4, 3, 3)), init("c2.b", w(12))], ["c2"], strides=[2, 2],
      dilations=[2, 2]),
    N("HardSigmoid", ["c2"], ["hsg"], alpha=0.3, beta=0.4),
    N("Resize", ["hsg", "", "", init("sz", np.array([1, 12, 9, 7], np.int64))], ["rl"],
      mode="linear"),
    N("GlobalAveragePool", ["rl"], ["gp"]),
    N("Flatten", ["gp"], ["fl"]),
    N("Gemm", ["fl", init("fc.w", w(5, 12)), init("fc.b", w(5))], ["y"], transB=1),
]
g = helper.make_graph(nodes, "small_cnn",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 20])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                      initializer=inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                      producer_name="make_small_cnn.py")
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, os.path.join(HERE, "small-cnn.onnx"))

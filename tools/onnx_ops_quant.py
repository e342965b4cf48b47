"""Single-op ONNX cases of the `quant` family (QuantizeLinear, DequantizeLinear) for shrink's
graph importer, runtime and candle lowering.

Writes NAME.onnx + NAME.io.safetensors (onnxruntime's outputs) into
crates/shrink-io/tests/fixtures/graph_ops/quant/, and models that must be refused into its
errors/ folder. Checked by crates/shrink-io/tests/graph_ops_quant.rs and graph_lower_quant.rs.

The inputs hit exact ties (x / scale = k + 0.5 with power-of-two scales: round half to even),
saturation at both ends, per-tensor and per-axis scales (negative axes too), missing zero
points, int32 inputs of DequantizeLinear (quantized biases), opsets 10, 13, 19 and 21.

Run: /work/venv/bin/python tools/onnx_ops_quant.py
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import save_case  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "shrink-io", "tests", "fixtures", "graph_ops", "quant")
ERR = os.path.join(OUT, "errors")

F, U8, I8, I32 = TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
rng = np.random.default_rng(22)


def model(nodes, inputs, outputs, opset, inits=()):
    """inputs/outputs: (name, elem_type, shape with "N" for a symbolic batch)."""
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="shrink-tests")
    m.ir_version = 8 if opset < 21 else 10
    return m


def ties(shape, scale, lo, hi):
    """f32 values on the grid `scale/2`, from below `lo` to above `hi` codes: ties and saturation."""
    k = rng.integers(2 * lo - 12, 2 * hi + 12, size=shape)
    return (k.astype(np.float32) * np.float32(scale / 2)).astype(np.float32)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def quantize_cases():
    x_shape = ["N", 3, 4, 4]
    for opset in (10, 13, 19, 21):
        # Per tensor, uint8 with zero point 128 (scale 0.25: every other grid value is a tie).
        m = model(
            [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")],
            [("x", F, x_shape)],
            [("y", U8, x_shape)],
            opset,
            [init("s", np.float32(0.25)), init("z", np.uint8(128))],
        )
        save_case(OUT, f"q_tensor_u8_opset{opset}", m, [ties([2, 3, 4, 4], 0.25, -128, 127)])
    # int8, zero point -3; no zero point (uint8 by default).
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")],
        [("x", F, ["N", 8])],
        [("y", I8, ["N", 8])],
        13,
        [init("s", np.float32(0.5)), init("z", np.int8(-3))],
    )
    save_case(OUT, "q_tensor_i8_zp", m, [ties([4, 8], 0.5, -128, 127)])
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q")],
        [("x", F, ["N", 8])],
        [("y", U8, ["N", 8])],
        13,
        [init("s", np.float32(0.125))],
    )
    save_case(OUT, "q_no_zero_point", m, [ties([4, 8], 0.125, 0, 255)])
    # Per axis (channels), int8 symmetric, and along a negative axis with uint8 zero points.
    s = np.array([0.25, 0.5, 1.0], np.float32)
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q", axis=1)],
        [("x", F, x_shape)],
        [("y", I8, x_shape)],
        13,
        [init("s", s), init("z", np.zeros(3, np.int8))],
    )
    save_case(OUT, "q_axis1_i8", m, [ties([2, 3, 4, 4], 1.0, -128, 127)])
    m = model(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q", axis=-1)],
        [("x", F, ["N", 5, 4])],
        [("y", U8, ["N", 5, 4])],
        21,
        [init("s", np.array([0.25, 0.5, 0.125, 2.0], np.float32)), init("z", np.array([0, 7, 128, 255], np.uint8))],
    )
    save_case(OUT, "q_axis_neg1_u8_opset21", m, [ties([3, 5, 4], 1.0, -64, 64)])


def dequantize_cases():
    # uint8 graph input, per tensor.
    m = model(
        [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], name="dq")],
        [("x", U8, ["N", 6])],
        [("y", F, ["N", 6])],
        13,
        [init("s", np.float32(0.05)), init("z", np.uint8(100))],
    )
    save_case(OUT, "dq_tensor_u8_input", m, [rng.integers(0, 256, size=(3, 6)).astype(np.uint8)])
    for opset in (10, 21):
        m = model(
            [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], name="dq")],
            [("x", I8, ["N", 6])],
            [("y", F, ["N", 6])],
            opset,
            [init("s", np.float32(0.1)), init("z", np.int8(-5))],
        )
        save_case(OUT, f"dq_tensor_i8_opset{opset}", m, [rng.integers(-128, 128, size=(3, 6)).astype(np.int8)])
    # A quantized conv weight: constant int8 codes, per output channel, added to an input.
    w = rng.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    s = rng.uniform(0.001, 0.05, size=4).astype(np.float32)
    m = model(
        [
            helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wf"], name="dq", axis=0),
            helper.make_node("Add", ["wf", "x"], ["y"], name="add"),
        ],
        [("x", F, [4, 3, 3, 3])],
        [("y", F, [4, 3, 3, 3])],
        13,
        [init("w", w), init("s", s), init("z", np.zeros(4, np.int8))],
    )
    save_case(OUT, "dq_weight_axis0_i8", m, [rng.uniform(-1, 1, size=(4, 3, 3, 3)).astype(np.float32)])
    # A quantized bias: int32 codes, per channel, no zero point.
    b = rng.integers(-(1 << 20), 1 << 20, size=5).astype(np.int32)
    m = model(
        [
            helper.make_node("DequantizeLinear", ["b", "s"], ["bf"], name="dq", axis=0),
            helper.make_node("Add", ["x", "bf"], ["y"], name="add"),
        ],
        [("x", F, ["N", 5])],
        [("y", F, ["N", 5])],
        13,
        [init("b", b), init("s", rng.uniform(1e-5, 1e-3, size=5).astype(np.float32))],
    )
    save_case(OUT, "dq_bias_i32", m, [rng.uniform(-1, 1, size=(2, 5)).astype(np.float32)])


def qdq_cases():
    # Fake quantization of an activation (Q → DQ), as a QDQ model carries it.
    for opset, axis in ((13, None), (21, 1)):
        s = np.float32(0.0625) if axis is None else np.array([0.0625, 0.125, 0.25], np.float32)
        z = np.uint8(120) if axis is None else np.array([120, 128, 3], np.uint8)
        kw = {} if axis is None else {"axis": axis}
        m = model(
            [
                helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q", **kw),
                helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", **kw),
            ],
            [("x", F, ["N", 3, 5])],
            [("y", F, ["N", 3, 5])],
            opset,
            [init("s", s), init("z", z)],
        )
        name = f"qdq_{'tensor' if axis is None else 'axis1'}_opset{opset}"
        save_case(OUT, name, m, [ties([2, 3, 5], 0.0625, -100, 140)])


def error_cases():
    os.makedirs(ERR, exist_ok=True)
    bad = [
        (
            "blocked_opset21",
            model(
                [helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dq", axis=1, block_size=2)],
                [("x", I8, [2, 4])],
                [("y", F, [2, 4])],
                21,
                [init("s", np.ones((2, 2), np.float32))],
            ),
        ),
        (
            "per_axis_opset10",
            model(
                [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")],
                [("x", F, [2, 3])],
                [("y", U8, [2, 3])],
                10,
                [init("s", np.ones(3, np.float32)), init("z", np.zeros(3, np.uint8))],
            ),
        ),
    ]
    for name, m in bad:
        onnx.save(m, os.path.join(ERR, name + ".onnx"))


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    quantize_cases()
    dequantize_cases()
    qdq_cases()
    error_cases()
    n = len([f for f in os.listdir(OUT) if f.endswith(".onnx")])
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"{n} cases, {size} bytes in {OUT}")


if __name__ == "__main__":
    main()

"""QDQ models quantized by shrink, run by onnxruntime.

1. Writes two small f32 models (a conv net and an MLP, random weights) as ONNX, with their
   calibration batch and 1000 test rows: crates/shrink-compress/tests/fixtures/qdq/NAME.onnx
   and NAME.data.safetensors (`calib`, `x`).
2. Runs shrink on them (`cargo run --release -p shrink-compress --example qdq_fixture`):
   calibrate on `calib`, quantize to QDQ, export NAME.qdq.onnx.
3. Runs NAME.qdq.onnx and NAME.onnx in onnxruntime on `x` and stores the outputs in
   NAME.ort.safetensors (`qdq`, `fp32`).

crates/shrink-compress/tests/graph_qdq.rs re-quantizes the f32 model (it must give the same
file), evaluates the QDQ graph with shrink-runtime and compares with onnxruntime's outputs.

Also writes qdq_golden.safetensors: the scales, zero points and codes of a small weight
(symmetric per channel, narrow int8) and activation (asymmetric uint8 per tensor) computed with
numpy in float32 (onnxruntime's quantization tool's formulas, round half to even), checked
against torch.quantize_per_channel / quantize_per_tensor.

Run: /work/venv/bin/python tools/onnx_qdq_check.py
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import write_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "shrink-compress", "tests", "fixtures", "qdq")
F = TensorProto.FLOAT
rng = np.random.default_rng(5)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def he(shape, fan_in):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)


def save(name, nodes, inits, in_shape, out_shape, rows):
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", F, ["N"] + in_shape)],
        [helper.make_tensor_value_info("y", F, ["N"] + out_shape)],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="shrink-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))
    calib = rng.normal(0.0, 1.0, size=[64] + in_shape).astype(np.float32)
    x = rng.normal(0.0, 1.0, size=[rows] + in_shape).astype(np.float32)
    write_safetensors(os.path.join(OUT, name + ".data.safetensors"), {"calib": calib, "x": x})
    return x


def conv_net():
    nodes = [
        helper.make_node("Conv", ["x", "c1.weight", "c1.bias"], ["h1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "c2.weight", "c2.bias"], ["h2"], name="conv2", strides=[2, 2]),
        helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1),
    ]
    inits = [
        init("c1.weight", he([8, 2, 3, 3], 18)),
        init("c1.bias", rng.normal(0, 0.1, 8)),
        init("c2.weight", he([12, 8, 3, 3], 72)),
        init("c2.bias", rng.normal(0, 0.1, 12)),
        init("fc.weight", he([10, 12], 12)),
        init("fc.bias", rng.normal(0, 0.1, 10)),
    ]
    return save("conv", nodes, inits, [2, 6, 6], [10], 1000)


def mlp():
    nodes = [
        helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "fc2.weight"], ["m"], name="fc2"),
        helper.make_node("Add", ["m", "fc2.bias"], ["y"], name="fc2_bias"),
    ]
    inits = [
        init("fc1.weight", he([32, 16], 16)),
        init("fc1.bias", rng.normal(0, 0.1, 32)),
        init("fc2.weight", he([32, 10], 32)),
        init("fc2.bias", rng.normal(0, 0.1, 10)),
    ]
    return save("mlp", nodes, inits, [16], [10], 1000)


def run_ort(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def golden():
    """numpy float32 reference of shrink's weight and activation parameters."""
    import torch

    w = rng.normal(0, 0.3, size=(4, 3, 2, 2)).astype(np.float32)
    w[2] = 0.0  # an all-zero (pruned) channel: scale 1, codes 0
    w[1, 0, 0, 0] = np.float32(0.0)
    amax = np.abs(w).reshape(4, -1).max(axis=1).astype(np.float32)
    w_scale = (amax / np.float32(127.0)).astype(np.float32)
    w_scale[w_scale < np.finfo(np.float32).tiny] = 1.0
    w_codes = np.clip(np.rint(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    tq = torch.quantize_per_channel(torch.from_numpy(w), torch.from_numpy(w_scale.astype(np.float64)),
                                    torch.zeros(4, dtype=torch.int64), 0, torch.qint8).int_repr().numpy()
    print("weight codes differing from torch.quantize_per_channel:", int((tq != w_codes).sum()))

    a = rng.normal(0.4, 1.0, size=(5, 7)).astype(np.float32)
    lo, hi = np.float32(min(a.min(), 0.0)), np.float32(max(a.max(), 0.0))
    a_scale = np.float32((hi - lo) / np.float32(255.0))
    a_zp = np.uint8(np.clip(np.rint(np.float32(0.0) - lo / a_scale), 0, 255))
    a_codes = np.clip(np.rint(a / a_scale) + np.float32(a_zp), 0, 255).astype(np.uint8)
    ta = torch.quantize_per_tensor(torch.from_numpy(a), float(a_scale), int(a_zp), torch.quint8).int_repr().numpy()
    print("activation codes differing from torch.quantize_per_tensor:", int((ta != a_codes).sum()))
    write_safetensors(
        os.path.join(os.path.dirname(OUT), "qdq_golden.safetensors"),
        {
            "w": w,
            "w_scale": w_scale,
            "w_codes": w_codes,
            "a": a,
            "a_range": np.array([a.min(), a.max()], np.float32),
            "a_scale": np.array([a_scale], np.float32),
            "a_zero_point": np.array([a_zp], np.uint8),
            "a_codes": a_codes,
        },
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    xs = {"conv": conv_net(), "mlp": mlp()}
    golden()
    subprocess.run(
        ["cargo", "run", "--release", "-p", "shrink-compress", "--example", "qdq_fixture", "--", OUT, "conv", "mlp"],
        cwd=ROOT,
        check=True,
    )
    for name, x in xs.items():
        q = run_ort(os.path.join(OUT, name + ".qdq.onnx"), x)
        f = run_ort(os.path.join(OUT, name + ".onnx"), x)
        write_safetensors(os.path.join(OUT, name + ".ort.safetensors"), {"qdq": q, "fp32": f})
        agree = (q.argmax(1) == f.argmax(1)).mean()
        print(f"{name}: onnxruntime QDQ vs fp32: max |diff| {np.abs(q - f).max():.4f}, argmax agreement {agree:.4f}")


if __name__ == "__main__":
    main()

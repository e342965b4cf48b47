#!/usr/bin/env python3
"""Side-by-side latencies for bench/runtime_sidebyside.sh: PyTorch and onnxruntime variants of a
model, and the markdown table of medians and the issue's ratios.

Subcommands:
  measure IMPL MODEL [--batch 1,64] [--iters N] [--warmup N] [--threads 2]
      One JSON object on stdout, the shape of `shrink bench MODEL --json`:
      {"impl", "model", "threads", "results": [{"batch", "median_ms", "min_ms", "iters"}]}.
      IMPL: ort (any ONNX file: fp32, QDQ, ORT-quantized), torch-fp32, torch-dyn-int8
      (torch.ao.quantization.quantize_dynamic on nn.Linear), torch-csr (weights as
      torch.sparse_csr, y = W·xᵀ by torch.sparse.mm). The torch variants rebuild an MLP
      (Gemm/MatMul + Relu chain) from the ONNX file's initializers.
  ort-quant MODEL --dynamic OUT --static OUT [--calib-batches 8]
      onnxruntime's own quantizers, for reference: quantize_dynamic (int8 weights, dynamic
      uint8 activations) and quantize_static (QDQ, per-channel, calibrated on random inputs of
      the model's input shape drawn like the benchmark's — speed only, accuracy not measured).
  table DIR
      Reads DIR/<variant>.<round>.json (written by the .sh driver; "n/a" files for variants
      that could not be built) and prints the markdown tables (medians over rounds of the
      per-round medians) with the ratios issue 22 asks for, each with its target and ✓/✗.

Inputs are the same deterministic pattern as `shrink bench` (((k·7919) mod 1000 − 500) / 500).
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time

import numpy as np


def pattern(shape):
    n = int(np.prod(shape))
    x = ((np.arange(n, dtype=np.int64) * 7919 % 1000).astype(np.float32) - 500.0) / 500.0
    return x.reshape(shape)


def time_fn(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ms.append(1e3 * (time.perf_counter() - t))
    return statistics.median(ms), min(ms)


def ort_session(model, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def input_shape(inp, batch, model):
    shape = [batch if (i == 0 and not isinstance(d, int)) else d for i, d in enumerate(inp.shape)]
    if any(not isinstance(d, int) for d in shape):
        raise SystemExit(f"{model}: input {inp.name} has symbolic dimensions besides the batch: {inp.shape}")
    return shape


def mlp_layers(model):
    """(weight [out, in] f32, bias or None, relu after) per Gemm/MatMul of an MLP ONNX file."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(model)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    layers = []
    for node in m.graph.node:
        if node.op_type in ("Gemm", "MatMul"):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.input[1] not in init:
                raise SystemExit(f"{model}: node {node.name} has no constant weight (not an fp32 MLP)")
            w = init[node.input[1]].astype(np.float32)
            if node.op_type == "MatMul" or not attrs.get("transB", 0):
                w = w.T
            b = init.get(node.input[2]) if len(node.input) > 2 else None
            layers.append([np.ascontiguousarray(w), b, False])
        elif node.op_type == "Relu":
            if not layers:
                raise SystemExit(f"{model}: Relu before any linear layer")
            layers[-1][2] = True
        elif node.op_type not in ("Flatten", "Reshape", "Identity"):
            raise SystemExit(f"{model}: op {node.op_type} is not part of an MLP (torch variants need one)")
    if not layers:
        raise SystemExit(f"{model}: no Gemm/MatMul layer")
    return layers


def torch_mlp(model):
    import torch

    mods = []
    for w, b, relu in mlp_layers(model):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            if b is not None:
                lin.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        mods.append(lin)
        if relu:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(torch.nn.Flatten(), *mods).eval()


class CsrMlp:
    """An MLP whose weights are torch.sparse_csr tensors: yᵀ = W·xᵀ (+ b), ReLU."""

    def __init__(self, model):
        import torch

        self.layers = []
        for w, b, relu in mlp_layers(model):
            wt = torch.from_numpy(w).to_sparse_csr()
            bt = None if b is None else torch.from_numpy(b.astype(np.float32)).reshape(-1, 1)
            self.layers.append((wt, bt, relu))
        self.density = sum(l[0].values().numel() for l in self.layers) / sum(
            l[0].shape[0] * l[0].shape[1] for l in self.layers
        )

    def __call__(self, x):
        import torch

        h = x.reshape(x.shape[0], -1).T.contiguous()
        for w, b, relu in self.layers:
            h = torch.sparse.mm(w, h)
            if b is not None:
                h = h + b
            if relu:
                h = torch.relu(h)
        return h.T


def measure(a):
    batches = [int(b) for b in a.batch.split(",")]
    results = []
    if a.impl == "ort":
        import onnxruntime as ort

        sess = ort_session(a.model, a.threads)
        inp = sess.get_inputs()[0]
        name = f"onnxruntime {ort.__version__}"
        for batch in batches:
            feed = {inp.name: pattern(input_shape(inp, batch, a.model))}
            med, mn = time_fn(lambda: sess.run(None, feed), a.iters, a.warmup)
            results.append({"batch": batch, "median_ms": med, "min_ms": mn, "iters": a.iters})
    else:
        import onnxruntime as ort
        import torch

        torch.set_num_threads(a.threads)
        shape = ort_session(a.model, 1).get_inputs()[0]
        if a.impl == "torch-fp32":
            fn = torch_mlp(a.model)
        elif a.impl == "torch-dyn-int8":
            fn = torch.ao.quantization.quantize_dynamic(torch_mlp(a.model), {torch.nn.Linear}, dtype=torch.qint8)
        elif a.impl == "torch-csr":
            fn = CsrMlp(a.model)
        else:
            raise SystemExit(f"unknown implementation `{a.impl}` (ort, torch-fp32, torch-dyn-int8, torch-csr)")
        name = f"torch {torch.__version__} {a.impl}"
        for batch in batches:
            x = torch.from_numpy(pattern(input_shape(shape, batch, a.model)))
            with torch.inference_mode():
                med, mn = time_fn(lambda: fn(x), a.iters, a.warmup)
            results.append({"batch": batch, "median_ms": med, "min_ms": mn, "iters": a.iters})
    print(json.dumps({"impl": name, "model": a.model, "threads": a.threads, "results": results}))


def ort_quant(a):
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = a.dynamic + ".pre.onnx"
    quant_pre_process(a.model, pre, skip_symbolic_shape=True)
    quantize_dynamic(pre, a.dynamic, weight_type=QuantType.QInt8)
    inp = ort_session(pre, 1).get_inputs()[0]
    shape = input_shape(inp, 8, a.model)
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = a.calib_batches

        def get_next(self):
            if self.left == 0:
                return None
            self.left -= 1
            return {inp.name: rng.uniform(-1, 1, shape).astype(np.float32)}

    quantize_static(pre, a.static, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.remove(pre)
    print(f"wrote {a.dynamic} and {a.static} (onnxruntime {ort.__version__})", file=sys.stderr)


# --- the table --------------------------------------------------------------------------------

# (row label, variant file stem) per model; batches per model.
ROWS = {
    "simple-dnn": (
        [1, 64],
        [
            ("PyTorch fp32", "sd.torch-fp32"),
            ("PyTorch dynamic int8", "sd.torch-dyn-int8"),
            ("PyTorch CSR (90 % sparse)", "sd.torch-csr"),
            ("onnxruntime fp32", "sd.ort-fp32"),
            ("onnxruntime int8 (shrink's QDQ ONNX)", "sd.ort-qdq"),
            ("onnxruntime int8 (ORT quantize_dynamic)", "sd.ort-dyn"),
            ("onnxruntime int8 (ORT quantize_static, QDQ)", "sd.ort-static"),
            ("shrink fp32 (deploy file)", "sd.shrink-fp32"),
            ("shrink int8 (deploy file)", "sd.shrink-int8"),
            ("shrink 90 % sparse (deploy file)", "sd.shrink-sparse"),
            ("shrink int4 weight-only (deploy file)", "sd.shrink-int4"),
        ],
    ),
    "ResNet-20": (
        [1, 128],
        [
            ("onnxruntime fp32", "r20.ort-fp32"),
            ("onnxruntime int8 (shrink's QDQ ONNX)", "r20.ort-qdq"),
            ("onnxruntime int8 (ORT quantize_static, QDQ)", "r20.ort-static"),
            ("shrink fp32 (deploy file)", "r20.shrink-fp32"),
            ("shrink int8 (deploy file)", "r20.shrink-int8"),
        ],
    ),
}

# (what, numerator stem, denominator stem, batch, target ≥) — ratio = num / den, "x faster".
RATIOS = [
    ("fp32 simple-dnn: onnxruntime fp32 / shrink fp32", "sd.ort-fp32", "sd.shrink-fp32", 1, 1.0),
    ("fp32 simple-dnn: onnxruntime fp32 / shrink fp32", "sd.ort-fp32", "sd.shrink-fp32", 64, 1.0),
    ("int8 simple-dnn: onnxruntime QDQ / shrink int8", "sd.ort-qdq", "sd.shrink-int8", 1, 1.0),
    ("int8 simple-dnn: onnxruntime QDQ / shrink int8", "sd.ort-qdq", "sd.shrink-int8", 64, 1.0),
    ("int8 simple-dnn: ORT quantize_dynamic / shrink int8 (reference)", "sd.ort-dyn", "sd.shrink-int8", 1, 1.0),
    ("int8 simple-dnn: ORT quantize_dynamic / shrink int8 (reference)", "sd.ort-dyn", "sd.shrink-int8", 64, 1.0),
    ("int8 ResNet-20: onnxruntime QDQ / shrink int8", "r20.ort-qdq", "r20.shrink-int8", 1, 1.0),
    ("int8 ResNet-20: onnxruntime QDQ / shrink int8", "r20.ort-qdq", "r20.shrink-int8", 128, 1.0),
    ("int8 ResNet-20: shrink fp32 / shrink int8", "r20.shrink-fp32", "r20.shrink-int8", 1, 2.0),
    ("int8 ResNet-20: shrink fp32 / shrink int8", "r20.shrink-fp32", "r20.shrink-int8", 128, 2.0),
    ("90 % sparse simple-dnn: shrink dense fp32 / shrink sparse", "sd.shrink-fp32", "sd.shrink-sparse", 1, 4.0),
    ("90 % sparse simple-dnn: PyTorch CSR / shrink sparse", "sd.torch-csr", "sd.shrink-sparse", 1, 2.0),
    ("int4 simple-dnn: shrink int8 / shrink int4", "sd.shrink-int8", "sd.shrink-int4", 1, 1.5),
]


def load_medians(d):
    """{stem: {batch: median over rounds}} and the stems that are n/a."""
    per, na = {}, set()
    for f in sorted(glob.glob(os.path.join(d, "*.json"))):
        stem = os.path.basename(f).rsplit(".", 2)[0]
        txt = open(f).read().strip()
        if not txt.startswith("{"):
            na.add(stem)
            continue
        for row in json.loads(txt)["results"]:
            per.setdefault(stem, {}).setdefault(row["batch"], []).append(row["median_ms"])
    return {s: {b: statistics.median(v) for b, v in bs.items()} for s, bs in per.items()}, na


def table(a):
    med, na = load_medians(a.dir)
    rounds = len(glob.glob(os.path.join(a.dir, "sd.ort-fp32.*.json")))
    out = [f"Medians over {rounds} alternating rounds of each variant's median latency (ms).", ""]
    for model, (batches, rows) in ROWS.items():
        out.append(f"| {model} | " + " | ".join(f"batch {b} (ms)" for b in batches) + " |")
        out.append("|---|" + "---:|" * len(batches))
        for label, stem in rows:
            cells = [f"{med[stem][b]:.3f}" if b in med.get(stem, {}) else "n/a" for b in batches]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    out.append("| ratio (above 1: the denominator is faster) | batch | measured | target | met |")
    out.append("|---|---:|---:|---:|:---:|")
    for what, num, den, b, target in RATIOS:
        n, d = med.get(num, {}).get(b), med.get(den, {}).get(b)
        if n is None or d is None:
            out.append(f"| {what} | {b} | n/a | ≥ {target:g}x | — |")
        else:
            r = n / d
            out.append(f"| {what} | {b} | {r:.2f}x | ≥ {target:g}x | {'✓' if r >= target else '✗'} |")
    acc = os.path.join(a.dir, "accuracy.txt")
    if os.path.exists(acc):
        out.append("")
        out.extend(open(acc).read().strip().splitlines())
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("impl")
    m.add_argument("model")
    m.add_argument("--batch", default="1,64")
    m.add_argument("--iters", type=int, default=30)
    m.add_argument("--warmup", type=int, default=3)
    m.add_argument("--threads", type=int, default=2)
    q = sub.add_parser("ort-quant")
    q.add_argument("model")
    q.add_argument("--dynamic", required=True)
    q.add_argument("--static", required=True)
    q.add_argument("--calib-batches", type=int, default=8)
    t = sub.add_parser("table")
    t.add_argument("dir")
    a = p.parse_args()
    {"measure": measure, "ort-quant": ort_quant, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()

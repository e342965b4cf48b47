#!/usr/bin/env python3
"""PyTorch side of `shrink sweep quant`: the MNIST lab's quantization sweep (seed 000) on the SAME
exported weights (a shrink .safetensors file) and the same MNIST test set (IDX files in data/mnist).

The lab's formula, applied to every conv/linear weight (biases untouched), each cell starting from
the pristine full-precision weights:

    N = 2**l; delta = 2*q/N
    wq = torch.clip(delta*torch.round(w/delta), -q, q-delta)

plus the ResNet lab's symmetric / asymmetric quantizers with a fixed range q (alpha = q, resp.
[-q, q]) or `max` (alpha = max|w|, resp. [min, max]), codes clamped to the levels as in shrink.
The test set is preloaded as one normalized tensor ((x/255 - 0.5)/0.5, the lab's transform) and
evaluated in batches of 128 under torch.no_grad(), like the lab's test loop.

    /work/venv/bin/python bench/quant_sweep_torch.py MODEL.safetensors --data data/mnist \
        --threads 2 --json torch.json [--compare runs/sweep-quant/table.json --md out.md]

Prints the same table as `shrink sweep quant` (rows q, columns bits), and with --compare a
per-cell comparison against shrink's table.json (difference in percentage points).
"""
import argparse, gzip, json, os, struct, sys, time
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

LAB_BITS = "2,4,8,12,16"
LAB_Q = "0.5,0.8,1,1.2,1.5,1.7,2"


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(dirname, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(dirname, name)
        if os.path.exists(p):
            return p
    sys.exit(f"{dirname}: no {stem}[.gz]")


def load_mnist(dirname, split):
    prefix = "t10k" if split == "test" else "train"
    x = read_idx(find(dirname, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(find(dirname, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(x.copy()).float().div(255.0).sub(0.5).div(0.5).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


def layer_names(sd):
    """Linear layers fc1, fc2, ... in order (the simple-dnn / lenet-300-100 MLPs)."""
    names = sorted({k.rsplit(".", 1)[0] for k in sd}, key=lambda n: int(n[2:]) if n[2:].isdigit() else n)
    if not all(n.startswith("fc") for n in names):
        sys.exit(f"only fcN MLPs are supported, got layers {names}")
    return names


def forward(x, layers):
    h = x.flatten(1)
    for i, (w, b) in enumerate(layers):
        h = F.linear(h, w, b)
        if i + 1 < len(layers):
            h = F.relu(h)
    return h


def quantize(w, method, bits, q):
    """One weight tensor, per tensor, the lab formulas in float32."""
    if method == "clip":
        if q == "max":
            q = float(w.abs().max())
        N = 2 ** bits
        delta = 2 * q / N
        return torch.clip(delta * torch.round(w / delta), -q, q - delta)
    if method == "symmetric":
        s = 2 ** (bits - 1) - 1
        alpha = w.abs().max() if q == "max" else torch.tensor(q, dtype=torch.float32)
        return torch.clamp(torch.round(w / alpha * s), -s, s) / s * alpha + 0
    if method == "asymmetric":
        n = 2 ** bits - 1
        if q == "max":
            alpha, beta = w.max() - w.min(), w.min()
        else:
            alpha, beta = torch.tensor(2 * q, dtype=torch.float32), torch.tensor(-q, dtype=torch.float32)
        return torch.clamp(torch.round((w - beta) / alpha * n), 0, n) / n * alpha + beta
    sys.exit(f"unknown method {method}")


def test(x, y, layers, batch_size):
    correct = 0
    with torch.no_grad():
        for k in range(0, x.shape[0], batch_size):
            out = forward(x[k:k + batch_size], layers)
            correct += int((out.argmax(1) == y[k:k + batch_size]).sum())
    return correct


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", default="data/mnist")
    ap.add_argument("--split", default="test")
    ap.add_argument("--method", default="clip")
    ap.add_argument("--bits", default=LAB_BITS)
    ap.add_argument("--q", default=LAB_Q)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the cells here")
    ap.add_argument("--compare", help="shrink's table.json to compare against")
    ap.add_argument("--md", help="write the comparison (markdown) here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    sd = load_file(a.model)
    names = layer_names(sd)
    pristine = [(sd[f"{n}.weight"].float().contiguous(), sd[f"{n}.bias"].float().contiguous()) for n in names]
    x, y = load_mnist(a.data, a.split)
    t_load = time.perf_counter() - t0
    methods = [m.strip() for m in a.method.split(",") if m.strip()]
    bits = [int(b) for b in a.bits.split(",")]
    qs = [q.strip() for q in a.q.split(",")]
    qval = lambda q: q if q == "max" else float(q)

    t1 = time.perf_counter()
    fp32 = test(x, y, pristine, a.batch_size)
    t_fp32 = time.perf_counter() - t1
    cells = []
    t2 = time.perf_counter()
    for m in methods:
        for q in qs:
            for l in bits:
                c0 = time.perf_counter()
                # Remember to start from a full-precision model each time you quantize it.
                layers = [(quantize(w, m, l, qval(q)), b) for w, b in pristine]
                correct = test(x, y, layers, a.batch_size)
                cells.append({"method": m, "bits": l, "q": q, "correct": correct,
                              "accuracy": correct / len(y), "seconds": time.perf_counter() - c0})
                print(f"Quantization - {m} q={q}, bits={l}, Accuracy: {100 * correct / len(y):.2f}%",
                      file=sys.stderr, flush=True)
    t_grid = time.perf_counter() - t2
    n = len(y)
    for m in methods:
        print(f"\n## {m} (torch): top-1 accuracy (%), range q (rows) x bits (columns)\n")
        print("| q \\ bits |" + "".join(f" {l} |" for l in bits))
        print("|---|" + "---|" * len(bits))
        for q in qs:
            row = {c["bits"]: c for c in cells if c["method"] == m and c["q"] == q}
            print(f"| {q} |" + "".join(f" {100 * row[l]['accuracy']:.2f} |" for l in bits))
    print(f"\nfp32 {100 * fp32 / n:.2f}%; load {t_load:.1f} s, fp32 eval {t_fp32:.1f} s, "
          f"grid {len(cells)} cells {t_grid:.1f} s ({t_grid / max(len(cells), 1):.2f} s/cell), "
          f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    result = {"model": a.model, "samples": n, "fp32_correct": fp32, "fp32_accuracy": fp32 / n,
              "load_seconds": t_load, "fp32_seconds": t_fp32, "grid_seconds": t_grid,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "cells": cells}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    if a.compare:
        compare(result, a.compare, a.md)


def compare(torch_res, shrink_json, md_path):
    with open(shrink_json) as f:
        ours = json.load(f)
    # Wall times are in timings.json beside table.json (the tables hold only results).
    timings = os.path.join(os.path.dirname(shrink_json), "timings.json")
    if os.path.exists(timings):
        with open(timings) as f:
            t = json.load(f)
        ours["grid_seconds"] = t["grid_seconds"]
        secs = {(c["method"], c["bits"], c["q"]): c["seconds"] for c in t["cells"]}
        for c in ours["cells"]:
            c["seconds"] = secs.get((c["method"], c["bits"], c["q"]), float("nan"))
    n = torch_res["samples"]
    key = lambda c: (c["method"], c["bits"], float(c["q"]) if c["q"] != "max" else "max")
    mine = {key(c): c for c in ours["cells"]}
    lines = ["| method | bits | q | shrink (%) | torch (%) | diff (pp) | shrink s | torch s |",
             "|---|---|---|---|---|---|---|---|"]
    worst = 0.0
    missing = 0
    for c in torch_res["cells"]:
        o = mine.get(key(c))
        if o is None:
            missing += 1
            continue
        d = 100 * (o["accuracy"] - c["accuracy"])
        worst = max(worst, abs(d))
        lines.append(f"| {c['method']} | {c['bits']} | {c['q']} | {100 * o['accuracy']:.2f} | "
                     f"{100 * c['accuracy']:.2f} | {d:+.2f} | {o['seconds']:.2f} | {c['seconds']:.2f} |")
    fp32_d = 100 * (ours["fp32_accuracy"] - torch_res["fp32_accuracy"])
    summary = (f"{len(lines) - 2} cells compared ({missing} missing); max |diff| {worst:.2f} pp; "
               f"fp32 shrink {100 * ours['fp32_accuracy']:.2f}% vs torch {100 * torch_res['fp32_accuracy']:.2f}% "
               f"({fp32_d:+.2f} pp); grid wall time shrink {ours['grid_seconds']:.1f} s vs torch "
               f"{torch_res['grid_seconds']:.1f} s (ratio {ours['grid_seconds'] / torch_res['grid_seconds']:.2f})")
    print("\n" + summary)
    print("\n".join(lines))
    if md_path:
        with open(md_path, "w") as f:
            f.write("\n".join(lines) + "\n\n" + summary + "\n")


if __name__ == "__main__":
    main()

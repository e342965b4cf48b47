#!/usr/bin/env python3
"""PyTorch side of `shrink sweep quant` on a CIFAR ResNet (issue 4: the shared pretrained
resnet20, CIFAR-10 test set, `clip`, `symmetric` and `asymmetric` at 3..8 bits, range `max`).

The network is the original paper's CIFAR ResNet-6n+2 with option-A shortcuts (stride-2
subsampling plus zero channel padding), BatchNorm eps 1e-5 in eval mode, loaded from the state_dict
names of ../shared/models/resnetN-cifar10.safetensors (`bench/prune_resnet_torch.py`'s model).
Each cell starts from the pristine weights and applies the lab's formula
(`bench/quant_sweep_torch.py`'s `quantize`) per tensor to every conv/linear weight (tensors with
2 or more dims); biases and BatchNorm parameters stay in fp32, as in shrink's default.

Pixels. To make the comparison about the formulas and not about JPEG decoders, both sides read
the SAME bytes: `--write-bin DIR` decodes the JPEG test images of the tar.gz once with Pillow and
writes them as a CIFAR-10 binary batch `DIR/test_batch.bin` (one label byte + CHW planes per
image), which `shrink` reads natively (`--data DIR`) and this script reads back with `--data DIR`.
`--data X.tar.gz` decodes with Pillow directly (same pixels as the batch file).

    python bench/quant_sweep_resnet_torch.py MODEL.safetensors --data cifar10-jpeg.tar.gz --write-bin runs/r20q/pil-bin
    python bench/quant_sweep_resnet_torch.py MODEL.safetensors --data runs/r20q/pil-bin --threads 2 \
        --json torch.json --compare runs/r20q/pil/table.json --md compare.md
    python bench/quant_sweep_resnet_torch.py --results torch.json --compare OTHER/table.json   # compare only

Inputs are normalized as (x/255 - mean)/std with the models' mean/std (../shared/README.md), the
test set is preloaded as one tensor and evaluated in batches (128, shrink's default) under
torch.no_grad() with `--threads` intra-op threads.
"""
import argparse
import io
import json
import os
import sys
import tarfile
import time

import numpy as np
import torch
from PIL import Image

from prune_resnet_torch import CLASSES, ResNet
from quant_sweep_torch import compare, quantize

MEAN = "0.485,0.456,0.406"
STD = "0.229,0.224,0.225"
RECORD = 1 + 3 * 32 * 32


def decode_tar(path, split):
    """Pillow-decoded `<split>/<class>/*.jpg` images of a tar(.gz): uint8 NCHW and labels, sorted by name."""
    items = []
    with tarfile.open(path) as tf:
        # One sequential pass: seeking back in a .tar.gz re-decompresses from the start.
        for m in tf:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 3 and parts[-3] == split:
                items.append((m.name, tf.extractfile(m).read()))
    items.sort()
    x = np.stack([np.asarray(Image.open(io.BytesIO(d)).convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
                  for _, d in items])
    y = np.array([CLASSES.index(n.split("/")[-2]) for n, _ in items], dtype=np.int64)
    return x, y


def read_bin(path):
    """A CIFAR-10 binary batch (a file, or a directory holding test_batch.bin)."""
    if os.path.isdir(path):
        path = os.path.join(path, "test_batch.bin")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        sys.exit(f"{path}: not a CIFAR-10 binary batch ({raw.size} bytes)")
    rec = raw.reshape(-1, RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), rec[:, 0].astype(np.int64)


def write_bin(x, y, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    rec = np.concatenate([y.astype(np.uint8)[:, None], x.reshape(len(x), -1)], axis=1)
    path = os.path.join(out_dir, "test_batch.bin")
    rec.tofile(path)
    return path


def load_pixels(data, split):
    if data.endswith((".tar.gz", ".tgz", ".tar")):
        return decode_tar(data, split)
    if split != "test":
        sys.exit("only the test split is read from a CIFAR binary batch")
    return read_bin(data)


def normalize(x, mean, std):
    m = torch.tensor([float(v) for v in mean.split(",")]).view(1, 3, 1, 1)
    s = torch.tensor([float(v) for v in std.split(",")]).view(1, 3, 1, 1)
    return (torch.from_numpy(x).float() / 255.0 - m) / s


def load_state(path):
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def build(state):
    n = max(int(k.split(".")[1]) for k in state if k.startswith("layer1.")) + 1
    model = ResNet(n)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        sys.exit(f"state_dict does not fit ResNet-{6 * n + 2}: missing {missing}, unexpected {unexpected}")
    return model.eval(), 6 * n + 2


def test(model, x, y, batch_size):
    correct = 0
    with torch.no_grad():
        for k in range(0, len(x), batch_size):
            correct += int((model(x[k:k + batch_size]).argmax(1) == y[k:k + batch_size]).sum())
    return correct


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help=".safetensors or .pt state_dict of a CIFAR ResNet")
    ap.add_argument("--data", help="CIFAR-10 JPEG tar.gz (Pillow) or a CIFAR binary batch dir/file")
    ap.add_argument("--split", default="test")
    ap.add_argument("--write-bin", metavar="DIR", help="write the decoded pixels as DIR/test_batch.bin and exit")
    ap.add_argument("--method", default="clip,symmetric,asymmetric")
    ap.add_argument("--bits", default="3,4,5,6,7,8")
    ap.add_argument("--q", default="max")
    ap.add_argument("--mean", default=MEAN)
    ap.add_argument("--std", default=STD)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the cells here")
    ap.add_argument("--results", help="skip the sweep: compare these earlier --json results")
    ap.add_argument("--compare", help="shrink's table.json to compare against")
    ap.add_argument("--md", help="write the comparison (markdown) here")
    a = ap.parse_args()

    if a.results:
        with open(a.results) as f:
            result = json.load(f)
        if a.compare:
            compare(result, a.compare, a.md)
        return
    if not a.model or not a.data:
        ap.error("MODEL and --data are required (unless --results)")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    xb, yb = load_pixels(a.data, a.split)
    if a.write_bin:
        path = write_bin(xb, yb, a.write_bin)
        print(f"wrote {len(yb)} images to {path} ({time.perf_counter() - t0:.1f} s)")
        return
    x, y = normalize(xb, a.mean, a.std), torch.from_numpy(yb)
    state = load_state(a.model)
    model, depth = build(state)
    # Conv/linear weights (>= 2 dims), as shrink's default `--include` (BatchNorm and biases stay).
    targets = {name: p for name, p in model.named_parameters() if name.endswith(".weight") and p.dim() >= 2}
    pristine = {name: p.detach().clone() for name, p in targets.items()}
    t_load = time.perf_counter() - t0

    methods = [m.strip() for m in a.method.split(",") if m.strip()]
    bits = [int(b) for b in a.bits.split(",")]
    qs = [q.strip() for q in a.q.split(",")]
    qval = lambda q: q if q == "max" else float(q)
    t1 = time.perf_counter()
    fp32 = test(model, x, y, a.batch_size)
    t_fp32 = time.perf_counter() - t1
    n = len(y)
    print(f"ResNet-{depth}, {len(targets)} conv/linear weights quantized; fp32 {100 * fp32 / n:.2f}% "
          f"({t_fp32:.1f} s)", file=sys.stderr, flush=True)
    cells = []
    t2 = time.perf_counter()
    for m in methods:
        for q in qs:
            for l in bits:
                c0 = time.perf_counter()
                with torch.no_grad():  # every cell from the pristine weights (never compounding)
                    for name, p in targets.items():
                        p.copy_(quantize(pristine[name], m, l, qval(q)))
                correct = test(model, x, y, a.batch_size)
                cells.append({"method": m, "bits": l, "q": q, "correct": correct,
                              "accuracy": correct / n, "seconds": time.perf_counter() - c0})
                print(f"{m} q={q} bits={l}: {100 * correct / n:.2f}% ({cells[-1]['seconds']:.1f} s)",
                      file=sys.stderr, flush=True)
    t_grid = time.perf_counter() - t2
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
    result = {"model": a.model, "data": a.data, "samples": n, "fp32_correct": fp32, "fp32_accuracy": fp32 / n,
              "load_seconds": t_load, "fp32_seconds": t_fp32, "grid_seconds": t_grid,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "cells": cells}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    if a.compare:
        compare(result, a.compare, a.md)


if __name__ == "__main__":
    main()

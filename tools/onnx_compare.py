#!/usr/bin/env python3
"""Checks that onnxruntime and shrink predict the same classes (issues 3 and 5).

    /work/venv/bin/python tools/onnx_compare.py MODEL.onnx --data ../shared/data/cifar10-jpeg.tar.gz \
        --shrink-model MODEL.safetensors [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225]

The JPEG test images are decoded once with Pillow and written as a CIFAR-10 binary batch
(runs/onnx-compare/test_batch.bin), so that shrink and onnxruntime see identical pixels; then
`shrink eval --predictions` and onnxruntime run on them and the script prints agreement and both
accuracies. For MNIST-style IDX directories pass --data DIR (no decoding step).
"""
import argparse
import gzip
import io
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_to_bin(tar_path, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    items = []
    with tarfile.open(tar_path) as tf:
        # One sequential pass: seeking back in a .tar.gz re-decompresses from the start.
        for m in tf:
            if m.isfile() and m.name.split("/")[-3:-2] == ["test"]:
                items.append((m.name, tf.extractfile(m).read()))
    items.sort()
    recs, xs, ys = [], [], []
    for name, data in items:
        label = CLASSES.index(name.split("/")[-2])
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
        chw = img.transpose(2, 0, 1)
        recs.append(bytes([label]) + chw.tobytes())
        xs.append(chw)
        ys.append(label)
    (out_dir / "test_batch.bin").write_bytes(b"".join(recs))
    return np.stack(xs), np.array(ys)


def idx_test(d):
    def read(name):
        p = Path(d) / name
        data = gzip.open(p.with_suffix(".gz")).read() if p.with_suffix(".gz").exists() else p.read_bytes()
        return data
    img = read("t10k-images-idx3-ubyte")
    lab = read("t10k-labels-idx1-ubyte")
    n = int.from_bytes(img[4:8], "big")
    return np.frombuffer(img[16:], np.uint8).reshape(n, 1, 28, 28), np.frombuffer(lab[8:], np.uint8).astype(int)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("--data", required=True)
    ap.add_argument("--shrink-model", required=True)
    ap.add_argument("--shrink", default="target/release/shrink")
    ap.add_argument("--mean")
    ap.add_argument("--std")
    ap.add_argument("--work", default="runs/onnx-compare")
    args = ap.parse_args()
    work = Path(args.work)
    if args.data.endswith((".tar.gz", ".tgz", ".tar")):
        x, y = cifar_to_bin(args.data, work / "cifar-bin")
        data_dir = work / "cifar-bin"
    else:
        x, y = idx_test(args.data)
        data_dir = Path(args.data)
    meta_cmd = [args.shrink, "info", args.shrink_model, "--json"]
    meta = json.loads(subprocess.check_output(meta_cmd))["meta"]
    mean = np.array([float(v) for v in args.mean.split(",")] if args.mean else meta["mean"], np.float32)
    std = np.array([float(v) for v in args.std.split(",")] if args.std else meta["std"], np.float32)
    preds_path = work / "shrink-predictions.json"
    cmd = [args.shrink, "eval", args.shrink_model, "--data", str(data_dir), "--json", "--predictions", str(preds_path)]
    if args.mean:
        cmd += ["--mean", args.mean, "--std", args.std]
    r = json.loads(subprocess.check_output(cmd))
    shrink_pred = np.array(json.load(open(preds_path)))
    sess = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
    xf = (x.astype(np.float32) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]
    out = []
    for i in range(0, len(xf), 500):
        out.append(sess.run(None, {"input": xf[i:i + 500]})[0].argmax(1))
    ort_pred = np.concatenate(out)
    agree = float((ort_pred == shrink_pred).mean())
    print(json.dumps({
        "samples": int(len(y)),
        "agreement": agree,
        "onnxruntime_accuracy": float((ort_pred == y).mean()),
        "shrink_accuracy": r["accuracy"],
        "onnxruntime": ort.__version__,
    }))


if __name__ == "__main__":
    main()

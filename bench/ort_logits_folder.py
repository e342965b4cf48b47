#!/usr/bin/env python3
"""Logits of an ONNX model in onnxruntime over one split of an image-folder archive, in the order
shrink reads it (members of `<split>/<class>/` sorted by path), decoded by Pillow (bit-exact with
shrink's decoder) and normalized as `(x/255 − mean)/std`; writes `[N, C]` float32 `.npy` for
bench/npy_agree.py.

Usage: ort_logits_folder.py ARCHIVE.tar.gz MODEL.onnx OUT.npy [--split test] [--threads 2]
       [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225] [--opt disable|basic|extended|all]
"""
import argparse
import io
import tarfile

import numpy as np
import onnxruntime as ort
from PIL import Image


def main():
    p = argparse.ArgumentParser()
    p.add_argument("archive")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--split", default="test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--mean", default="0.485,0.456,0.406")
    p.add_argument("--std", default="0.229,0.224,0.225")
    p.add_argument("--opt", default="all", choices=["disable", "basic", "extended", "all"],
                   help="onnxruntime graph optimization level (disable: every node as written)")
    a = p.parse_args()
    mean = np.array([float(v) for v in a.mean.split(",")], np.float32).reshape(1, -1, 1, 1)
    std = np.array([float(v) for v in a.std.split(",")], np.float32).reshape(1, -1, 1, 1)
    files = {}
    with tarfile.open(a.archive) as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == a.split:
                files[m.name] = tar.extractfile(m).read()
    names = sorted(files)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[a.opt]
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    out = []
    for i in range(0, len(names), a.batch):
        imgs = [np.asarray(Image.open(io.BytesIO(files[n])).convert("RGB"), np.float32)
                for n in names[i:i + a.batch]]
        x = np.stack(imgs).transpose(0, 3, 1, 2) / np.float32(255.0)
        x = ((x - mean) / std).astype(np.float32)
        out.append(sess.run(None, {inp: x})[0].astype(np.float32))
    logits = np.concatenate(out)
    np.save(a.out, logits)
    labels = sorted({n.split("/")[1] for n in names})
    y = np.array([labels.index(n.split("/")[1]) for n in names])
    print(f"{len(names)} images, accuracy {100.0 * (logits.argmax(1) == y).mean():.2f} %")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch side of `shrink eval MODEL --data data/mnist --batch-size 1000` for an MLP exported by
shrink (fc1..fcN with ReLU between, e.g. simple-dnn): times the forward over the 10k MNIST test
images, preloaded as normalized tensors, a few repetitions.

    python bench/eval_mnist_torch.py runs/i5/sdnn-adam4.safetensors --threads 2
"""
import argparse, gzip, json, struct, time
import numpy as np
import torch
from safetensors.torch import load_file

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--data", default="data/mnist")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch-size", type=int, default=1000)
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
sd = load_file(a.model)
# Normalization from the shrink metadata (the model was trained with it).
with open(a.model, "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
meta = json.loads(json.loads(header["__metadata__"]["shrink"])["shrink.meta"])
mean, std = meta.get("mean", [0.0])[0], meta.get("std", [1.0])[0]
layers = sorted({k.rsplit(".", 1)[0] for k in sd if k.endswith(".weight")}, key=lambda n: int(n[2:]))
with gzip.open(f"{a.data}/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 784)
with gzip.open(f"{a.data}/t10k-labels-idx1-ubyte.gz") as f:
    y = torch.tensor(np.frombuffer(f.read()[8:], dtype=np.uint8).astype(np.int64))
x = (torch.tensor(x, dtype=torch.float32) / 255.0 - mean) / std
for rep in range(a.reps):
    t = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for b in range(0, len(x), a.batch_size):
            h = x[b : b + a.batch_size]
            for i, n in enumerate(layers):
                h = torch.nn.functional.linear(h, sd[n + ".weight"], sd.get(n + ".bias"))
                if i + 1 < len(layers):
                    h = torch.relu(h)
            correct += (h.argmax(1) == y[b : b + a.batch_size]).sum().item()
    print(f"torch eval {len(x)} images: {time.perf_counter() - t:.2f} s, accuracy {100 * correct / len(x):.2f} %")

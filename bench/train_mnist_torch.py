#!/usr/bin/env python3
"""PyTorch side of one real training epoch of simple-dnn on MNIST, the workload of
`shrink train --arch simple-dnn --data data/mnist --epochs 1 --augment off`: 55,000 training
images (5,000 held out for validation, evaluated after the epoch), batch 128, SGD momentum 0.9,
lr 0.05, normalization mean 0.5 / std 0.5, shuffled every epoch. Images are preloaded as
normalized float tensors, so only the training and validation passes are timed.

    python bench/train_mnist_torch.py --threads 2
Prints the epoch time and examples per second (training images / epoch time).
"""
import argparse, gzip, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", default="data/mnist")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--val-size", type=int, default=5000)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
with gzip.open(f"{a.data}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 784)
with gzip.open(f"{a.data}/train-labels-idx1-ubyte.gz") as f:
    y = torch.tensor(np.frombuffer(f.read()[8:], dtype=np.uint8).astype(np.int64))
x = (torch.tensor(x, dtype=torch.float32) / 255.0 - 0.5) / 0.5
perm = torch.randperm(len(x))
val, train = perm[: a.val_size], perm[a.val_size :]
sizes = (784, 1568, 3136, 6272, 10)
layers = nn.ModuleList([nn.Linear(i, o) for i, o in zip(sizes, sizes[1:])])


def forward(h):
    for i, l in enumerate(layers):
        h = l(h)
        if i + 1 < len(layers):
            h = F.relu(h)
    return h


opt = torch.optim.SGD(layers.parameters(), lr=0.05, momentum=0.9)
t = time.perf_counter()
order = train[torch.randperm(len(train))]
for b in range(0, len(order), a.batch_size):
    idx = order[b : b + a.batch_size]
    opt.zero_grad()
    F.cross_entropy(forward(x[idx]), y[idx]).backward()
    opt.step()
train_s = time.perf_counter() - t
with torch.no_grad():
    correct = sum((forward(x[val[b : b + 256]]).argmax(1) == y[val[b : b + 256]]).sum().item() for b in range(0, len(val), 256))
epoch_s = time.perf_counter() - t
print(f"torch epoch {epoch_s:.1f} s (training {train_s:.1f} s, {len(train) / epoch_s:.0f} ex/s), val acc {100 * correct / len(val):.2f} %")

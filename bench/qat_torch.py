#!/usr/bin/env python3
"""PyTorch side of one QAT epoch of lenet5-bn on MNIST, the workload of
`shrink qat M --method ste|lsq --bits 4,4 --data data/mnist --epochs 1 --val-size 5000`:
55,000 training images, batch 128, SGD momentum 0.9, lr 0.01, normalization mean 0.5 / std 0.5.

* ste: symmetric per-tensor weight fake-quant (range max|w| recomputed every forward, torch's
  fake_quantize_per_tensor_affine: straight-through inside the grid) on every conv/linear
  weight; the input of every layer but the first fake-quantized per tensor (asymmetric, EMA
  range, momentum 0.9);
* lsq: LSQ steps for those weights and activations (Esser et al. 2020, gradient scale
  1/sqrt(N*Qp), init 2*mean|v|/sqrt(Qp)).

Images are preloaded as normalized float tensors; only the training pass is timed.

    python bench/qat_torch.py --method lsq --bits 4 --threads 2
"""
import argparse, gzip, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", default="data/mnist")
p.add_argument("--method", choices=["ste", "lsq", "fp32"], default="lsq")
p.add_argument("--bits", type=int, default=4)
p.add_argument("--weights-only", action="store_true", help="no activation quantizers")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--val-size", type=int, default=5000)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
with gzip.open(f"{a.data}/train-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 1, 28, 28)
with gzip.open(f"{a.data}/train-labels-idx1-ubyte.gz") as f:
    y = torch.tensor(np.frombuffer(f.read()[8:], dtype=np.uint8).astype(np.int64))
x = (torch.tensor(x, dtype=torch.float32) / 255.0 - 0.5) / 0.5
train = torch.randperm(len(x))[a.val_size:]
B = a.bits


def grad_scale(s, g):
    sg = s * g
    return (sg - sg.detach()) + s.detach()


def round_pass(v):
    return (torch.round(v) - v).detach() + v


class Lsq(nn.Module):
    def __init__(self, signed):
        super().__init__()
        self.qn, self.qp = (2 ** (B - 1), 2 ** (B - 1) - 1) if signed else (0, 2 ** B - 1)
        self.s = nn.Parameter(torch.ones(1))
        self.init = False

    def forward(self, v):
        if not self.init:
            self.s.data = (2 * v.detach().abs().mean() / math.sqrt(self.qp)).reshape(1)
            self.init = True
        # N: a weight's elements; an activation's features per example.
        n = v.numel() if self.qn > 0 else v[0].numel()
        s = grad_scale(self.s, 1.0 / math.sqrt(n * self.qp))
        return round_pass(torch.clamp(v / s, -self.qn, self.qp)) * s


class SteW(nn.Module):
    def forward(self, w):
        n = 2 ** (B - 1) - 1
        scale = float(w.detach().abs().max()) / n
        return torch.fake_quantize_per_tensor_affine(w, scale, 0, -n, n)


class SteA(nn.Module):
    def __init__(self):
        super().__init__()
        self.lo, self.hi = None, None

    def forward(self, v):
        lo, hi = min(0.0, float(v.detach().min())), max(0.0, float(v.detach().max()))
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo, self.hi = 0.9 * self.lo + 0.1 * lo, 0.9 * self.hi + 0.1 * hi
        scale = max((self.hi - self.lo) / (2 ** B - 1), 1e-8)
        zp = int(round(-self.lo / scale))
        return torch.fake_quantize_per_tensor_affine(v, scale, zp, 0, 2 ** B - 1)


class QConv(nn.Conv2d):
    def __init__(self, *args, wq=None, aq=None, **kw):
        super().__init__(*args, **kw)
        self.wq, self.aq = wq, aq

    def forward(self, v):
        v = self.aq(v) if self.aq is not None else v
        w = self.wq(self.weight) if self.wq is not None else self.weight
        return F.conv2d(v, w, self.bias, self.stride, self.padding)


class QLinear(nn.Linear):
    def __init__(self, *args, wq=None, aq=None, **kw):
        super().__init__(*args, **kw)
        self.wq, self.aq = wq, aq

    def forward(self, v):
        v = self.aq(v) if self.aq is not None else v
        w = self.wq(self.weight) if self.wq is not None else self.weight
        return F.linear(v, w, self.bias)


def quantizers(first):
    if a.method == "fp32":
        return {}
    if a.method == "ste":
        return {"wq": SteW(), "aq": None if first or a.weights_only else SteA()}
    return {"wq": Lsq(True), "aq": None if first or a.weights_only else Lsq(False)}


class LeNet5BN(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(QConv(1, 6, 5, padding=2, **quantizers(True)), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2))
        self.layer2 = nn.Sequential(QConv(6, 16, 5, **quantizers(False)), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = QLinear(400, 120, **quantizers(False))
        self.fc1 = QLinear(120, 84, **quantizers(False))
        self.fc2 = QLinear(84, 10, **quantizers(False))

    def forward(self, v):
        v = self.layer2(self.layer1(v)).flatten(1)
        return self.fc2(F.relu(self.fc1(F.relu(self.fc(v)))))


model = LeNet5BN()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
model.train()
order = train[torch.randperm(len(train))]
# One warm-up batch initializes the LSQ steps before the timed epoch.
model(x[order[: a.batch_size]])
t = time.perf_counter()
for b in range(0, len(order), a.batch_size):
    idx = order[b : b + a.batch_size]
    opt.zero_grad()
    F.cross_entropy(model(x[idx]), y[idx]).backward()
    opt.step()
dt = time.perf_counter() - t
print(f"torch {a.method} W{B}{'' if a.weights_only else f'A{B}'} lenet5-bn epoch: {dt:.2f} s ({len(order) / dt:.0f} ex/s, {a.threads} threads)")

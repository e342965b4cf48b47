#!/usr/bin/env python3
"""PyTorch CPU reference for crates/shrink-ir/benches/conv.rs.

Measures, with torch.set_num_threads(THREADS) (default 2):
  conv_fwd      conv2d forward, batch 256, 16->16, 3x3, pad 1, 32x32      (GFLOP/s)
  conv_fwd_bwd  the same conv, forward + backward (grad x and grad w)     (GFLOP/s, 3x fwd flops)
  resnet20      ResNet-20 (option-A shortcuts, BN eps 1e-5) train step,
                batch 128: forward, cross-entropy, backward, no optimizer  (samples/s)
Output: one `name value unit` line per benchmark (parsed by bench/run_conv_compare.sh).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ShortcutA(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=1e-5)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.shortcut = ShortcutA(planes) if (stride != 1 or cin != planes) else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, n=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-5)
        layers, cin = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                blocks.append(BasicBlock(cin, planes, stride))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.linear(x)


def timeit(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]  # median


def min_ms(fn, iters):
    fn()
    best = float("inf")
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def layers(iters):
    """Per-layer costs of a ResNet-20 step at batch 128 (mirrors `conv_probe layers`)."""
    bs = 128
    tf = tb = 0.0
    for ci, co, hw, s, cnt in [(3, 16, 32, 1, 1), (16, 16, 32, 1, 6), (16, 32, 32, 2, 1),
                               (32, 32, 16, 1, 5), (32, 64, 16, 2, 1), (64, 64, 8, 1, 5)]:
        x = torch.randn(bs, ci, hw, hw)
        w = (torch.randn(co, ci, 3, 3) * 0.1).requires_grad_(True)
        with torch.no_grad():
            f = min_ms(lambda: F.conv2d(x, w, stride=s, padding=1), iters)
        xg = x.clone().requires_grad_(ci != 3)

        def fb():
            w.grad = None
            xg.grad = None
            F.conv2d(xg, w, stride=s, padding=1).sum().backward()

        b = min_ms(fb, iters)
        oh = hw // s
        gf = 2.0 * bs * co * oh * oh * ci * 9 / 1e6
        print(f"conv {ci:>2}->{co:>2} @{hw:>2} s{s} x{cnt}: fwd {f:7.2f} ms ({gf / f:6.1f} GFLOP/s)  "
              f"fwd+bwd {b:7.2f} ms ({(2 if ci == 3 else 3) * gf / b:6.1f} GFLOP/s)")
        tf += f * cnt
        tb += b * cnt
    print(f"conv total per step: fwd {tf:.1f} ms, fwd+bwd {tb:.1f} ms")
    bf = bb = 0.0
    for c, hw, cnt in [(16, 32, 7), (32, 16, 6), (64, 8, 6)]:
        bn = torch.nn.BatchNorm2d(c).train()
        x = torch.randn(bs, c, hw, hw)
        with torch.no_grad():
            f = min_ms(lambda: bn(x), iters)
        xg = x.clone().requires_grad_(True)

        def fb():
            bn.zero_grad(set_to_none=True)
            xg.grad = None
            bn(xg).sum().backward()

        b = min_ms(fb, iters)

        def rl():
            xg.grad = None
            F.relu(xg).sum().backward()

        r = min_ms(rl, iters)

        def sm():
            xg.grad = None
            xg.sum().backward()

        sa = min_ms(sm, iters)
        print(f"bn {c:>2} @{hw:>2} x{cnt}: fwd {f:6.2f} ms  fwd+bwd {b:6.2f} ms | relu fwd+bwd {r:6.2f} ms | "
              f"sum+bwd alone {sa:6.2f} ms")
        bf += f * cnt
        bb += b * cnt
    print(f"bn total per step: fwd {bf:.1f} ms, fwd+bwd {bb:.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--only", default="", help="comma list of conv_fwd,conv_fwd_bwd,resnet20")
    ap.add_argument("--layers", action="store_true", help="per-layer ResNet-20 costs instead")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.layers:
        layers(a.iters)
        return
    only = set(a.only.split(",")) if a.only else {"conv_fwd", "conv_fwd_bwd", "resnet20"}

    n, c, o, h, w, k = 256, 16, 16, 32, 32, 3
    flops = 2.0 * n * o * h * w * c * k * k
    x = torch.randn(n, c, h, w)
    wt = torch.randn(o, c, k, k) * 0.1
    if "conv_fwd" in only:
        with torch.no_grad():
            t = timeit(lambda: F.conv2d(x, wt, padding=1), 3, a.iters)
        print(f"conv_fwd {flops / t / 1e9:.2f} GFLOP/s ({t * 1e3:.2f} ms)")
    if "conv_fwd_bwd" in only:
        xg = x.clone().requires_grad_(True)
        wg = wt.clone().requires_grad_(True)

        def step():
            xg.grad = None
            wg.grad = None
            F.conv2d(xg, wg, padding=1).sum().backward()

        t = timeit(step, 3, a.iters)
        print(f"conv_fwd_bwd {3 * flops / t / 1e9:.2f} GFLOP/s ({t * 1e3:.2f} ms)")
    if "resnet20" in only:
        model = ResNet(3).train()
        bs = 128
        xb = torch.randn(bs, 3, 32, 32)
        yb = torch.randint(0, 10, (bs,))

        def train_step():
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()

        t = timeit(train_step, 3, a.iters)
        print(f"resnet20 {bs / t:.1f} samples/s ({t * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()

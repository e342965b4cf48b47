#!/usr/bin/env python3
"""PyTorch side of `shrink bench`: same architectures, batch sizes and step counts.

Run by hand (needs `pip install torch`), e.g.
    python bench/torch_bench.py --arch simple-dnn --mode train --batch-size 128 --steps 30 --threads 2
Prints one JSON object: {"arch", "mode", "batch_size", "steps", "threads", "samples_per_sec", "ms_per_step"}.
"""
import argparse, json, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class SimpleDNN(nn.Module):
    def __init__(self, sizes=(784, 1568, 3136, 6272, 10)):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])

    def forward(self, x):
        x = x.flatten(1)
        for i, l in enumerate(self.layers):
            x = l(x)
            if i + 1 < len(self.layers):
                x = F.relu(x)
        return x


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or cin != planes) else 0

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad)) if self.pad else x
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(cin, planes, 2 if stage > 0 and b == 0 else 1))
                cin = planes
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(arch):
    if arch == "simple-dnn":
        return SimpleDNN(), (1, 28, 28)
    if arch == "lenet-300-100":
        return SimpleDNN((784, 300, 100, 10)), (1, 28, 28)
    if arch == "lenet5":
        return LeNet5(), (1, 28, 28)
    if arch.startswith("resnet"):
        return ResNet((int(arch[6:]) - 2) // 6), (3, 32, 32)
    raise SystemExit(f"unknown arch {arch}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="simple-dnn")
    p.add_argument("--mode", choices=["train", "eval"], default="train")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, shape = build(a.arch)
    x = torch.randn(a.batch_size, *shape)
    y = torch.randint(0, 10, (a.batch_size,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        if a.mode == "train":
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        else:
            model.eval()
            with torch.no_grad():
                model(x).argmax(1)

    for _ in range(a.warmup):
        step()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t
    print(json.dumps({
        "impl": "pytorch " + torch.__version__, "arch": a.arch, "mode": a.mode, "batch_size": a.batch_size,
        "steps": a.steps, "threads": a.threads, "samples_per_sec": a.batch_size * a.steps / dt,
        "ms_per_step": 1000 * dt / a.steps,
    }))


if __name__ == "__main__":
    main()

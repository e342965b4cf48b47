#!/usr/bin/env python3
"""PyTorch reference for `shrink prune` on the shared pretrained ResNets (issue 5 acceptance).

    /work/venv/bin/python bench/prune_resnet_torch.py [--model ../shared/models/resnet20-cifar10.safetensors]
        [--data ../shared/data/cifar10-jpeg.tar.gz] [--levels 0.3,0.5,0.7] [--shrink-dir runs/r20]

For each level it prunes every Conv2d/Linear weight with
  per-layer  seed 001 prune_by_percentage: |w| >= np.percentile(|w|, q)
  global     seed 001 global_prune_by_percentage: |w| > np.percentile(all |w|, q)
  torch-l1   torch.nn.utils.prune.l1_unstructured per layer (round(q·n) smallest)
  torch-glob torch.nn.utils.prune.global_unstructured(L1Unstructured)
and prints CIFAR-10 test accuracy (JPEG test images decoded with Pillow, normalized with the
models' mean/std). With --shrink-dir it also reads shrink's `eval --json` results
({magnitude,global-magnitude}-{q}-eval.json) and prints the differences in pp, and checks that
shrink's masks (from the pruned .safetensors) equal the NumPy masks.
"""
import argparse
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune
from PIL import Image
from safetensors.torch import load_file

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Block(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or cin != planes) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                stride = 2 if i > 0 and b == 0 else 1
                blocks.append(Block(cin, planes, stride))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def load_test(path):
    xs, ys = [], []
    with tarfile.open(path) as tf:
        for m in tf:
            parts = m.name.split("/")
            if not m.isfile() or len(parts) < 3 or parts[-3] != "test":
                continue
            img = Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")
            xs.append((np.asarray(img, dtype=np.float32) / 255.0 - MEAN) / STD)
            ys.append(CLASSES.index(parts[-2]))
    x = torch.from_numpy(np.stack(xs).transpose(0, 3, 1, 2).copy())
    return x, torch.tensor(ys)


def accuracy(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(x)


def prunable(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def fresh(state, n):
    m = ResNet(n)
    m.load_state_dict(state, strict=False)
    return m


def numpy_masks(model, q, mode):
    ws = {n: m.weight.detach().numpy() for n, m in prunable(model)}
    if mode == "global":
        thr = np.percentile(np.abs(np.concatenate([w.flatten() for w in ws.values()])), 100 * q)
        return {n: np.abs(w) > thr for n, w in ws.items()}
    return {n: np.abs(w) >= np.percentile(np.abs(w), 100 * q) for n, w in ws.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="../shared/models/resnet20-cifar10.safetensors")
    ap.add_argument("--data", default="../shared/data/cifar10-jpeg.tar.gz")
    ap.add_argument("--levels", default="0.3,0.5,0.7")
    ap.add_argument("--shrink-dir")
    args = ap.parse_args()
    torch.set_num_threads(2)
    state = load_file(args.model)
    n = (max(int(k.split(".")[1]) for k in state if k.startswith("layer1.")) + 1)
    x, y = load_test(args.data)
    print(f"dense: {100 * accuracy(fresh(state, n), x, y):.2f}%")
    rows = []
    for q in [float(v) for v in args.levels.split(",")]:
        row = {"q": q}
        for mode in ("layer", "global"):
            model = fresh(state, n)
            masks = numpy_masks(model, q, mode)
            with torch.no_grad():
                for name, m in prunable(model):
                    m.weight.mul_(torch.from_numpy(masks[name].astype(np.float32)))
            row[mode] = accuracy(model, x, y)
            if args.shrink_dir:
                method = "magnitude" if mode == "layer" else "global-magnitude"
                st = load_file(str(Path(args.shrink_dir) / f"{method}-{q}.safetensors"))
                diff = sum(int((st[f"{k}.weight_mask"].numpy() != masks[k]).sum()) for k in masks)
                row[f"{mode}_mask_diff"] = diff
        model = fresh(state, n)
        for _, m in prunable(model):
            tprune.l1_unstructured(m, "weight", amount=q)
        row["torch_l1"] = accuracy(model, x, y)
        model = fresh(state, n)
        tprune.global_unstructured([(m, "weight") for _, m in prunable(model)], tprune.L1Unstructured, amount=q)
        row["torch_global"] = accuracy(model, x, y)
        if args.shrink_dir:
            for mode, method in (("layer", "magnitude"), ("global", "global-magnitude")):
                r = json.load(open(Path(args.shrink_dir) / f"{method}-{q}-eval.json"))
                row[f"shrink_{mode}"] = r["accuracy"]
        rows.append(row)
        print(json.dumps(row))
    print("| sparsity | numpy per-layer | shrink magnitude | Δ | numpy global | shrink global-magnitude | Δ | torch l1_unstructured | torch global_unstructured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sl, sg = r.get("shrink_layer", float("nan")), r.get("shrink_global", float("nan"))
        print(f"| {r['q']:.0%} | {100*r['layer']:.2f} | {100*sl:.2f} | {100*(sl-r['layer']):+.2f} | {100*r['global']:.2f} | "
              f"{100*sg:.2f} | {100*(sg-r['global']):+.2f} | {100*r['torch_l1']:.2f} | {100*r['torch_global']:.2f} |")


if __name__ == "__main__":
    main()

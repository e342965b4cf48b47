#!/usr/bin/env python3
"""Round trip through PyTorch (issue 3): shrink loads MODEL (any format it reads), exports it
with `shrink export --format pt`, PyTorch loads that file with torch.load(weights_only=True)
into a CIFAR ResNet (option-A shortcuts) and the two predict the JPEG CIFAR-10 test set.

    /work/venv/bin/python tools/pt_compare.py /work/shared/models/resnet20-cifar10.onnx \
        --data /work/shared/data/cifar10-jpeg.tar.gz --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225

The JPEGs are decoded once with Pillow into a CIFAR-10 binary batch (as tools/onnx_compare.py
does), so shrink and PyTorch see identical pixels. The ResNet depth comes from the state_dict;
without BatchNorm keys (an ONNX export with BN folded) the convolutions carry biases instead.
Prints one JSON line: samples, agreement, both accuracies.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_compare import cifar_to_bin  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, planes, stride, bn):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(planes) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=not bn)
        self.bn2 = nn.BatchNorm2d(planes) if bn else nn.Identity()
        self.pad = planes // 4 if (stride != 1 or cin != planes) else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, n, bn):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(16) if bn else nn.Identity()
        cin, layers = 16, []
        for stage, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(n):
                blocks.append(Block(cin, planes, 2 if (stage > 0 and b == 0) else 1, bn))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet_from_state_dict(sd):
    n = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("layer1."))
    model = ResNet(n, bn="bn1.weight" in sd)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", required=True, help="CIFAR-10 .tar.gz with test/<class>/*.jpg")
    ap.add_argument("--shrink", default="target/release/shrink")
    ap.add_argument("--mean", required=True)
    ap.add_argument("--std", required=True)
    ap.add_argument("--work", default="runs/pt-compare")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    x, y = cifar_to_bin(args.data, work / "cifar-bin")
    pt = work / (Path(args.model).stem + ".pt")
    subprocess.check_call([args.shrink, "export", args.model, "--format", "pt", "-o", str(pt)])
    preds_path = work / "shrink-predictions.json"
    cmd = [args.shrink, "eval", args.model, "--data", str(work / "cifar-bin"), "--json",
           "--predictions", str(preds_path), "--mean", args.mean, "--std", args.std]
    r = json.loads(subprocess.check_output(cmd))
    shrink_pred = np.array(json.load(open(preds_path)))
    sd = torch.load(pt, map_location="cpu", weights_only=True)
    model = resnet_from_state_dict(sd)
    mean = torch.tensor([float(v) for v in args.mean.split(",")]).view(1, 3, 1, 1)
    std = torch.tensor([float(v) for v in args.std.split(",")]).view(1, 3, 1, 1)
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), 500):
            xb = (torch.from_numpy(x[i:i + 500]).float() / 255.0 - mean) / std
            preds.append(model(xb).argmax(1).numpy())
    torch_pred = np.concatenate(preds)
    print(json.dumps({
        "model": args.model,
        "samples": int(len(y)),
        "agreement": float((torch_pred == shrink_pred).mean()),
        "torch_accuracy": float((torch_pred == y).mean()),
        "shrink_accuracy": r["accuracy"],
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()

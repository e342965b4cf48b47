#!/usr/bin/env python3
"""Golden fixtures for the ONNX importer (crates/shrink-io/tests/onnx_import.rs).

    /work/venv/bin/python tools/onnx_golden.py [--shared /work/shared]

Writes, under crates/shrink-io/tests/fixtures/:
- onnx_golden_resnet.safetensors: 4 fixed CIFAR-shaped inputs and the logits onnxruntime gives
  for the shared resnet20-cifar10.onnx and resnet32-cifar10.onnx (the models themselves are
  not copied; the test skips when SHRINK_SHARED is unset).
- tiny_*.onnx + tiny_*.safetensors: small PyTorch models exported with the TorchScript exporter
  at several opsets, covering the patterns the importer folds or maps (x.view(x.size(0), -1)
  shape subgraphs, fixed batch dimension, BatchNorm1d, Dropout, trailing Softmax, clamp(min=0),
  MatMul + Add, unfolded BatchNorm2d, pooling, option-A shortcut F.pad(x[:, :, ::2, ::2])),
  with their input and onnxruntime output.
"""
import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parent.parent / "crates/shrink-io/tests/fixtures"


def ort_run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


class Mlp(nn.Module):
    """Flatten by view(size(0), -1), BatchNorm1d, Dropout, clamp(min=0), MatMul + Add, Softmax."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(48, 24)
        self.bn1 = nn.BatchNorm1d(24)
        self.drop = nn.Dropout(0.25)
        self.w2 = nn.Parameter(torch.randn(24, 16) * 0.2)
        self.b2 = nn.Parameter(torch.randn(16) * 0.1)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = F.relu(self.bn1(self.fc1(x)))
        x = self.drop(x)
        x = torch.clamp(x @ self.w2 + self.b2, min=0)
        return F.softmax(self.fc3(x), dim=1)


class Shortcut(nn.Module):
    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        p = self.planes // 4
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), "constant", 0)


class Cnn(nn.Module):
    """Conv + BatchNorm2d (kept unfolded), max/avg pooling, an option-A residual block."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.shortcut = Shortcut(16)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        y = self.conv3(F.relu(self.bn2(self.conv2(x))))
        x = F.relu(y + self.shortcut(x))
        x = self.avg(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def export(model, name, x, opset, dynamic, fold_bn=True):
    path = OUT / f"{name}.onnx"
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=opset, dynamo=False)
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if not fold_bn:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
        kwargs["do_constant_folding"] = False
    torch.onnx.export(model, (torch.from_numpy(x),), str(path), **kwargs)
    y = ort_run(path, x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).max() < 1e-4, (name, np.abs(y - ref).max())
    save_file({"input": x, "output": y}, str(OUT / f"{name}.safetensors"))
    print(f"{name}: opset {opset}, {path.stat().st_size} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)

    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    golden = {"input": x}
    for n in (20, 32):
        golden[f"logits_resnet{n}"] = ort_run(Path(args.shared) / f"models/resnet{n}-cifar10.onnx", x)
    save_file(golden, str(OUT / "onnx_golden_resnet.safetensors"))
    print("onnx_golden_resnet.safetensors written")

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    mlp = Mlp()
    randomize_bn(mlp, g)
    mlp.eval()
    xm = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    # Fixed batch of 2 at opset 9 (attribute forms of Dropout/Clip; the batch baked in).
    export(mlp, "tiny_mlp_opset9", xm, 9, dynamic=False)
    export(mlp, "tiny_mlp_opset13", xm, 13, dynamic=True)

    torch.manual_seed(1)
    cnn = Cnn()
    randomize_bn(cnn, g)
    cnn.eval()
    xc = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
    export(cnn, "tiny_cnn_opset11", xc, 11, dynamic=True)
    export(cnn, "tiny_cnn_opset17_bn", xc, 17, dynamic=True, fold_bn=False)


if __name__ == "__main__":
    main()

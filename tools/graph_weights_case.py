#!/usr/bin/env python3
"""Fixture of crates/shrink-io/tests/graph_weights.rs: a PyTorch state_dict loaded into an
imported ONNX graph (`--graph M.onnx`).

    /work/venv/bin/python tools/graph_weights_case.py

Writes under crates/shrink-io/tests/fixtures/graph_weights/:
- net.onnx: a small CNN (Conv + BatchNorm + ReLU, a residual Add, pooling, Linear) exported by
  the TorchScript exporter with do_constant_folding=False and TrainingMode.PRESERVE, so the
  initializers keep the state_dict's names, with weights A;
- net_folded.onnx: the same model exported the default way (BatchNorm folded into the convs);
- weights.pt: torch.save of a state_dict with other random weights B;
- io.safetensors: an input `x` and PyTorch's output `y` for weights B;
and under crates/shrink-cli/tests/fixtures/graph_weights/ (crates/shrink-cli/tests/cli_graph.rs),
an MNIST-shaped MLP with BatchNorm1d: mlp.onnx (weights A, not folded), mlp_b.pt (weights B)
and mlp_b.onnx (weights B, the reference `--graph mlp.onnx mlp_b.pt` must equal).
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from onnx_cases import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "crates/shrink-io/tests/fixtures/graph_weights")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(y + self.bn2(self.conv2(y)))
        y = F.max_pool2d(y, 2)
        return self.fc(torch.flatten(y, 1))


CLI_OUT = os.path.join(os.path.dirname(__file__), "..", "crates/shrink-cli/tests/fixtures/graph_weights")


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 8)
        self.bn1 = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.bn1(self.fc1(torch.flatten(x, 1)))))


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def export(model, path, x, fold):
    kw = dict(input_names=["x"], output_names=["y"], opset_version=13, dynamo=False,
              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    if not fold:
        kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(model, (x,), path, **kw)


def main():
    os.makedirs(OUT, exist_ok=True)
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32))
    a = randomize(Net(), 1)
    export(a, os.path.join(OUT, "net.onnx"), x, fold=False)
    export(a, os.path.join(OUT, "net_folded.onnx"), x, fold=True)
    b = randomize(Net(), 2)
    torch.save(b.state_dict(), os.path.join(OUT, "weights.pt"))
    with torch.no_grad():
        y = b(x).numpy()
    write_safetensors(os.path.join(OUT, "io.safetensors"), {"x": x.numpy(), "y": y})
    print("written to", os.path.normpath(OUT))
    os.makedirs(CLI_OUT, exist_ok=True)
    xm = torch.zeros(2, 1, 28, 28)
    export(randomize(Mlp(), 3), os.path.join(CLI_OUT, "mlp.onnx"), xm, fold=False)
    mb = randomize(Mlp(), 4)
    export(mb, os.path.join(CLI_OUT, "mlp_b.onnx"), xm, fold=False)
    torch.save(mb.state_dict(), os.path.join(CLI_OUT, "mlp_b.pt"))
    print("written to", os.path.normpath(CLI_OUT))


if __name__ == "__main__":
    main()

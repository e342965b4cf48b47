#!/usr/bin/env python3
"""Golden fixture for shrink's activation quantization, computed with torch.

Run by hand (CI never runs Python), from the repository root:

    /work/venv/bin/python tools/golden_act_quant.py

It writes fixtures/golden/act_quant.safetensors, read by
crates/shrink-compress/tests/act_quant_golden.rs.

Model: LeNet-5 as in shrink's zoo (conv1 6@5x5 pad 2, relu1, pool1, conv2 16@5x5, relu2, pool2,
flatten, fc1 120, relu3, fc2 84, relu4, fc3 10) with seeded random weights. The quantized points
are the inputs of every conv/linear layer: the graph input (signed) and relu1..relu4 (unsigned;
max pooling commutes with a monotone quantizer, so quantizing relu1 is quantizing conv2's input).

Calibration on `calib` (fp32 activations, one pass):
  minmax:  lo = min(x) if min(x) < 0 else 0, hi = max(x)
  p99:     hi = torch.quantile(x, 0.99) (numpy's linear interpolation), lo = 0 for unsigned
           points, torch.quantile(x, 0.01) for signed ones
Fake quant at b bits: steps = 2**b - 1, scale = (hi - lo)/steps,
  xq = clamp(round((x - lo)/scale), 0, steps)*scale + lo   (round = half to even)

Keys: weights under their PyTorch names, `calib`, `x`, `range/<method>/<point>` = [lo, hi],
`logits/<method>/b<bits>` = the fake-quant forward of `x`.
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
POINTS = ["input", "relu1", "relu2", "relu3", "relu4"]


def lenet5_weights():
    shapes = {
        "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
        "fc1.weight": (120, 400), "fc1.bias": (120,),
        "fc2.weight": (84, 120), "fc2.bias": (84,),
        "fc3.weight": (10, 84), "fc3.bias": (10,),
    }
    out = {}
    for k, s in shapes.items():
        fan_in = s[1] * (s[2] * s[3] if len(s) == 4 else 1) if len(s) > 1 else 10
        out[k] = (torch.rand(s) * 2 - 1) / fan_in**0.5
    return out


def forward(w, x, hook):
    """LeNet-5 forward; `hook(name, t)` may replace each point's tensor."""
    x = hook("input", x)
    x = hook("relu1", F.relu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"], padding=2)))
    x = F.max_pool2d(x, 2)
    x = hook("relu2", F.relu(F.conv2d(x, w["conv2.weight"], w["conv2.bias"])))
    x = F.max_pool2d(x, 2).flatten(1)
    x = hook("relu3", F.relu(F.linear(x, w["fc1.weight"], w["fc1.bias"])))
    x = hook("relu4", F.relu(F.linear(x, w["fc2.weight"], w["fc2.bias"])))
    return F.linear(x, w["fc3.weight"], w["fc3.bias"])


def ranges(w, calib, method):
    seen = {}

    def grab(name, t):
        seen[name] = t.flatten()
        return t

    forward(w, calib, grab)
    out = {}
    for name, t in seen.items():
        unsigned = bool(t.min() >= 0)
        if method == "minmax":
            lo = torch.tensor(0.0) if unsigned else t.min()
            hi = t.max()
        else:
            hi = torch.quantile(t.double(), 0.99).float().clamp(min=0)
            lo = torch.tensor(0.0) if unsigned else torch.quantile(t.double(), 0.01).float().clamp(max=0)
        out[name] = (lo.float(), hi.float())
    return out


def fake_quant(t, lo, hi, bits):
    steps = float(2**bits - 1)
    scale = (hi - lo) / steps
    return torch.clamp(torch.round((t - lo) / scale), 0, steps) * scale + lo


def main():
    w = lenet5_weights()
    calib = torch.randn(32, 1, 28, 28)
    x = torch.randn(8, 1, 28, 28)
    out = dict(w)
    out["calib"] = calib
    out["x"] = x
    for method in ["minmax", "p99"]:
        r = ranges(w, calib, method)
        for name, (lo, hi) in r.items():
            out[f"range/{method}/{name}"] = torch.stack([lo, hi])
        for bits in [2, 4, 8]:
            logits = forward(w, x, lambda n, t: fake_quant(t, r[n][0], r[n][1], bits))
            out[f"logits/{method}/b{bits}"] = logits
    out = {k: v.contiguous().float() for k, v in out.items()}
    save_file(out, "fixtures/golden/act_quant.safetensors")
    print(f"wrote fixtures/golden/act_quant.safetensors ({len(out)} tensors)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Golden fixture for shrink's weight quantizers: the labs' formulas applied with torch.

Run by hand (CI never runs Python), from the repository root:

    /work/venv/bin/python tools/golden_quant.py

It writes fixtures/golden/quant.safetensors, read by crates/shrink-compress/tests/quant_golden.rs.

Keys
----
  input/<name>                           float32 input tensors (2-D, rows = output channels)
  clip/<name>/b<l>/q<q>                  MNIST lab: N = 2**l, delta = 2*q/N (q a Python float),
                                         torch.clip(delta*torch.round(w/delta), -q, q-delta)
  symmetric/<name>/b<b>[/pc]             ResNet lab 3(e): alpha = max|w|, s = 2**(b-1)-1,
                                         round(w/alpha*s)/s*alpha + 0, zeros kept zero
  asymmetric/<name>/b<b>[/pc]            ResNet lab 3(a): alpha = max-min, beta = min,
                                         step = 2**b-1, round((w-beta)/alpha*step)/step*alpha+beta,
                                         zeros kept zero (the lab's STE mask w == 0)

`/pc` = per output channel: the same formula on every row separately (alpha/beta per row).
Inputs include exact .5 ties of w/delta and w/alpha*s to exercise round-half-to-even.
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)


def clip_q(w, l, q):
    N = 2**l
    delta = 2 * q / N
    return torch.clip(delta * torch.round(w / delta), -q, q - delta)


def symmetric(w, bit):
    # Lab 3 (e), verbatim apart from the per-row reduction used for per-channel.
    weight_mask = torch.where(w == 0, torch.tensor(0.0), torch.tensor(1.0))
    alpha = torch.max(torch.abs(w))
    beta = 0
    ws = (w - beta) / alpha
    step = 2 ** (bit - 1) - 1
    R = torch.round(ws * step) / step
    wq = R * alpha + beta
    return wq * weight_mask


def asymmetric(w, bit):
    # Lab 3 (a), verbatim.
    weight_mask = torch.where(w == 0, torch.tensor(0.0), torch.tensor(1.0))
    alpha = torch.max(w) - torch.min(w)
    beta = torch.min(w)
    ws = (w - beta) / alpha
    step = 2 ** (bit) - 1
    R = torch.round(ws * step) / step
    wq = R * alpha + beta
    return wq * weight_mask


def per_row(f, w, bit):
    return torch.stack([f(w[i], bit) for i in range(w.shape[0])])


inputs = {
    # Plain weights, like a small linear layer.
    "random": (torch.randn(16, 9) * 0.3).float(),
    # w/delta = k + 0.5 exactly for delta = 1/8 (q = 1, l = 4) and delta = 1/4 (q = 1, l = 3);
    # also values beyond +-q to exercise the clip.
    "ties_clip": ((torch.arange(-24, 24, dtype=torch.float32) + 0.5) * 0.125).reshape(6, 8),
    # max|w| = 7 in every row: w/alpha*s = w for b = 4 (s = 7), so k + 0.5 are exact ties.
    "ties_sym": torch.cat(
        [torch.arange(-7, 7, dtype=torch.float32) + 0.5, torch.tensor([7.0, -7.0])]
    ).repeat(4, 1),
    # Pruned weights: a quarter exactly zero, all rows with both signs.
    "pruned": torch.where(torch.rand(8, 12) < 0.25, 0.0, torch.randn(8, 12)).float(),
}

out = {}
for name, w in inputs.items():
    out[f"input/{name}"] = w.contiguous()
    qs = [0.5, 0.8, 1.0, 1.2, 1.5, 1.7, 2.0] if name == "random" else [1.0]
    for l in [1, 2, 3, 4, 8, 12, 16]:
        for q in qs:
            out[f"clip/{name}/b{l}/q{q}"] = clip_q(w, l, q).contiguous()
    for b in [2, 3, 4, 5, 6, 8, 12, 16]:
        out[f"symmetric/{name}/b{b}"] = symmetric(w, b).contiguous()
        out[f"symmetric/{name}/b{b}/pc"] = per_row(symmetric, w, b).contiguous()
    for b in [1, 2, 3, 4, 5, 6, 8, 12, 16]:
        out[f"asymmetric/{name}/b{b}"] = asymmetric(w, b).contiguous()
        out[f"asymmetric/{name}/b{b}/pc"] = per_row(asymmetric, w, b).contiguous()

meta = {"generator": "tools/golden_quant.py", "torch": torch.__version__, "seed": "0"}
save_file(out, "fixtures/golden/quant.safetensors", metadata=meta)
print(f"wrote {len(out)} tensors to fixtures/golden/quant.safetensors")

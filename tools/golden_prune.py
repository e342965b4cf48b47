#!/usr/bin/env python3
"""Golden fixtures for shrink's pruning passes (run by hand; CI never runs Python):

    /work/venv/bin/python tools/golden_prune.py

Writes fixtures/golden/prune.safetensors, read by crates/shrink-compress/tests/prune_golden.rs:

  mlp.*            a 30-24-18-12-10 MLP (fc1..fc4), input `mlp.x`, and for p in P_MLP the
                   weights after the MNIST lab's (seed 000) `prune_model(model, p)` plus logits
  cnn.*            conv(3→8)-bn-relu-conv(8→12)-bn-relu-gap-linear(12→10), input `cnn.x`;
                   for each (method, amount): kept filter indices of conv1/conv2 and the eval
                   logits of the physically smaller network built from them
                     ln{n}.{a}   torch.nn.utils.prune.ln_structured(n, dim=0, amount=a) per conv
                     chan.{a}    seed 002 channel importance (next layer's input-slice norm),
                                 keep int(round((1 - a)·n)) most important
  mask.*           unstructured masks of the cnn's conv/linear weights for q in Q:
                     pct.{q}     seed 001 prune_by_percentage: |w| >= np.percentile(|w|, q)
                     glob.{q}    seed 001 global_prune_by_percentage: |w| > global percentile
                     exact.{q}   seed 002 fine_grained_prune: round(n·s) zeros via kthvalue, keep >
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "golden" / "prune.safetensors"
P_MLP = [0.2, 0.5, 0.9]
AMOUNTS = [0.3, 0.5]
Q = [30, 50, 70]

torch.manual_seed(0)
fx = {}


# ----- seed 000 structured neuron pruning ------------------------------------------------------
def prune_layer(wa, ba, wb, ratio):
    scores = torch.norm(wa, 2, dim=1)
    k = int(scores.numel() * ratio)
    threshold, _ = torch.kthvalue(scores, k)
    cond = scores >= threshold
    return wa[cond], ba[cond], wb[:, cond]


sizes = [30, 24, 18, 12, 10]
mlp = {f"fc{i+1}": nn.Linear(sizes[i], sizes[i + 1]) for i in range(4)}
x = torch.randn(8, 30)
fx["mlp.x"] = x
for name, m in mlp.items():
    fx[f"mlp.{name}.weight"] = m.weight.detach().clone()
    fx[f"mlp.{name}.bias"] = m.bias.detach().clone()
for p in P_MLP:
    w = [mlp[f"fc{i+1}"].weight.detach() for i in range(4)]
    b = [mlp[f"fc{i+1}"].bias.detach() for i in range(4)]
    for i in range(3):
        w[i], b[i], w[i + 1] = prune_layer(w[i], b[i], w[i + 1], p)
    h = x
    for i in range(4):
        h = F.linear(h, w[i], b[i])
        if i < 3:
            h = F.relu(h)
    for i in range(4):
        fx[f"mlp.p{p}.fc{i+1}.weight"] = w[i].contiguous()
        fx[f"mlp.p{p}.fc{i+1}.bias"] = b[i].contiguous()
    fx[f"mlp.p{p}.logits"] = h

# ----- conv filters --------------------------------------------------------------------------
conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
bn1 = nn.BatchNorm2d(8)
conv2 = nn.Conv2d(8, 12, 3, padding=1, bias=False)
bn2 = nn.BatchNorm2d(12)
linear = nn.Linear(12, 10)
for bn in (bn1, bn2):
    c = bn.num_features
    bn.weight.data = 1 + 0.2 * torch.randn(c)
    bn.bias.data = 0.1 * torch.randn(c)
    bn.running_mean.data = 0.1 * torch.randn(c)
    bn.running_var.data = 1 + 0.5 * torch.rand(c)
params = {
    "conv1.weight": conv1.weight,
    "bn1.weight": bn1.weight, "bn1.bias": bn1.bias,
    "bn1.running_mean": bn1.running_mean, "bn1.running_var": bn1.running_var,
    "conv2.weight": conv2.weight,
    "bn2.weight": bn2.weight, "bn2.bias": bn2.bias,
    "bn2.running_mean": bn2.running_mean, "bn2.running_var": bn2.running_var,
    "linear.weight": linear.weight, "linear.bias": linear.bias,
}
for k, v in params.items():
    fx[f"cnn.{k}"] = v.detach().clone()
xc = torch.randn(4, 3, 8, 8)
fx["cnn.x"] = xc


def bn_eval(h, pre, keep):
    return F.batch_norm(h, params[f"{pre}.running_mean"][keep], params[f"{pre}.running_var"][keep],
                        params[f"{pre}.weight"][keep], params[f"{pre}.bias"][keep], False, 0.0, 1e-5)


def small_logits(k1, k2):
    with torch.no_grad():
        w1 = params["conv1.weight"][k1]
        w2 = params["conv2.weight"][k2][:, k1]
        h = F.relu(bn_eval(F.conv2d(xc, w1, padding=1), "bn1", k1))
        h = F.relu(bn_eval(F.conv2d(h, w2, padding=1), "bn2", k2))
        h = h.mean((2, 3))
        return F.linear(h, params["linear.weight"][:, k2], params["linear.bias"])


def kept(mask):
    return torch.nonzero(mask.flatten(1).abs().sum(1) > 0).flatten()


for n in (1, 2):
    for a in AMOUNTS:
        ks = []
        for conv in (conv1, conv2):
            c = nn.Conv2d(conv.in_channels, conv.out_channels, 3, bias=False)
            c.weight.data = conv.weight.detach().clone()
            tprune.ln_structured(c, "weight", amount=a, n=n, dim=0)
            ks.append(kept(c.weight_mask))
        fx[f"cnn.ln{n}.{a}.keep1"] = ks[0].float()
        fx[f"cnn.ln{n}.{a}.keep2"] = ks[1].float()
        fx[f"cnn.ln{n}.{a}.logits"] = small_logits(ks[0], ks[1])

for a in AMOUNTS:
    def keep_by_input(next_w, n):
        imp = torch.stack([torch.norm(next_w[:, i]) for i in range(next_w.shape[1])])
        order = torch.argsort(imp, descending=True)
        k = int(round((1 - a) * n))
        return torch.sort(order[:k]).values
    k1 = keep_by_input(params["conv2.weight"].detach(), 8)
    k2 = keep_by_input(params["linear.weight"].detach(), 12)
    fx[f"cnn.chan.{a}.keep1"] = k1.float()
    fx[f"cnn.chan.{a}.keep2"] = k2.float()
    fx[f"cnn.chan.{a}.logits"] = small_logits(k1, k2)

# ----- unstructured masks --------------------------------------------------------------------
weights = {k: params[k].detach().numpy() for k in ("conv1.weight", "conv2.weight", "linear.weight")}
flat = np.concatenate([np.abs(w).flatten() for w in weights.values()])
for q in Q:
    thr = np.percentile(flat, q)
    for k, w in weights.items():
        fx[f"mask.pct.{q}.{k}"] = torch.from_numpy((np.abs(w) >= np.percentile(np.abs(w), q)).astype(np.float32))
        fx[f"mask.glob.{q}.{k}"] = torch.from_numpy((np.abs(w) > thr).astype(np.float32))
        t = torch.from_numpy(w)
        imp = t.abs()
        num_zeros = round(t.numel() * q / 100.0)
        th = torch.kthvalue(imp.flatten(), num_zeros)[0]
        fx[f"mask.exact.{q}.{k}"] = (imp > th).float()

OUT.parent.mkdir(parents=True, exist_ok=True)
save_file({k: v.detach().clone().contiguous().float() for k, v in fx.items()}, str(OUT),
          metadata={"torch": torch.__version__, "numpy": np.__version__})
print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(fx)} tensors)")

#!/usr/bin/env python3
"""Golden fixture for QAT: one STE step, one LSQ step (step-size gradients included) and the
knowledge-distillation loss, computed by PyTorch; read by crates/shrink-train/tests/qat_golden.rs.

Run by hand (CI needs no Python):
    python tools/qat_golden.py > crates/shrink-train/tests/fixtures/qat_golden.json

The network: input [N, 4] -> fc1 Linear(4, 3) -> relu1 -> fc2 Linear(3, 2), cross-entropy.
"""
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
g = torch.Generator().manual_seed(1234)
N = 6
x = torch.randn(N, 4, generator=g)
y = torch.randint(0, 2, (N,), generator=g)
w1 = torch.randn(3, 4, generator=g) * 0.6
b1 = torch.randn(3, generator=g) * 0.1
w2 = torch.randn(2, 3, generator=g) * 0.6
b2 = torch.randn(2, generator=g) * 0.1
# fc1's largest magnitude is positive: the clip grid has no code for +q, so that weight is
# clamped and its straight-through gradient must be zero.
w1.view(-1)[w1.abs().argmax()] = w1.abs().max()


def leaf(t):
    return t.clone().requires_grad_(True)


def ste(v, out, inside):
    """out forward; identity gradient where `inside`, zero elsewhere (torch.fake_quantize_*)."""
    vs = torch.where(inside, v, v.detach())
    return (out - vs).detach() + vs


def clip_fq(w, bits):
    """The MNIST lab's clip quantizer at q = max|w| in its affine form, with STE."""
    n = 2 ** bits
    q = float(w.detach().abs().max())
    delta = float(np.float32(2.0 * q / n))
    qmin, qmax = -n / 2, n / 2 - 1
    r = torch.round(w.detach() / delta)
    out = torch.clamp(r, qmin, qmax) * delta + 0.0
    return ste(w, out, (r >= qmin) & (r <= qmax))


def act_fq(a, bits):
    """Per-tensor asymmetric activation fake-quant, range [min(0, min a), max(0, max a)]."""
    lo = min(0.0, float(a.detach().min()))
    hi = max(0.0, float(a.detach().max()))
    steps = 2 ** bits - 1
    scale = float(np.float32(np.float32(hi) - np.float32(lo)) / np.float32(steps))
    r = torch.round((a.detach() - lo) / scale)
    out = torch.clamp(r, 0, steps) * scale + lo
    return ste(a, out, (r >= 0) & (r <= steps))


def ste_case():
    p = {k: leaf(v) for k, v in dict(w1=w1, b1=b1, w2=w2, b2=b2).items()}
    h = F.relu(F.linear(x, clip_fq(p["w1"], 3), p["b1"]))
    h = act_fq(h, 4)
    z = F.linear(h, clip_fq(p["w2"], 3), p["b2"])
    loss = F.cross_entropy(z, y)
    loss.backward()
    lr = 0.1
    return {
        "loss": loss.item(),
        "grads": {k: v.grad.flatten().tolist() for k, v in p.items()},
        "updated": {k: (v.detach() - lr * v.grad).flatten().tolist() for k, v in p.items()},
    }


def grad_scale(s, g):
    sg = s * g
    return (sg - sg.detach()) + s.detach()


def round_pass(v):
    return (torch.round(v) - v).detach() + v


def lsq(v, s, qn, qp, n, per_channel):
    s = grad_scale(s, 1.0 / math.sqrt(n * qp))
    if per_channel:
        s = s.reshape(-1, *([1] * (v.dim() - 1)))
    return round_pass(torch.clamp(v / s, -qn, qp)) * s


def lsq_case():
    wb, ab = 3, 3
    qn, qp = 2 ** (wb - 1), 2 ** (wb - 1) - 1
    aqp = 2 ** ab - 1
    p = {k: leaf(v) for k, v in dict(w1=w1, b1=b1, w2=w2, b2=b2).items()}
    s1 = leaf(2 * w1.abs().mean(dim=1) / math.sqrt(qp))
    s2 = leaf(2 * w2.abs().mean(dim=1) / math.sqrt(qp))
    h = F.relu(F.linear(x, lsq(p["w1"], s1, qn, qp, 4, True), p["b1"]))
    sa = leaf((2 * h.detach().abs().mean() / math.sqrt(aqp)).reshape(1))
    init = {"w1": s1.tolist(), "w2": s2.tolist(), "a": sa.tolist()}
    h = lsq(h, sa, 0, aqp, 3, False)
    z = F.linear(h, lsq(p["w2"], s2, qn, qp, 3, True), p["b2"])
    loss = F.cross_entropy(z, y)
    loss.backward()
    grads = {k: v.grad.flatten().tolist() for k, v in p.items()}
    grads.update({"s_w1": s1.grad.tolist(), "s_w2": s2.grad.tolist(), "s_a": sa.grad.tolist()})
    return {"loss": loss.item(), "init_steps": init, "grads": grads}


def kd_case():
    gk = torch.Generator().manual_seed(7)
    zs = (torch.randn(5, 4, generator=gk) * 2).requires_grad_(True)
    zt = torch.randn(5, 4, generator=gk) * 2
    labels = torch.randint(0, 4, (5,), generator=gk)
    alpha, t = 0.7, 3.0
    kl = F.kl_div(F.log_softmax(zs / t, 1), F.softmax(zt / t, 1), reduction="batchmean")
    loss = alpha * t * t * kl + (1 - alpha) * F.cross_entropy(zs, labels)
    loss.backward()
    return {
        "student": zs.detach().flatten().tolist(),
        "teacher": zt.flatten().tolist(),
        "labels": labels.tolist(),
        "alpha": alpha,
        "temperature": t,
        "loss": loss.item(),
        "grad": zs.grad.flatten().tolist(),
    }


print(json.dumps({
    "torch": torch.__version__,
    "x": x.flatten().tolist(),
    "y": y.tolist(),
    "params": {"w1": w1.flatten().tolist(), "b1": b1.tolist(), "w2": w2.flatten().tolist(), "b2": b2.tolist()},
    "ste": ste_case(),
    "lsq": lsq_case(),
    "kd": kd_case(),
}, indent=1))

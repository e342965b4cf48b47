#!/usr/bin/env python3
"""Golden fixtures for shrink's per-iteration learning-rate schedules and AGP pruning schedule
(run by hand; CI never runs Python):

    /work/venv/bin/python tools/golden_schedules.py

Writes crates/shrink-train/tests/fixtures/schedules.json, read by
crates/shrink-train/tests/golden_schedules.rs:

  lr.<name>   the learning rate PyTorch's scheduler gives each of `steps` iterations (read from
              the optimizer before each `optimizer.step()`, the scheduler stepped after it):
                cosine      CosineAnnealingLR(T_max=steps, eta_min=0.001)
                step_iter   StepLR(step_size=7, gamma=0.5)
                one_cycle   OneCycleLR(max_lr=0.1, total_steps=steps, pct_start=0.3,
                            anneal_strategy="cos", cycle_momentum=False, div_factor=25,
                            final_div_factor=1e4)
                warmup      LambdaLR with transformers' get_cosine_schedule_with_warmup
                            (10 warmup steps)
  agp.<case>  AGP's target sparsity at every pruning step, from Distiller's
              AutomatedGradualPrunerBase.compute_target_sparsity (epochs read as iterations):
              starting at t0, ending before t_end, every `freq` iterations.
"""
import json
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/shrink-train/tests/fixtures/schedules.json"
BASE = 0.1
STEPS = 50


def rates(make):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE, momentum=0.9)
    sched = make(opt)
    out = []
    for _ in range(STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def hf_cosine_with_warmup(warmup, total):
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return f


def distiller_agp(initial, final, starting, current, ending, freq):
    # distiller/pruning/automated_gradual_pruner.py, compute_target_sparsity
    ending -= freq
    span = ((ending - starting - 1) // freq + 1) * freq
    assert span > 0
    return final + (initial - final) * (1.0 - ((current - starting) / span)) ** 3


def agp_case(initial, final, t0, t_end, freq):
    return {
        "initial": initial, "final": final, "t0": t0, "t_end": t_end, "every": freq,
        "steps": list(range(t0, t_end, freq)),
        "sparsity": [distiller_agp(initial, final, t0, t, t_end, freq) for t in range(t0, t_end, freq)],
    }


def main():
    lr = {
        "steps": STEPS,
        "base": BASE,
        "cosine": rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=0.001)),
        "step_iter": rates(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
        "one_cycle": rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=BASE, total_steps=STEPS, pct_start=0.3, anneal_strategy="cos",
            cycle_momentum=False, div_factor=25.0, final_div_factor=1e4)),
        "warmup": rates(lambda o: torch.optim.lr_scheduler.LambdaLR(o, hf_cosine_with_warmup(10, STEPS))),
    }
    agp = {
        "epochs_10_freq_2": agp_case(0.0, 0.7, 0, 10, 2),
        "steps_1000_every_50": agp_case(0.0, 0.7, 100, 1100, 50),
        "uneven_every_3": agp_case(0.05, 0.9, 4, 41, 3),
        "every_step": agp_case(0.0, 0.5, 0, 20, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "lr": lr, "agp": agp}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

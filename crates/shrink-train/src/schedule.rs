//! Learning-rate schedules. `Cosine` anneals every iteration over the whole run (PyTorch's
//! `CosineAnnealingLR(T_max = total iterations)` stepped after every batch, what PyTorch users
//! expect, so even a one-epoch fine-tune anneals); `CosineEpoch` and `Step` change the rate once
//! per epoch (`CosineAnnealingLR(T_max = epochs)` / `StepLR` stepped after every epoch). An
//! optional linear warmup multiplies any of them by `step / warmup` over the first iterations,
//! and then the cosine runs over the remaining ones (as `get_cosine_schedule_with_warmup` of
//! Hugging Face transformers). `StepIter` is `StepLR` stepped after every batch, and
//! `OneCycle` is `OneCycleLR` (cosine annealing, two phases, the base rate as `max_lr`; the
//! momentum stays fixed, as with `cycle_momentum=False`).
use serde::{Deserialize, Serialize};

/// How the learning rate changes during a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over every iteration of the run.
    Cosine {
        min_lr: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over `total_epochs`, changed per epoch.
    CosineEpoch {
        total_epochs: usize,
        min_lr: f64,
    },
    /// Multiply by `gamma` every `step_size` iterations (`StepLR` stepped per batch).
    StepIter {
        step_size: u64,
        gamma: f64,
    },
    /// PyTorch's `OneCycleLR(max_lr=base, total_steps=run, pct_start, div_factor,
    /// final_div_factor, anneal_strategy="cos", three_phase=False)`: from `base/div_factor` up to
    /// `base` over the first `pct_start` of the iterations, then down to
    /// `base/(div_factor·final_div_factor)`, both halves cosine.
    OneCycle {
        pct_start: f64,
        div_factor: f64,
        final_div_factor: f64,
    },
}

/// Where a run is when a rate is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based iteration over the whole run (the one about to be taken).
    pub step: u64,
    /// Iterations in the whole run.
    pub total_steps: u64,
    /// Linear warmup iterations (0: none).
    pub warmup_steps: u64,
}

/// `OneCycleLR._annealing_cos`.
fn anneal_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

/// `OneCycleLR.get_lr` (two phases) at iteration `step` of `total`.
fn one_cycle(max_lr: f64, pct_start: f64, div: f64, final_div: f64, step: u64, total: u64) -> f64 {
    let initial = max_lr / div;
    let min_lr = initial / final_div;
    let end1 = pct_start * total as f64 - 1.0;
    let end2 = total as f64 - 1.0;
    let t = step as f64;
    if t <= end1 && end1 > 0.0 {
        anneal_cos(initial, max_lr, t / end1)
    } else {
        let start = end1.max(0.0);
        anneal_cos(max_lr, min_lr, ((t - start) / (end2 - start).max(1e-12)).min(1.0))
    }
}

fn cosine(base: f64, min_lr: f64, t: f64) -> f64 {
    min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos()) / 2.0
}

impl Schedule {
    /// Learning rate for 0-based `epoch` of a per-epoch schedule (`Cosine` is evaluated at the
    /// epoch's first iteration as if each epoch were one iteration).
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant
            | Schedule::Cosine { .. }
            | Schedule::StepIter { .. }
            | Schedule::OneCycle { .. } => base,
            Schedule::Step { step_size, gamma } => base * gamma.powi((epoch / step_size.max(1)) as i32),
            Schedule::CosineEpoch { total_epochs, min_lr } => {
                cosine(base, min_lr, epoch.min(total_epochs) as f64 / total_epochs.max(1) as f64)
            }
        }
    }

    /// Learning rate for the iteration at `at`, warmup included.
    pub fn lr_at(&self, base: f64, at: Position) -> f64 {
        let warm = at.warmup_steps;
        let rate = match *self {
            Schedule::Cosine { min_lr } => {
                let span = at.total_steps.saturating_sub(warm).max(1);
                cosine(base, min_lr, at.step.saturating_sub(warm) as f64 / span as f64)
            }
            Schedule::StepIter { step_size, gamma } => base * gamma.powi((at.step / step_size.max(1)) as i32),
            Schedule::OneCycle { pct_start, div_factor, final_div_factor } => {
                one_cycle(base, pct_start, div_factor, final_div_factor, at.step, at.total_steps)
            }
            _ => self.lr(base, at.epoch),
        };
        if at.step < warm {
            rate * at.step as f64 / warm as f64
        } else {
            rate
        }
    }

    /// Whether the rate can change within an epoch (then it is set before every iteration).
    pub fn per_iteration(&self, warmup_steps: u64) -> bool {
        matches!(self, Schedule::Cosine { .. } | Schedule::StepIter { .. } | Schedule::OneCycle { .. })
            || warmup_steps > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: u64, total_steps: u64, warmup_steps: u64) -> Position {
        Position { epoch: 0, step, total_steps, warmup_steps }
    }

    #[test]
    fn step_and_cosine_epoch_match_pytorch_formulas() {
        let s = Schedule::Step { step_size: 2, gamma: 0.1 };
        assert_eq!(s.lr(1.0, 1), 1.0);
        assert!((s.lr(1.0, 2) - 0.1).abs() < 1e-12);
        let c = Schedule::CosineEpoch { total_epochs: 10, min_lr: 0.0 };
        assert!((c.lr(0.1, 5) - 0.05).abs() < 1e-12);
        assert!(c.lr(0.1, 10).abs() < 1e-12);
    }

    /// `CosineAnnealingLR(opt, T_max=T)` stepped after every batch: the closed form
    /// `eta_min + (base - eta_min)(1 + cos(pi t / T)) / 2` at iteration t.
    #[test]
    fn cosine_anneals_every_iteration() {
        let c = Schedule::Cosine { min_lr: 0.001 };
        assert_eq!(c.lr_at(0.1, at(0, 100, 0)), 0.1);
        let mid = c.lr_at(0.1, at(50, 100, 0));
        assert!((mid - (0.001 + 0.099 * 0.5)).abs() < 1e-12, "{mid}");
        let t = 37.0 / 100.0;
        let want = 0.001 + 0.099 * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0;
        assert!((c.lr_at(0.1, at(37, 100, 0)) - want).abs() < 1e-15);
        // Monotone within one epoch: a one-epoch run anneals.
        let rates: Vec<f64> = (0..100).map(|s| c.lr_at(0.1, at(s, 100, 0))).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]));
        assert!(rates[99] < 0.0011);
    }

    /// Hugging Face `get_cosine_schedule_with_warmup(opt, W, T)`: `step / W` during warmup,
    /// then `0.5 (1 + cos(pi (step - W) / (T - W)))`.
    #[test]
    fn warmup_is_linear_then_cosine_over_the_rest() {
        let c = Schedule::Cosine { min_lr: 0.0 };
        assert_eq!(c.lr_at(1.0, at(0, 110, 10)), 0.0);
        assert!((c.lr_at(1.0, at(5, 110, 10)) - 0.5).abs() < 1e-12);
        assert!((c.lr_at(1.0, at(10, 110, 10)) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(1.0, at(60, 110, 10)) - 0.5).abs() < 1e-12);
        // Warmup scales a constant schedule the same way.
        assert!((Schedule::Constant.lr_at(0.2, at(3, 100, 4)) - 0.15).abs() < 1e-12);
        assert!(!Schedule::Constant.per_iteration(0) && Schedule::Constant.per_iteration(4));
    }
}

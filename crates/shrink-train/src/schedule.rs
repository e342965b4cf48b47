//! Learning-rate schedules evaluated per epoch (like PyTorch's StepLR / CosineAnnealingLR).
use serde::{Deserialize, Serialize};

/// How the learning rate changes over epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over `total_epochs`.
    Cosine {
        total_epochs: usize,
        min_lr: f64,
    },
}

impl Schedule {
    /// Learning rate for 0-based `epoch`.
    pub fn lr(&self, base: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powi((epoch / step_size.max(1)) as i32),
            Schedule::Cosine { total_epochs, min_lr } => {
                let t = epoch.min(total_epochs) as f64 / total_epochs.max(1) as f64;
                min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_cosine_match_pytorch_formulas() {
        let s = Schedule::Step { step_size: 2, gamma: 0.1 };
        assert_eq!(s.lr(1.0, 1), 1.0);
        assert!((s.lr(1.0, 2) - 0.1).abs() < 1e-12);
        let c = Schedule::Cosine { total_epochs: 10, min_lr: 0.0 };
        assert!((c.lr(0.1, 5) - 0.05).abs() < 1e-12);
        assert!(c.lr(0.1, 10).abs() < 1e-12);
    }
}

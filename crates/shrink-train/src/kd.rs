//! Knowledge distillation (Hinton et al. 2015): the student learns from the teacher's
//! temperature-softened outputs and from the labels,
//!
//! `loss = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y)`,
//!
//! the KL term averaged over the batch (PyTorch `kl_div(..., reduction="batchmean")`). The
//! teacher's logits carry no gradient.
use crate::{Result, TrainError};
use candle_core::Tensor;
use candle_nn::ops::log_softmax;

/// Distillation weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KdConfig {
    /// Weight `α` of the distillation term (0..=1).
    pub alpha: f64,
    /// Temperature `T` (> 0).
    pub temperature: f64,
}

impl KdConfig {
    /// Checks `α` in `[0, 1]` and `T > 0`, naming the flags.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(TrainError::Config(format!("--kd-alpha must be in [0, 1], got {}", self.alpha)));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(TrainError::Config(format!("--kd-temp must be positive, got {}", self.temperature)));
        }
        Ok(())
    }
}

/// The distillation loss of student logits `[N, C]` against teacher logits `[N, C]` and labels
/// `[N]` (u32).
pub fn kd_loss(student: &Tensor, teacher: &Tensor, labels: &Tensor, cfg: KdConfig) -> Result<Tensor> {
    let t = cfg.temperature;
    let n = student.dim(0)? as f64;
    let log_ps = log_softmax(&(student / t)?, 1)?;
    let log_pt = log_softmax(&(teacher.detach() / t)?, 1)?;
    let kl = ((log_pt.exp()? * (&log_pt - &log_ps)?)?.sum_all()? / n)?;
    let ce = candle_nn::loss::cross_entropy(student, labels)?;
    Ok(((kl * (cfg.alpha * t * t))? + (ce * (1.0 - cfg.alpha))?)?)
}

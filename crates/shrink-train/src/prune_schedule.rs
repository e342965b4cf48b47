//! Pruning schedules inside one training run: one-shot, the lab's linear schedule (+S/N per
//! epoch for N epochs) and AGP (Zhu & Gupta's cubic, updated every k iterations), with local
//! (per layer) or global thresholds. The schedule is a [`StepHook`]: before an iteration whose
//! target sparsity is higher than the previous iteration's, it re-prunes the weights by
//! magnitude to exactly that target (`round(n·s)` zeros per layer, or over all layers) and
//! zeroes the optimizer state of the newly pruned entries; the optimizer itself is kept across
//! pruning steps. The target is a pure function of the iteration, so a resumed run (masks and
//! optimizer state come from the checkpoint) prunes exactly where the uninterrupted run did.
use crate::trainer::{HookContext, StepHook};
use crate::{Result, TrainError};
use shrink_compress::prune::{prune_magnitude, MagnitudeRule, WeightImportance};
use shrink_ir::Model;
use std::collections::BTreeMap;

/// How the target sparsity grows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScheduleKind {
    /// The final sparsity at the first iteration of the start epoch.
    OneShot,
    /// `S·(e+1)/N` at the first iteration of the e-th pruning epoch (the lab's +7 % per epoch
    /// for 10 epochs at S = 70 %).
    Linear,
    /// Zhu & Gupta: `s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³` at `t = t0, t0 + Δt, …`,
    /// `Δt = every` iterations, `nΔt` the last multiple of Δt before the end of the pruning
    /// epochs (as Distiller's and NNI's AGP compute the span). `every` 0: once per epoch.
    Agp { every: u64, initial: f64 },
}

/// Whether one threshold serves every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `round(n·s)` zeros in each layer.
    Local,
    /// `round(N·s)` zeros over all pruned weights, one magnitude threshold.
    Global,
}

/// A pruning schedule over the iterations of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneSchedule {
    pub kind: ScheduleKind,
    /// Target sparsity in [0, 1].
    pub sparsity: f64,
    /// 0-based epoch at whose first iteration pruning starts.
    pub start_epoch: usize,
    /// Epochs over which the sparsity grows (linear, AGP); the final sparsity holds after them.
    pub prune_epochs: usize,
    pub scope: Scope,
    /// The weights pruned (`{layer}.weight`).
    pub weights: Vec<String>,
}

impl PruneSchedule {
    /// Checks the settings; errors name the flag.
    pub fn check(&self) -> Result<()> {
        if !(self.sparsity.is_finite() && (0.0..=1.0).contains(&self.sparsity)) {
            return Err(TrainError::Config(format!("--sparsity must be in [0, 1], got {}", self.sparsity)));
        }
        if self.prune_epochs == 0 && self.kind != ScheduleKind::OneShot {
            return Err(TrainError::Config("--epochs must be positive for a linear or agp schedule".into()));
        }
        if let ScheduleKind::Agp { initial, .. } = self.kind {
            if !(initial.is_finite() && (0.0..=self.sparsity).contains(&initial)) {
                return Err(TrainError::Config(format!(
                    "--initial-sparsity must be in [0, --sparsity], got {initial}"
                )));
            }
        }
        if self.weights.is_empty() {
            return Err(TrainError::Config("the model has no conv/linear weight to prune".into()));
        }
        Ok(())
    }

    /// The sparsity in force at 0-based iteration `step` (after the pruning done before it).
    pub fn target_at(&self, step: u64, steps_per_epoch: u64) -> f64 {
        let t0 = self.start_epoch as u64 * steps_per_epoch;
        if step < t0 {
            return 0.0;
        }
        let n = self.prune_epochs as u64;
        match self.kind {
            ScheduleKind::OneShot => self.sparsity,
            ScheduleKind::Linear => {
                let e = (step - t0) / steps_per_epoch.max(1);
                if e + 1 >= n {
                    self.sparsity // exactly, not S·n/n
                } else {
                    self.sparsity * (e + 1) as f64 / n as f64
                }
            }
            ScheduleKind::Agp { every, initial } => {
                let every = if every == 0 { steps_per_epoch } else { every };
                agp_sparsity(initial, self.sparsity, t0, t0 + n * steps_per_epoch, every, step)
            }
        }
    }

    /// Whether the sparsity is final at the end of 0-based `epoch` (its weights may be the best).
    pub fn final_by_end_of(&self, epoch: usize, steps_per_epoch: u64) -> bool {
        let last = (epoch as u64 + 1) * steps_per_epoch.max(1) - 1;
        self.target_at(last, steps_per_epoch) >= self.sparsity
    }

    /// Prunes the model to `sparsity` (masks on top of the existing ones), and zeroes the
    /// optimizer state of every pruned entry when an optimizer is given.
    pub fn prune_to(
        &self,
        model: &mut Model,
        sparsity: f64,
        optimizer: Option<&mut crate::Optimizer>,
    ) -> Result<()> {
        let map: BTreeMap<String, f64> = self.weights.iter().map(|w| (w.clone(), sparsity)).collect();
        let rule = match self.scope {
            Scope::Local => MagnitudeRule::ExactCount,
            Scope::Global => MagnitudeRule::GlobalExactCount,
        };
        prune_magnitude(model, &map, rule, WeightImportance::Abs)
            .map_err(|e| TrainError::Config(format!("pruning schedule: {e}")))?;
        if let Some(opt) = optimizer {
            for (name, mask) in model.params.masks() {
                let keep = mask.flatten_all()?.to_vec1::<f32>()?;
                if opt.state_of(name).is_some() {
                    opt.mask_state(name, &keep)?;
                }
            }
        }
        Ok(())
    }
}

/// AGP's target at iteration `t` for a schedule pruning from `t0` until before `t_end` every
/// `every` iterations: Distiller's `AutomatedGradualPrunerBase.compute_target_sparsity` with
/// iterations for epochs (`span = ((t_end − every − t0 − 1) // every + 1) · every`, the offset
/// of the last pruning iteration), held between pruning iterations; 0 before `t0`.
pub fn agp_sparsity(initial: f64, final_sparsity: f64, t0: u64, t_end: u64, every: u64, t: u64) -> f64 {
    if t < t0 {
        return 0.0;
    }
    let every = every.max(1);
    let span = (t_end.saturating_sub(t0).saturating_sub(1) / every) * every;
    if span == 0 {
        return final_sparsity;
    }
    let t_q = ((t - t0) / every * every).min(span);
    let frac = 1.0 - t_q as f64 / span as f64;
    final_sparsity + (initial - final_sparsity) * frac * frac * frac
}

/// The schedule as a training-loop hook.
pub struct PruneHook {
    pub schedule: PruneSchedule,
    /// `(iteration, sparsity)` of every pruning step this hook took (for reports and tests).
    pub applied: Vec<(u64, f64)>,
}

impl PruneHook {
    /// A hook running `schedule`; errors name the bad flag.
    pub fn new(schedule: PruneSchedule) -> Result<Self> {
        schedule.check()?;
        Ok(PruneHook { schedule, applied: vec![] })
    }
}

impl StepHook for PruneHook {
    fn before_step(&mut self, ctx: &mut HookContext) -> Result<()> {
        let t = ctx.global_step;
        let spe = ctx.steps_per_epoch;
        let now = self.schedule.target_at(t, spe);
        let before = if t == 0 { 0.0 } else { self.schedule.target_at(t - 1, spe) };
        if now > before {
            self.schedule.prune_to(ctx.model, now, Some(ctx.optimizer))?;
            self.applied.push((t, now));
        }
        Ok(())
    }

    fn counts_for_best(&self, epoch: usize, steps_per_epoch: u64) -> bool {
        self.schedule.final_by_end_of(epoch, steps_per_epoch)
    }
}

/// Fraction of exact zeros over `weights` of `model` (the masked weights as the forward pass
/// sees them).
pub fn overall_sparsity(model: &Model, weights: &[String]) -> Result<f64> {
    let (mut zeros, mut total) = (0usize, 0usize);
    for w in weights {
        let v = model.effective_param(w)?.flatten_all()?.to_vec1::<f32>()?;
        zeros += v.iter().filter(|x| **x == 0.0).count();
        total += v.len();
    }
    Ok(zeros as f64 / total.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(kind: ScheduleKind) -> PruneSchedule {
        PruneSchedule {
            kind,
            sparsity: 0.7,
            start_epoch: 1,
            prune_epochs: 10,
            scope: Scope::Local,
            weights: vec!["fc.weight".into()],
        }
    }

    #[test]
    fn linear_adds_a_tenth_of_the_target_each_epoch() {
        let s = sched(ScheduleKind::Linear);
        assert_eq!(s.target_at(99, 100), 0.0);
        assert!((s.target_at(100, 100) - 0.07).abs() < 1e-12);
        assert!((s.target_at(199, 100) - 0.07).abs() < 1e-12);
        assert!((s.target_at(200, 100) - 0.14).abs() < 1e-12);
        assert!((s.target_at(1000, 100) - 0.7).abs() < 1e-12);
        assert!((s.target_at(5000, 100) - 0.7).abs() < 1e-12);
        assert!(!s.final_by_end_of(9, 100) && s.final_by_end_of(10, 100));
    }

    #[test]
    fn one_shot_prunes_at_the_start_epoch() {
        let s = sched(ScheduleKind::OneShot);
        assert_eq!(s.target_at(99, 100), 0.0);
        assert_eq!(s.target_at(100, 100), 0.7);
        assert!(!s.final_by_end_of(0, 100) && s.final_by_end_of(1, 100));
    }

    #[test]
    fn agp_is_cubic_and_reaches_the_target_at_its_last_step() {
        let s = sched(ScheduleKind::Agp { every: 50, initial: 0.0 });
        // t0 = 100, end = 1100, span = 950.
        assert_eq!(s.target_at(100, 100), 0.0);
        let want = 0.7 * (1.0 - (1.0 - 500.0f64 / 950.0).powi(3));
        assert!((s.target_at(620, 100) - want).abs() < 1e-12);
        assert!((s.target_at(1050, 100) - 0.7).abs() < 1e-12);
        assert!(s.target_at(1049, 100) < 0.7);
        let rates: Vec<f64> = (0..1200).map(|t| s.target_at(t, 100)).collect();
        assert!(rates.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn agp_every_zero_updates_once_per_epoch() {
        let s = sched(ScheduleKind::Agp { every: 0, initial: 0.0 });
        assert_eq!(s.target_at(150, 100), 0.0);
        assert!(s.target_at(200, 100) > 0.0);
        assert_eq!(s.target_at(200, 100), s.target_at(299, 100));
        assert!((s.target_at(1000, 100) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let mut s = sched(ScheduleKind::Agp { every: 0, initial: 0.8 });
        assert!(s.check().unwrap_err().to_string().contains("--initial-sparsity"));
        s.kind = ScheduleKind::Linear;
        s.sparsity = 1.5;
        assert!(s.check().unwrap_err().to_string().contains("--sparsity"));
    }
}

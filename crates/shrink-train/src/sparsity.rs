//! Sparsity-inducing training: L1, group lasso over neurons/filters and trimmed L1, either as
//! a subgradient added to the loss gradient or as a proximal (soft-threshold) step after each
//! optimizer step. The penalty is `λ·R(w)` summed over conv/linear weights; the proximal
//! threshold per step is `lr·λ`. Groups driven exactly to zero are then removed physically by
//! the structured pruner (`shrink prune --method zero-groups`).
use crate::{Result, TrainError};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use shrink_compress::sparseopt::regularizers as reg;
use shrink_ir::{Model, Op};

/// Which penalty `R(w)` to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Penalty {
    /// `Σ |w|` over every conv/linear weight.
    L1,
    /// `Σ_g ‖w_g‖₂` over the output units (rows of a linear weight, filters of a conv, each
    /// with its bias entry in the proximal form) of every conv/linear layer but the last,
    /// whose outputs are the classes.
    GroupLasso,
    /// `Σ |w|` over all but the `keep` fraction of largest-magnitude weights of each layer.
    TrimmedL1 { keep: f64 },
}

/// A sparsity regularizer for [`crate::train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparsityConfig {
    pub penalty: Penalty,
    /// Strength λ (≥ 0).
    pub lambda: f64,
    /// Proximal (soft-threshold) updates instead of subgradients.
    pub proximal: bool,
}

/// One regularized layer: its weight variable, optional bias variable, and group size.
struct Target {
    weight: Var,
    bias: Option<Var>,
    group_size: usize,
}

/// The regularizer bound to a model's variables.
pub(crate) struct Sparsity {
    cfg: SparsityConfig,
    targets: Vec<Target>,
}

fn values(v: &Var) -> Result<Vec<f32>> {
    Ok(v.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}

fn store(v: &Var, data: Vec<f32>) -> Result<()> {
    let t = Tensor::from_vec(data, v.as_tensor().dims(), v.as_tensor().device())?;
    Ok(v.set(&t)?)
}

fn config_err(e: reg::RegularizerError) -> TrainError {
    TrainError::Config(format!("sparsity regularizer: {e}"))
}

impl Sparsity {
    /// Binds `cfg` to the conv/linear layers of `model`.
    pub(crate) fn new(model: &Model, cfg: SparsityConfig) -> Result<Sparsity> {
        if !(cfg.lambda.is_finite() && cfg.lambda >= 0.0) {
            return Err(TrainError::Config(format!("--sparsity-lambda must be >= 0, got {}", cfg.lambda)));
        }
        if let Penalty::TrimmedL1 { keep } = cfg.penalty {
            if !(0.0..=1.0).contains(&keep) {
                return Err(TrainError::Config(format!("--trim-keep must be in [0, 1], got {keep}")));
            }
        }
        let layers: Vec<(&str, bool)> = model
            .graph
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Linear { bias, .. } | Op::Conv2d { bias, .. } => Some((n.name.as_str(), bias)),
                _ => None,
            })
            .collect();
        let take = match cfg.penalty {
            Penalty::GroupLasso => layers.len().saturating_sub(1),
            _ => layers.len(),
        };
        let mut targets = Vec::new();
        for &(name, has_bias) in &layers[..take] {
            let weight = model.params.get(&format!("{name}.weight"))?.var.clone();
            let bias =
                if has_bias { Some(model.params.get(&format!("{name}.bias"))?.var.clone()) } else { None };
            let group_size = reg::group_size_for_shape(weight.as_tensor().dims());
            targets.push(Target { weight, bias, group_size });
        }
        Ok(Sparsity { cfg, targets })
    }

    fn keep(&self, n: usize) -> usize {
        match self.cfg.penalty {
            Penalty::TrimmedL1 { keep } => ((keep * n as f64).round() as usize).min(n),
            _ => 0,
        }
    }

    /// Adds the penalty's subgradient to `grads` (subgradient mode only).
    pub(crate) fn before_step(&self, grads: &mut GradStore) -> Result<()> {
        if self.cfg.proximal || self.cfg.lambda == 0.0 {
            return Ok(());
        }
        let lambda = self.cfg.lambda as f32;
        for t in &self.targets {
            let w = values(&t.weight)?;
            let Some(g) = grads.get(t.weight.as_tensor()) else { continue };
            let mut g = g.flatten_all()?.to_vec1::<f32>()?;
            match self.cfg.penalty {
                Penalty::L1 => reg::add_l1_subgradient(&w, lambda, &mut g),
                Penalty::GroupLasso => reg::add_group_lasso_subgradient(&w, t.group_size, lambda, &mut g),
                Penalty::TrimmedL1 { .. } => {
                    reg::add_trimmed_l1_subgradient(&w, self.keep(w.len()), lambda, &mut g)
                }
            }
            .map_err(config_err)?;
            let dims = t.weight.as_tensor().dims();
            grads.insert(t.weight.as_tensor(), Tensor::from_vec(g, dims, t.weight.as_tensor().device())?);
        }
        Ok(())
    }

    /// Applies the proximal step with threshold `lr·λ` (proximal mode only).
    pub(crate) fn after_step(&self, lr: f64) -> Result<()> {
        if !self.cfg.proximal || self.cfg.lambda == 0.0 {
            return Ok(());
        }
        let thr = (lr * self.cfg.lambda) as f32;
        for t in &self.targets {
            let mut w = values(&t.weight)?;
            let keep = self.keep(w.len());
            match (self.cfg.penalty, &t.bias) {
                (Penalty::L1, _) => reg::soft_threshold(&mut w, thr),
                (Penalty::TrimmedL1 { .. }, _) => reg::trimmed_soft_threshold(&mut w, keep, thr),
                (Penalty::GroupLasso, None) => reg::group_soft_threshold(&mut w, t.group_size, thr),
                (Penalty::GroupLasso, Some(b)) => {
                    let mut bv = values(b)?;
                    reg::group_soft_threshold_with_bias(&mut w, &mut bv, t.group_size, thr)
                        .map_err(config_err)?;
                    store(b, bv)?;
                    Ok(())
                }
            }
            .map_err(config_err)?;
            store(&t.weight, w)?;
        }
        Ok(())
    }
}

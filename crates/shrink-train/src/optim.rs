//! SGD (momentum, Nesterov, weight decay) and Adam with PyTorch's exact update rules.
//!
//! On CPU each parameter is updated by one fused in-place pass over (param, grad, state), which
//! matters for large MLPs (simple-dnn has 26 M weights); other devices use candle tensor ops.
use candle_core::{backprop::GradStore, CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Which optimizer to use and its hyper-parameters (PyTorch names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OptimizerConfig {
    Sgd { momentum: f64, nesterov: bool, weight_decay: f64 },
    Adam { beta1: f64, beta2: f64, eps: f64, weight_decay: f64 },
}

impl OptimizerConfig {
    /// `torch.optim.SGD(momentum=0.9, weight_decay=wd)`.
    pub fn sgd(momentum: f64, weight_decay: f64) -> Self {
        OptimizerConfig::Sgd { momentum, nesterov: false, weight_decay }
    }

    /// `torch.optim.Adam` with default betas and eps.
    pub fn adam(weight_decay: f64) -> Self {
        OptimizerConfig::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }
    }
}

/// Per-parameter optimizer state, kept as flat f32 buffers (saved in checkpoints).
#[derive(Debug, Clone, Default)]
pub struct ParamState {
    /// SGD momentum buffer, or Adam's first moment.
    pub m: Vec<f32>,
    /// Adam's second moment.
    pub v: Vec<f32>,
}

/// An optimizer over a fixed list of named variables.
pub struct Optimizer {
    config: OptimizerConfig,
    vars: Vec<(String, Var)>,
    states: Vec<ParamState>,
    lr: f64,
    step: u64,
}

const CHUNK: usize = 1 << 14;

/// The fused update as a candle in-place op on the parameter, reading the gradient.
struct FusedStep<'a> {
    config: OptimizerConfig,
    lr: f32,
    step: u64,
    state: Mutex<&'a mut ParamState>,
}

impl InplaceOp2 for FusedStep<'_> {
    fn name(&self) -> &'static str {
        "fused-optimizer-step"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        g_storage: &CpuStorage,
        g_l: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (dst, g_storage) else {
            candle_core::bail!("optimizer expects f32 parameters");
        };
        let (Some((ps, pe)), Some((gs, ge))) = (dst_l.contiguous_offsets(), g_l.contiguous_offsets()) else {
            candle_core::bail!("optimizer expects contiguous tensors");
        };
        let (p, g) = (&mut p[ps..pe], &g[gs..ge]);
        let mut guard = self.state.lock().map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let state: &mut ParamState = &mut guard;
        let lr = self.lr;
        match self.config {
            OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
                let (mom, wd) = (momentum as f32, weight_decay as f32);
                if momentum == 0.0 {
                    p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(p, g)| {
                        for (p, &g) in p.iter_mut().zip(g) {
                            let d = g + wd * *p;
                            *p -= lr * d;
                        }
                    });
                    return Ok(());
                }
                let first = state.m.is_empty();
                if first {
                    state.m = vec![0.0; p.len()];
                }
                p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).zip(state.m.par_chunks_mut(CHUNK)).for_each(
                    |((p, g), m)| {
                        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                            let d = g + wd * *p;
                            *m = if first { d } else { mom * *m + d };
                            let d = if nesterov { d + mom * *m } else { *m };
                            *p -= lr * d;
                        }
                    },
                );
            }
            OptimizerConfig::Adam { beta1, beta2, eps, weight_decay } => {
                if state.m.is_empty() {
                    state.m = vec![0.0; p.len()];
                    state.v = vec![0.0; p.len()];
                }
                let t = self.step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                let step_size = (self.lr as f64 / bc1) as f32;
                let (b1, b2, eps, wd, bc2_sqrt) =
                    (beta1 as f32, beta2 as f32, eps as f32, weight_decay as f32, bc2_sqrt as f32);
                let ParamState { m, v } = state;
                p.par_chunks_mut(CHUNK)
                    .zip(g.par_chunks(CHUNK))
                    .zip(m.par_chunks_mut(CHUNK))
                    .zip(v.par_chunks_mut(CHUNK))
                    .for_each(|(((p, g), m), v)| {
                        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                            let g = g + wd * *p;
                            *m = b1 * *m + (1.0 - b1) * g;
                            *v = b2 * *v + (1.0 - b2) * g * g;
                            let denom = v.sqrt() / bc2_sqrt + eps;
                            *p -= step_size * *m / denom;
                        }
                    });
            }
        }
        Ok(())
    }
}

impl Optimizer {
    /// Creates an optimizer over `vars` with learning rate `lr`.
    pub fn new(vars: Vec<(String, Var)>, config: OptimizerConfig, lr: f64) -> Self {
        let states = vec![ParamState::default(); vars.len()];
        Optimizer { config, vars, states, lr, step: 0 }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (used by schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update from the gradients in `grads`; variables without a gradient are skipped.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        for ((_, var), state) in self.vars.iter().zip(self.states.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            if var.device().is_cpu() && var.dtype() == DType::F32 {
                let grad = grad.contiguous()?;
                let op = FusedStep {
                    config: self.config,
                    lr: self.lr as f32,
                    step: self.step,
                    state: Mutex::new(state),
                };
                var.as_tensor().inplace_op2(&grad, &op)?;
            } else {
                generic_step(self.config, self.lr, self.step, var, grad, state)?;
            }
        }
        Ok(())
    }

    /// Named state buffers (`{param}.m`, `{param}.v`) for checkpoints, plus the step count.
    pub fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for ((name, var), st) in self.vars.iter().zip(&self.states) {
            for (suffix, buf) in [("m", &st.m), ("v", &st.v)] {
                if !buf.is_empty() {
                    out.push((
                        format!("{name}.{suffix}"),
                        Tensor::from_slice(buf, var.shape(), &candle_core::Device::Cpu)?,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Restores buffers saved by [`Optimizer::state_tensors`] and the step count.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for ((name, var), st) in self.vars.iter().zip(self.states.iter_mut()) {
            for (suffix, buf) in [("m", &mut st.m), ("v", &mut st.v)] {
                if let Some(t) = tensors.get(&format!("{name}.{suffix}")) {
                    if t.elem_count() != var.elem_count() {
                        candle_core::bail!("optimizer state `{name}.{suffix}` has the wrong size");
                    }
                    *buf = t.flatten_all()?.to_vec1::<f32>()?;
                }
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Device-generic update with tensor ops (same math as the fused CPU path).
fn generic_step(
    config: OptimizerConfig,
    lr: f64,
    step: u64,
    var: &Var,
    grad: &Tensor,
    state: &mut ParamState,
) -> Result<()> {
    let p = var.as_tensor().detach();
    let dev = p.device().clone();
    let load = |buf: &Vec<f32>| -> Result<Tensor> {
        if buf.is_empty() {
            p.zeros_like()
        } else {
            Tensor::from_slice(buf, p.shape(), &dev)
        }
    };
    match config {
        OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => {
            let d = (grad + (&p * weight_decay)?)?;
            let d = if momentum == 0.0 {
                d
            } else {
                let m = if state.m.is_empty() { d.clone() } else { ((load(&state.m)? * momentum)? + &d)? };
                state.m = m.flatten_all()?.to_vec1()?;
                if nesterov {
                    (d + (m * momentum)?)?
                } else {
                    m
                }
            };
            var.set(&(p - (d * lr)?)?)?;
        }
        OptimizerConfig::Adam { beta1, beta2, eps, weight_decay } => {
            let g = (grad + (&p * weight_decay)?)?;
            let m = ((load(&state.m)? * beta1)? + (&g * (1.0 - beta1))?)?;
            let v = ((load(&state.v)? * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let bc1 = 1.0 - beta1.powi(step as i32);
            let bc2_sqrt = (1.0 - beta2.powi(step as i32)).sqrt();
            let denom = ((v.sqrt()? / bc2_sqrt)? + eps)?;
            var.set(&(p - ((&m / denom)? * (lr / bc1))?)?)?;
            state.m = m.flatten_all()?.to_vec1()?;
            state.v = v.flatten_all()?.to_vec1()?;
        }
    }
    Ok(())
}

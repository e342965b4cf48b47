//! SGD (momentum, Nesterov, weight decay) and Adam with PyTorch's exact update rules.
//!
//! On CPU each parameter is updated by one fused in-place pass over (param, grad, state), which
//! matters for large MLPs (simple-dnn has 26 M weights); other devices use candle tensor ops.
use candle_core::{
    backprop::GradStore, CpuStorage, DType, InplaceOp2, Layout, Result, Tensor, TensorId, Var,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shrink_ir::ops::in_backward::{InBackwardUpdate, UpdateSession};
use shrink_ir::ops::weight_grad::StripUpdate;
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
    applied_in_backward: usize,
}

const CHUNK: usize = 1 << 14;

/// One step's element-wise update with its hyper-parameters resolved (learning rate of this
/// step, bias corrections). The same rule serves the fused CPU step over whole tensors and the
/// updates applied strip by strip inside the backward pass.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// SGD without momentum: no state.
    Sgd { lr: f32, wd: f32 },
    /// SGD with a momentum buffer (state 0); `first` when the buffer is new (PyTorch copies the
    /// first gradient into it).
    Momentum { lr: f32, mom: f32, wd: f32, nesterov: bool, first: bool },
    /// Adam with first (state 0) and second (state 1) moments.
    Adam { step_size: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc2_sqrt: f32 },
}

impl Rule {
    fn new(config: OptimizerConfig, lr: f64, step: u64, state: &ParamState) -> Rule {
        let lr32 = lr as f32;
        match config {
            OptimizerConfig::Sgd { momentum: 0.0, weight_decay, .. } => {
                Rule::Sgd { lr: lr32, wd: weight_decay as f32 }
            }
            OptimizerConfig::Sgd { momentum, nesterov, weight_decay } => Rule::Momentum {
                lr: lr32,
                mom: momentum as f32,
                wd: weight_decay as f32,
                nesterov,
                first: state.m.is_empty(),
            },
            OptimizerConfig::Adam { beta1, beta2, eps, weight_decay } => {
                let t = step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
                Rule::Adam {
                    step_size: (lr / bc1) as f32,
                    b1: beta1 as f32,
                    b2: beta2 as f32,
                    eps: eps as f32,
                    wd: weight_decay as f32,
                    bc2_sqrt: bc2_sqrt as f32,
                }
            }
        }
    }

    /// Number of state buffers (each shaped like the parameter).
    fn states(&self) -> usize {
        match self {
            Rule::Sgd { .. } => 0,
            Rule::Momentum { .. } => 1,
            Rule::Adam { .. } => 2,
        }
    }

    /// Allocates missing state buffers and moves them out of `state`, in rule order.
    fn take_state(&self, state: &mut ParamState, len: usize) -> Vec<Vec<f32>> {
        let mut bufs = Vec::with_capacity(self.states());
        for buf in [&mut state.m, &mut state.v].into_iter().take(self.states()) {
            if buf.is_empty() {
                *buf = vec![0.0; len];
            }
            bufs.push(std::mem::take(buf));
        }
        bufs
    }

    /// Updates `p` from `g` and the same run of each state buffer (AVX-512 or AVX2 code where
    /// the CPU has it; the operations, and so the results, are the same on every path).
    fn apply(&self, p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                return unsafe { self.apply_avx512(p, g, state) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { self.apply_avx2(p, g, state) };
            }
        }
        self.apply_portable(p, g, state)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn apply_avx512(&self, p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
        self.apply_portable(p, g, state)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn apply_avx2(&self, p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
        self.apply_portable(p, g, state)
    }

    /// PyTorch's update rules, one loop per case so each vectorizes.
    #[inline(always)]
    fn apply_portable(&self, p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
        assert_eq!(p.len(), g.len(), "optimizer: gradient length");
        assert!(state.len() >= self.states() && state.iter().all(|s| s.len() == p.len()));
        match *self {
            Rule::Sgd { lr, wd } => {
                for (p, &g) in p.iter_mut().zip(g) {
                    let d = g + wd * *p;
                    *p -= lr * d;
                }
            }
            Rule::Momentum { lr, mom, wd, nesterov, first } => {
                let m = &mut *state[0];
                let it = p.iter_mut().zip(g).zip(m.iter_mut());
                match (first, nesterov) {
                    (true, false) => it.for_each(|((p, &g), m)| {
                        let d = g + wd * *p;
                        *m = d;
                        *p -= lr * d;
                    }),
                    (true, true) => it.for_each(|((p, &g), m)| {
                        let d = g + wd * *p;
                        *m = d;
                        *p -= lr * (d + mom * *m);
                    }),
                    (false, false) => it.for_each(|((p, &g), m)| {
                        let d = g + wd * *p;
                        *m = mom * *m + d;
                        *p -= lr * *m;
                    }),
                    (false, true) => it.for_each(|((p, &g), m)| {
                        let d = g + wd * *p;
                        *m = mom * *m + d;
                        *p -= lr * (d + mom * *m);
                    }),
                }
            }
            Rule::Adam { step_size, b1, b2, eps, wd, bc2_sqrt } => {
                let [m, v, ..] = state else { unreachable!("Adam has two state buffers") };
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = g + wd * *p;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p -= step_size * *m / denom;
                }
            }
        }
    }
}

/// A [`Rule`] as the strip update the backward pass applies.
struct InBackwardRule(Rule);

impl StripUpdate for InBackwardRule {
    fn apply(&self, w: &mut [f32], grad: &[f32], state: &mut [&mut [f32]]) {
        self.0.apply(w, grad, state)
    }
}

/// The fused update as a candle in-place op on the parameter, reading the gradient.
struct FusedStep<'a> {
    rule: Rule,
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
        let rule = self.rule;
        let mut bufs = rule.take_state(state, p.len());
        let chunks = p.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK));
        match &mut bufs[..] {
            [] => chunks.for_each(|(p, g)| rule.apply(p, g, &mut [])),
            [m] => chunks.zip(m.par_chunks_mut(CHUNK)).for_each(|((p, g), m)| rule.apply(p, g, &mut [m])),
            [m, v] => chunks
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| rule.apply(p, g, &mut [m, v])),
            _ => unreachable!("at most two state buffers"),
        }
        state.restore(bufs);
        Ok(())
    }
}

impl ParamState {
    /// Puts buffers taken by [`Rule::take_state`] back.
    fn restore(&mut self, bufs: Vec<Vec<f32>>) {
        for (slot, buf) in [&mut self.m, &mut self.v].into_iter().zip(bufs) {
            *slot = buf;
        }
    }
}

impl Optimizer {
    /// Creates an optimizer over `vars` with learning rate `lr`.
    pub fn new(vars: Vec<(String, Var)>, config: OptimizerConfig, lr: f64) -> Self {
        let states = vec![ParamState::default(); vars.len()];
        Optimizer { config, vars, states, lr, step: 0, applied_in_backward: 0 }
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (used by schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// How many parameters the last [`Optimizer::step_in_backward`] updated inside the backward
    /// pass (the rest were updated from their gradients afterwards).
    pub fn updated_in_backward(&self) -> usize {
        self.applied_in_backward
    }

    /// Number of steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Applies one update from the gradients in `grads`; variables without a gradient are skipped.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        self.apply_grads(grads, &[])
    }

    /// One training step with the update applied inside the backward pass where it can be
    /// ([`shrink_ir::ops::in_backward`]): `forward` builds the loss (plus anything the caller
    /// wants back), the backward pass updates each weight matrix of a fused linear layer the
    /// moment its gradient strip is computed, and the remaining parameters are updated from
    /// their gradients afterwards. Same results as `backward` + [`Optimizer::step`] up to the
    /// summation order of the weight gradients, without ever storing those gradients.
    pub fn step_in_backward<T, E: From<candle_core::Error>>(
        &mut self,
        forward: impl FnOnce() -> std::result::Result<(Tensor, T), E>,
    ) -> std::result::Result<(Tensor, T), E> {
        self.step += 1;
        let mut updates = Vec::new();
        let mut fresh = Vec::new();
        for ((_, var), state) in self.vars.iter().zip(self.states.iter_mut()) {
            if !(var.device().is_cpu() && var.dtype() == DType::F32 && var.rank() == 2) {
                continue;
            }
            if state.m.is_empty() {
                fresh.push(var.as_tensor().id());
            }
            let rule = Rule::new(self.config, self.lr, self.step, state);
            let bufs = rule.take_state(state, var.elem_count());
            updates.push(InBackwardUpdate::new(var.clone(), Box::new(InBackwardRule(rule)), bufs));
        }
        let session = UpdateSession::begin(updates)?;
        let (loss, extra) = match forward() {
            Ok(out) => out,
            Err(e) => {
                // Nothing was updated: the step did not happen.
                self.restore_updates(session.cancel(), &fresh, &mut vec![]);
                self.step -= 1;
                return Err(e);
            }
        };
        let (grads, updates) = session.backward(&loss);
        let mut applied = Vec::new();
        self.restore_updates(updates, &fresh, &mut applied);
        self.applied_in_backward = applied.len();
        self.apply_grads(&grads?, &applied)?;
        Ok((loss, extra))
    }

    /// Moves the state of `updates` back into the optimizer (buffers in `fresh` were created for
    /// this step); collects the ids of the applied updates.
    fn restore_updates(
        &mut self,
        updates: Vec<InBackwardUpdate>,
        fresh: &[TensorId],
        applied: &mut Vec<TensorId>,
    ) {
        for u in updates {
            let id = u.var.as_tensor().id();
            let Some(i) = self.vars.iter().position(|(_, v)| v.as_tensor().id() == id) else { continue };
            if u.applied {
                applied.push(id);
            }
            // An update that never ran leaves a new buffer as it was: empty (PyTorch's first step).
            if u.applied || !fresh.contains(&id) {
                self.states[i].restore(u.state);
            }
        }
    }

    /// Updates every variable that has a gradient in `grads`, except those in `skip`.
    fn apply_grads(&mut self, grads: &GradStore, skip: &[TensorId]) -> Result<()> {
        for ((_, var), state) in self.vars.iter().zip(self.states.iter_mut()) {
            if skip.contains(&var.as_tensor().id()) {
                continue;
            }
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            if var.device().is_cpu() && var.dtype() == DType::F32 {
                let grad = grad.contiguous()?;
                let rule = Rule::new(self.config, self.lr, self.step, state);
                var.as_tensor().inplace_op2(&grad, &FusedStep { rule, state: Mutex::new(state) })?;
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

impl Optimizer {
    /// Zeroes the state buffers (SGD momentum, Adam moments) of variable `name` wherever `keep`
    /// is 0: a mask set during a run removes its weights' history too, so a pruned weight
    /// receives no update from momentum built before it was pruned. Errors when `name` is not
    /// one of the optimizer's variables or `keep` has another length.
    pub fn mask_state(&mut self, name: &str, keep: &[f32]) -> Result<()> {
        let Some(i) = self.vars.iter().position(|(n, _)| n == name) else {
            candle_core::bail!("optimizer: no variable `{name}` to mask");
        };
        if keep.len() != self.vars[i].1.elem_count() {
            candle_core::bail!(
                "optimizer: the mask of `{name}` has {} entries, the variable {}",
                keep.len(),
                self.vars[i].1.elem_count()
            );
        }
        let st = &mut self.states[i];
        for buf in [&mut st.m, &mut st.v] {
            for (x, k) in buf.iter_mut().zip(keep) {
                if *k == 0.0 {
                    *x = 0.0;
                }
            }
        }
        Ok(())
    }

    /// The state buffers of variable `name` (empty before its first update).
    pub fn state_of(&self, name: &str) -> Option<&ParamState> {
        self.vars.iter().position(|(n, _)| n == name).map(|i| &self.states[i])
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

//! Quantization-aware training of layer models: weight (and optionally activation) quantizers
//! live beside the model, replace weights and activations in every forward pass through
//! [`ForwardHooks`], and become ordinary quantizer slots of the model at the end, so the saved
//! file evaluates (`shrink eval`) exactly as the trained quantized network.
//!
//! * [`Method::Ste`]: the labs' PTQ quantizers (clip / symmetric / asymmetric) with a
//!   straight-through gradient ([`ste`]); ranges dynamic, frozen or EMA; activations per-tensor
//!   asymmetric with an EMA range.
//! * [`Method::Lsq`]: learned step sizes for weights and activations ([`lsq`]).
//!
//! Weights quantized: every conv/linear `weight`. Activations quantized: the input of every
//! conv/linear layer but the first (whose input is the image, flattened or not), i.e. the output
//! of the node that feeds it, unsigned where that output cannot be negative (after a ReLU). The first and last
//! layers may keep more bits (`first_last_bits`), their input activation too. Pruned weights stay
//! exactly zero: ranges are chosen over the unpruned entries and masks apply after quantization.
pub mod lsq;
pub mod ste;
mod train;

use crate::{Result, TrainError};
use candle_core::{Tensor, Var};
use lsq::Lsq;
use shrink_compress::quant::Scheme;
use shrink_ir::{ForwardHooks, Model, NodeId, Op, ParamKind, QuantSlot};
use std::cell::Cell;
use std::collections::BTreeMap;
use ste::{RangeMode, SteActivation, SteWeight};
pub use train::train_qat;

/// Which QAT algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Straight-through estimator over the labs' quantizers.
    Ste,
    /// Learned step size quantization.
    Lsq,
}

impl Method {
    /// Parses `ste` or `lsq`.
    pub fn parse(s: &str) -> Result<Method> {
        match s {
            "ste" => Ok(Method::Ste),
            "lsq" => Ok(Method::Lsq),
            other => Err(TrainError::Config(format!("--method must be ste or lsq, got `{other}`"))),
        }
    }
}

/// Everything that decides how a model is quantized during training.
#[derive(Debug, Clone, PartialEq)]
pub struct QatConfig {
    pub method: Method,
    /// Weight bits (2..=8).
    pub weight_bits: u32,
    /// Activation bits (2..=8); `None` keeps activations in float.
    pub act_bits: Option<u32>,
    /// One range / step per output channel of each weight.
    pub per_channel: bool,
    /// Bits of the first and last conv/linear layer (weights and input activation).
    pub first_last_bits: Option<u32>,
    /// STE: the lab quantizer of the weights.
    pub scheme: Scheme,
    /// STE: how weight ranges follow the weights.
    pub range: RangeMode,
    /// STE: EMA momentum of activation ranges.
    pub act_momentum: f32,
    /// LSQ+: a learnable offset for every activation quantizer.
    pub lsq_offset: bool,
}

impl QatConfig {
    /// Checks bit widths, naming the flag.
    pub fn check(&self) -> Result<()> {
        let ok = |b: u32| (2..=8).contains(&b);
        let bad = |flag: &str, b: u32| TrainError::Config(format!("{flag}: bits must be 2..=8, got {b}"));
        if !ok(self.weight_bits) {
            return Err(bad("--bits", self.weight_bits));
        }
        if let Some(a) = self.act_bits.filter(|&a| !ok(a)) {
            return Err(bad("--bits (activations)", a));
        }
        if let Some(f) = self.first_last_bits.filter(|&f| !ok(f)) {
            return Err(bad("--first-last-bits", f));
        }
        Ok(())
    }
}

enum WeightQ {
    Ste(SteWeight),
    Lsq(Lsq),
}

enum ActQ {
    Ste(SteActivation),
    Lsq(Lsq),
}

/// One layer's quantization as planned (for reports).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerPlan {
    pub weight: String,
    pub weight_bits: u32,
    /// Node whose output (this layer's input) is quantized, with its bits.
    pub input: Option<(String, u32)>,
}

/// The quantizers of one model, applied as [`ForwardHooks`].
pub struct Quantizers {
    method: Method,
    weights: BTreeMap<String, WeightQ>,
    acts: BTreeMap<String, ActQ>,
    training: Cell<bool>,
    /// The plan, layer by layer in graph order.
    pub plan: Vec<LayerPlan>,
}

/// Whether node `id`'s output is never negative (after a ReLU, through pooling and reshapes).
fn non_negative(model: &Model, id: NodeId) -> bool {
    let node = &model.graph.nodes[id];
    match node.op {
        Op::Relu => true,
        Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::GlobalAvgPool
        | Op::Flatten
        | Op::Dropout { .. }
        | Op::ShortcutA { .. } => non_negative(model, node.inputs[0]),
        Op::Add => node.inputs.iter().all(|&i| non_negative(model, i)),
        _ => false,
    }
}

impl Quantizers {
    /// Plans and initializes the quantizers of `model` (LSQ weight steps from the weights,
    /// activation steps and ranges at the first training batch).
    pub fn new(model: &Model, cfg: &QatConfig) -> Result<Quantizers> {
        cfg.check()?;
        let layers: Vec<NodeId> = (0..model.graph.nodes.len())
            .filter(|&i| matches!(model.graph.nodes[i].op, Op::Conv2d { .. } | Op::Linear { .. }))
            .collect();
        if layers.is_empty() {
            return Err(TrainError::Config("the model has no conv or linear layer to quantize".into()));
        }
        let (first, last) = (layers[0], layers[layers.len() - 1]);
        let mut weights = BTreeMap::new();
        let mut act_bits: BTreeMap<NodeId, u32> = BTreeMap::new();
        let mut plan = Vec::new();
        for &id in &layers {
            let node = &model.graph.nodes[id];
            let edge = id == first || id == last;
            let wb = if edge { cfg.first_last_bits.unwrap_or(cfg.weight_bits) } else { cfg.weight_bits };
            let name = format!("{}.weight", node.name);
            let p = model.params.get(&name)?;
            if p.kind != ParamKind::Weight {
                continue;
            }
            let w = p.var.as_tensor();
            let q = match cfg.method {
                Method::Ste => {
                    let keep = match model.params.mask(&name) {
                        Some(m) => {
                            Some(m.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x != 0.0).collect())
                        }
                        None => None,
                    };
                    WeightQ::Ste(SteWeight::new(cfg.scheme, wb, cfg.per_channel, cfg.range, keep))
                }
                Method::Lsq => {
                    let channels = if cfg.per_channel { w.dims()[0] } else { 1 };
                    let q = Lsq::new(wb, true, channels, false)?;
                    q.init_from(w)?;
                    WeightQ::Lsq(q)
                }
            };
            weights.insert(name.clone(), q);
            let input = node.inputs[0];
            let mut planned_input = None;
            if let (Some(ab), true) = (cfg.act_bits, id != first && input != 0) {
                let ab = if edge { cfg.first_last_bits.unwrap_or(ab) } else { ab };
                let e = act_bits.entry(input).or_insert(ab);
                *e = (*e).max(ab);
                planned_input = Some((model.graph.nodes[input].name.clone(), ab));
            }
            plan.push(LayerPlan { weight: name, weight_bits: wb, input: planned_input });
        }
        let mut acts = BTreeMap::new();
        for (id, bits) in act_bits {
            let name = model.graph.nodes[id].name.clone();
            if model.graph.nodes.iter().filter(|n| n.name == name).count() != 1 {
                return Err(TrainError::Config(format!(
                    "node name `{name}` is not unique; its output cannot be quantized"
                )));
            }
            let q = match cfg.method {
                Method::Ste => ActQ::Ste(SteActivation::new(bits, cfg.act_momentum)),
                Method::Lsq => ActQ::Lsq(Lsq::new(bits, !non_negative(model, id), 1, cfg.lsq_offset)?),
            };
            acts.insert(name, q);
        }
        Ok(Quantizers { method: cfg.method, weights, acts, training: Cell::new(false), plan })
    }

    /// Training passes move EMA ranges and initialize activation steps; eval passes do not.
    pub fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    /// The learnable quantizer parameters (LSQ steps and offsets), named for optimizer state.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        let mut push = |name: &str, q: &Lsq| {
            out.push((format!("{name}.lsq_step"), q.step.clone()));
            if let Some(o) = &q.offset {
                out.push((format!("{name}.lsq_offset"), o.clone()));
            }
        };
        for (name, q) in &self.weights {
            if let WeightQ::Lsq(q) = q {
                push(name, q);
            }
        }
        for (name, q) in &self.acts {
            if let ActQ::Lsq(q) = q {
                push(name, q);
            }
        }
        out
    }

    /// Keeps every learned step positive after an optimizer update.
    pub fn after_step(&self) -> Result<()> {
        for (_, v) in self.vars().iter().filter(|(n, _)| n.ends_with(".lsq_step")) {
            v.set(&v.as_tensor().abs()?.maximum(1e-8)?)?;
        }
        Ok(())
    }

    fn scheme_of_weights(&self) -> Option<&'static str> {
        self.weights.values().next().map(|q| match q {
            WeightQ::Ste(s) => s.scheme.name(),
            WeightQ::Lsq(_) => "lsq",
        })
    }

    /// Continues from the quantizer slots stored on `model` (a checkpoint) that match these
    /// quantizers (same scheme and bits); others keep their fresh state.
    pub fn restore(&self, model: &Model) -> Result<()> {
        let scheme = self.scheme_of_weights().unwrap_or("");
        for (name, q) in &self.weights {
            let Some(slot) = model.params.quant(name) else { continue };
            match q {
                WeightQ::Ste(s) if slot.scheme == scheme && slot.bits == s.bits => s.restore(slot),
                WeightQ::Lsq(l)
                    if slot.scheme == "lsq"
                        && slot.bits == l.bits
                        && slot.scales.len() == l.step.elem_count() =>
                {
                    l.restore(slot)?
                }
                _ => {}
            }
        }
        for (node, q) in &self.acts {
            let Some(slot) = model.act_quant.get(node) else { continue };
            match q {
                ActQ::Ste(s) if slot.bits == s.bits && slot.scheme != "lsq" => s.restore(slot),
                ActQ::Lsq(l) if slot.scheme == "lsq" && slot.bits == l.bits => l.restore(slot)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Sets the quantizers in force as `model`'s weight slots and activation quantizers, so its
    /// plain forward pass computes what the hooked eval pass computes.
    pub fn attach(&self, model: &mut Model) -> Result<()> {
        for (name, q) in &self.weights {
            let slot = match q {
                WeightQ::Ste(s) => s.slot(&model.params.tensor(name)?)?,
                WeightQ::Lsq(l) => l.slot("lsq")?,
            };
            model.params.set_quant(name, slot)?;
        }
        for (node, q) in &self.acts {
            let slot = match q {
                ActQ::Ste(s) => s.slot(),
                ActQ::Lsq(l) if l.is_initialized() => Some(l.slot("lsq")?),
                ActQ::Lsq(_) => None,
            };
            if let Some(slot) = slot {
                model.set_act_quant(node, slot)?;
            }
        }
        Ok(())
    }

    /// [`Quantizers::attach`], then every quantized weight replaced by its quantized value
    /// (masked), as `shrink quantize` stores them: the output file of a QAT run.
    pub fn finish(&self, model: &mut Model) -> Result<()> {
        self.attach(model)?;
        bake(model)
    }

    /// The method of these quantizers.
    pub fn method(&self) -> Method {
        self.method
    }
}

/// Replaces every weight that has a quantizer slot by its fake-quantized (and masked) value.
pub fn bake(model: &mut Model) -> Result<()> {
    let slots: Vec<(String, QuantSlot)> =
        model.params.quants().iter().map(|(n, s)| (n.clone(), s.clone())).collect();
    for (name, slot) in slots {
        let mut q = shrink_ir::ops::fake_quant(&model.params.tensor(&name)?, &slot.fake_quant())?;
        if let Some(m) = model.params.mask(&name) {
            q = q.mul(m)?;
        }
        model.params.set(&name, &q)?;
    }
    Ok(())
}

fn ir(e: TrainError) -> shrink_ir::IrError {
    match e {
        TrainError::Ir(e) => e,
        other => shrink_ir::IrError::Invalid(other.to_string()),
    }
}

impl ForwardHooks for Quantizers {
    fn weight(&self, name: &str, w: &Tensor) -> shrink_ir::Result<Option<Tensor>> {
        let Some(q) = self.weights.get(name) else { return Ok(None) };
        let out = match q {
            WeightQ::Ste(s) => s.forward(w, self.training.get()),
            WeightQ::Lsq(l) => l.forward(w, w.elem_count() / l.step.elem_count()),
        };
        out.map(Some).map_err(ir)
    }

    fn hooks_activation(&self, node: &str) -> bool {
        self.acts.contains_key(node)
    }

    fn activation(&self, node: &str, y: &Tensor) -> shrink_ir::Result<Tensor> {
        let out = match &self.acts[node] {
            ActQ::Ste(s) => s.forward(y, self.training.get()),
            ActQ::Lsq(l) => (|| {
                if !l.is_initialized() {
                    l.init_from(y)?;
                }
                l.forward(y, y.elem_count() / y.dim(0)?.max(1))
            })(),
        };
        out.map_err(ir)
    }
}

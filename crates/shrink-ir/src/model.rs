//! A model = graph + parameters + metadata, and its forward pass in eval or train mode.
use crate::error::{node_err, IrError, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::ops;
use crate::params::{ParamStore, QuantSlot};
use crate::prepared::{Kernel, Prepared};
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts stored with a model file so it evaluates with no extra flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Zoo architecture name, or `custom` for imported graphs.
    pub arch: String,
    /// Input shape without batch, e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    /// Per-channel normalization mean applied to [0,1] pixels.
    pub mean: Vec<f32>,
    /// Per-channel normalization std.
    pub std: Vec<f32>,
    /// Class names in label order.
    pub classes: Vec<String>,
}

/// Whether a forward pass trains (batch statistics, dropout) or evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eval,
    /// Train mode; the seed drives dropout masks so a step is reproducible.
    Train {
        seed: u64,
    },
}

/// Replaces weights and node outputs during a forward pass (quantization-aware training: the
/// quantizer of a weight or an activation with trainable or changing parameters lives outside the
/// model and is applied here). See [`Model::forward_hooked`].
pub trait ForwardHooks {
    /// The weight `name` as the forward pass should see it, from the stored tensor `w` (`None`:
    /// the model's own quantizer slot, if any). Masks are applied after it.
    fn weight(&self, name: &str, w: &Tensor) -> Result<Option<Tensor>>;
    /// Whether [`ForwardHooks::activation`] replaces the output of node `node`.
    fn hooks_activation(&self, node: &str) -> bool;
    /// The output `y` of node `node` as later nodes should see it (called only for the nodes
    /// [`ForwardHooks::hooks_activation`] names, after the model's own activation quantizer).
    fn activation(&self, node: &str, y: &Tensor) -> Result<Tensor>;
}

/// A network: layer graph, named weights and metadata.
#[derive(Debug, Clone)]
pub struct Model {
    pub graph: Graph,
    pub params: ParamStore,
    pub meta: ModelMeta,
    /// Activation quantizers by node name: that node's output is fake-quantized in every
    /// forward pass (set by calibration, see [`Model::set_act_quant`]).
    pub act_quant: BTreeMap<String, QuantSlot>,
}

impl Model {
    /// Builds a model and checks that graph, shapes and weights agree.
    pub fn new(graph: Graph, params: ParamStore, meta: ModelMeta) -> Result<Model> {
        graph.infer_shapes(&meta.input_shape)?;
        params.check_against(&graph)?;
        Ok(Model { graph, params, meta, act_quant: BTreeMap::new() })
    }

    /// Fake-quantizes the output of node `node` with `slot` (per tensor) from now on. The node
    /// must exist and its name must be unique in the graph.
    pub fn set_act_quant(&mut self, node: &str, slot: QuantSlot) -> Result<()> {
        match self.graph.nodes.iter().filter(|n| n.name == node).count() {
            0 => return Err(IrError::Invalid(format!("activation quantizer for unknown node `{node}`"))),
            1 => {}
            _ => return Err(node_err(node, "name is not unique, its output cannot be quantized")),
        }
        if slot.axis.is_some() || slot.scales.len() != 1 || slot.offsets.len() != 1 {
            return Err(node_err(node, "activation quantizers are per tensor (one scale and offset)"));
        }
        self.act_quant.insert(node.to_string(), slot);
        Ok(())
    }

    /// Device the weights live on.
    pub fn device(&self) -> Device {
        self.params.iter().next().map(|(_, p)| p.var.device().clone()).unwrap_or(Device::Cpu)
    }

    /// The weight as the forward pass sees it: fake-quantized if a slot is set, then masked
    /// (after quantization, so pruned weights stay exactly zero even where the quantizer's grid
    /// has no zero, as with an asymmetric range).
    pub fn effective_param(&self, name: &str) -> Result<Tensor> {
        let mut t = self.params.tensor(name)?;
        if let Some(slot) = self.params.quant(name) {
            t = ops::fake_quant(&t, &slot.fake_quant())?;
        }
        if let Some(mask) = self.params.mask(name) {
            t = t.mul(mask)?;
        }
        Ok(t)
    }

    /// Runs the graph on a batch `x` of shape [N, ...input_shape]; returns the output node.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_observed(x, mode, &mut |_, _| Ok(()))
    }

    /// [`Model::forward`] with weights and activations passed through `hooks` (QAT, LSQ).
    pub fn forward_hooked(&self, x: &Tensor, mode: Mode, hooks: &dyn ForwardHooks) -> Result<Tensor> {
        self.run(x, mode, None, &mut |_, _| Ok(()), Some(hooks))
    }

    /// [`Model::forward`] that also shows every node's output (after its activation quantizer,
    /// if any) to `observe`, in graph order; calibration collects activation ranges this way.
    pub fn forward_observed(
        &self,
        x: &Tensor,
        mode: Mode,
        observe: &mut dyn FnMut(NodeId, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        self.run(x, mode, None, observe, None)
    }

    /// Eval-mode forward with prepared inference kernels (e.g. sparse linear layers, see
    /// [`Prepared::sparse`]); `prepared` must have been built from this model's current weights.
    pub fn forward_prepared(&self, x: &Tensor, prepared: &Prepared) -> Result<Tensor> {
        if prepared.kernels.len() != self.graph.nodes.len() {
            return Err(IrError::Invalid("prepared kernels belong to another graph".into()));
        }
        self.run(x, Mode::Eval, Some(prepared), &mut |_, _| Ok(()), None)
    }

    fn run(
        &self,
        x: &Tensor,
        mode: Mode,
        prepared: Option<&Prepared>,
        observe: &mut dyn FnMut(NodeId, &Tensor) -> Result<()>,
        hooks: Option<&dyn ForwardHooks>,
    ) -> Result<Tensor> {
        if x.dims().len() != self.meta.input_shape.len() + 1
            || &x.dims()[1..] != self.meta.input_shape.as_slice()
        {
            return Err(IrError::InputShape {
                expected: self.meta.input_shape.clone(),
                got: x.dims().to_vec(),
            });
        }
        let x = if x.dtype() != DType::F32 { x.to_dtype(DType::F32)? } else { x.clone() };
        let last_use = self.graph.last_uses();
        let fused = self.relu_fusions(mode, hooks);
        let mut values: Vec<Option<Tensor>> = vec![None; self.graph.nodes.len()];
        let out_id = self.graph.output();
        for (id, node) in self.graph.nodes.iter().enumerate() {
            let input = |k: usize| -> Result<&Tensor> {
                values[node.inputs[k]].as_ref().ok_or_else(|| node_err(&node.name, "input freed too early"))
            };
            let p = |suffix: &str| format!("{}.{suffix}", node.name);
            // Eval mode reads detached weights so no autograd graph is built or kept alive.
            let weight = |suffix: &str| -> Result<Tensor> {
                let name = p(suffix);
                let hooked = match hooks {
                    Some(h) => h.weight(&name, &self.params.tensor(&name)?)?,
                    None => None,
                };
                let t = match hooked {
                    Some(t) => match self.params.mask(&name) {
                        Some(mask) => t.mul(mask)?,
                        None => t,
                    },
                    None => self.effective_param(&name)?,
                };
                Ok(if mode == Mode::Eval { t.detach() } else { t })
            };
            let y = match &node.op {
                Op::Input => x.clone(),
                Op::Linear { bias, out_features, .. } => {
                    let b = if *bias { Some(weight("bias")?) } else { None };
                    match prepared.and_then(|p| p.kernel(id)) {
                        Some(Kernel::Sparse(csr)) => {
                            ops::sparse_linear(input(0)?, csr, b.as_ref(), fused[id])?
                        }
                        Some(Kernel::Streamed(src)) => ops::linear_streamed(
                            input(0)?,
                            src.as_ref(),
                            *out_features,
                            b.as_ref(),
                            fused[id],
                        )?,
                        None => ops::linear(input(0)?, &weight("weight")?, b.as_ref(), fused[id])?,
                    }
                }
                Op::Conv2d { stride, padding, groups, bias, .. } => {
                    let w = match prepared.and_then(|p| p.kernel(id)) {
                        // Conv weights are small: the whole (streamed) weight, for this pass only.
                        Some(Kernel::Streamed(src)) => {
                            let dims = self.params.get(&p("weight"))?.var.dims().to_vec();
                            let mut v = vec![0f32; dims.iter().product()];
                            src.fill(0, &mut v);
                            Tensor::from_vec(v, dims.as_slice(), &x.device().clone())?
                        }
                        _ => weight("weight")?,
                    };
                    let y = ops::conv2d(input(0)?, &w, *stride, *padding, *groups)?;
                    if *bias {
                        ops::add_channel_bias(&y, &weight("bias")?)?
                    } else {
                        y
                    }
                }
                Op::BatchNorm { eps, momentum, .. } => {
                    let gamma = weight("weight")?;
                    let beta = weight("bias")?;
                    let rm = self.params.get(&p("running_mean"))?;
                    let rv = self.params.get(&p("running_var"))?;
                    match mode {
                        Mode::Eval => ops::batch_norm_eval(
                            input(0)?,
                            &gamma,
                            &beta,
                            &rm.var.as_tensor().detach(),
                            &rv.var.as_tensor().detach(),
                            *eps,
                        )?,
                        Mode::Train { .. } => {
                            let (y, stats) = if fused[id] {
                                ops::batch_norm_relu_train(input(0)?, &gamma, &beta, *eps)?
                            } else {
                                ops::batch_norm_train(input(0)?, &gamma, &beta, *eps)?
                            };
                            let n = stats.count as f64;
                            let unbiased = if n > 1.0 { (stats.var * (n / (n - 1.0)))? } else { stats.var };
                            let m = *momentum;
                            rm.var.set(&((rm.var.as_tensor().detach() * (1.0 - m))? + (stats.mean * m)?)?)?;
                            rv.var.set(&((rv.var.as_tensor().detach() * (1.0 - m))? + (unbiased * m)?)?)?;
                            y
                        }
                    }
                }
                // The producer already applied the ReLU (see `relu_fusions`).
                Op::Relu if fused[node.inputs[0]] => input(0)?.clone(),
                Op::Relu => ops::relu(input(0)?)?,
                Op::MaxPool2d { kernel, stride, padding } => {
                    ops::max_pool2d(input(0)?, *kernel, *stride, *padding)?
                }
                Op::AvgPool2d { kernel, stride, padding } => {
                    ops::avg_pool2d(input(0)?, *kernel, *stride, *padding)?
                }
                Op::GlobalAvgPool => input(0)?.mean_keepdim((2, 3))?,
                Op::Flatten => input(0)?.flatten_from(1)?,
                Op::Add if fused[id] => ops::add_relu(input(0)?, input(1)?)?,
                Op::Add => (input(0)? + input(1)?)?,
                Op::ShortcutA { stride, pad_before, pad_after } => {
                    ops::shortcut_a_fused(input(0)?, *stride, *pad_before, *pad_after)?
                }
                Op::Dropout { p: prob } => match mode {
                    Mode::Train { seed } if *prob > 0.0 => {
                        dropout(input(0)?, *prob, seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))?
                    }
                    _ => input(0)?.clone(),
                },
            };
            let y = match self.act_quant.get(&node.name) {
                Some(slot) => ops::fake_quant(&y, &slot.fake_quant())?,
                None => y,
            };
            let y = match hooks {
                Some(h) if h.hooks_activation(&node.name) => h.activation(&node.name, &y)?,
                _ => y,
            };
            observe(id, &y)?;
            values[id] = Some(y);
            for &i in &node.inputs {
                if last_use[i] == id && i != out_id {
                    values[i] = None;
                }
            }
        }
        values[out_id].take().ok_or_else(|| IrError::Invalid("graph produced no output".into()))
    }

    /// Marks the nodes whose only consumer is a ReLU that can be folded into them: a `Linear`,
    /// a residual `Add`, and (in train mode) a `BatchNorm`. The fused kernels save a full pass and a
    /// temporary per pair; the numbers are identical to the unfused ops.
    fn relu_fusions(&self, mode: Mode, hooks: Option<&dyn ForwardHooks>) -> Vec<bool> {
        let nodes = &self.graph.nodes;
        let mut consumers = vec![0usize; nodes.len()];
        for node in nodes {
            for &i in &node.inputs {
                consumers[i] += 1;
            }
        }
        let out_id = self.graph.output();
        let mut fused = vec![false; nodes.len()];
        for node in nodes {
            if node.op != Op::Relu {
                continue;
            }
            let j = node.inputs[0];
            // A producer with an activation quantizer must emit its own output, not the ReLU's.
            if consumers[j] != 1
                || j == out_id
                || self.act_quant.contains_key(&nodes[j].name)
                || hooks.is_some_and(|h| h.hooks_activation(&nodes[j].name))
            {
                continue;
            }
            fused[j] = match nodes[j].op {
                Op::Add => true,
                Op::BatchNorm { .. } => matches!(mode, Mode::Train { .. }),
                Op::Linear { .. } => true,
                _ => false,
            };
        }
        fused
    }

    /// Output shape (without batch) of every node.
    pub fn shapes(&self) -> Result<Vec<Vec<usize>>> {
        self.graph.infer_shapes(&self.meta.input_shape)
    }
}

/// Inverted dropout with a seeded mask.
fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    if p >= 1.0 {
        return Ok(x.zeros_like()?);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f32> =
        (0..x.elem_count()).map(|_| if rng.random::<f32>() < p { 0.0 } else { keep }).collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok(x.mul(&mask)?)
}

//! Candle execution of open-IR graphs ([`shrink_graph::Graph`]): forward in eval or train mode
//! with autograd, so any imported model trains and fine-tunes. Each op is lowered by one
//! [`Lower`] impl in a family file (`nn`, `math`, `array`); [`lower_op`] is the one exhaustive
//! match. f32 constants become candle `Var`s: the trainable ones (weights, biases, norm scales,
//! embeddings) are returned by [`GraphModel::trainable_vars`]; batch-norm running statistics are
//! updated in train mode and written back by [`GraphModel::to_graph`].

pub mod array;
pub mod math;
pub mod nn;
pub mod quant;

use crate::error::{IrError, Result};
use candle_core::{DType as CDType, Device, Tensor, Var};
use shrink_graph::{DType, Dim, Graph, Op, TensorData, ValueDef, ValueId};
use std::cell::RefCell;
use std::collections::HashMap;

/// What a lowering may need besides its input tensors.
pub struct LowerCtx<'a> {
    /// Train mode: batch statistics in batch norm (and running statistics updated), dropout.
    pub train: bool,
    /// Batch-norm running-statistics momentum (PyTorch's default 0.1).
    pub bn_momentum: f64,
    /// Sizes of the symbolic dimensions (bound from the graph inputs).
    pub syms: &'a HashMap<String, usize>,
    pub device: &'a Device,
    /// New values for inputs of the node being lowered (input index → tensor), e.g. batch
    /// norm's running statistics in train mode; applied to those constants after the node.
    pub updates: RefCell<Vec<(usize, Tensor)>>,
}

impl LowerCtx<'_> {
    /// The size of a dimension.
    pub fn dim(&self, d: &Dim) -> Result<usize> {
        d.resolve(self.syms).map_err(IrError::Invalid)
    }

    /// Sizes of several dimensions.
    pub fn dims(&self, ds: &[Dim]) -> Result<Vec<usize>> {
        ds.iter().map(|d| self.dim(d)).collect()
    }

    /// Replace input `k` of the current node (a running statistic) after it runs.
    pub fn update_input(&self, k: usize, t: Tensor) {
        self.updates.borrow_mut().push((k, t));
    }
}

/// Lowering of one op to candle.
pub trait Lower {
    /// Outputs from inputs (in the node's input order). bool values are u8 tensors, integers i64.
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>>;
}

/// Lower one op (the one exhaustive match of the candle backend).
pub fn lower_op(op: &Op, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
    match op {
        Op::Conv(o) => o.lower(ins, ctx),
        Op::ConvTranspose(o) => o.lower(ins, ctx),
        Op::Gemm(o) => o.lower(ins, ctx),
        Op::MatMul(o) => o.lower(ins, ctx),
        Op::BatchNorm(o) => o.lower(ins, ctx),
        Op::LayerNorm(o) => o.lower(ins, ctx),
        Op::GroupNorm(o) => o.lower(ins, ctx),
        Op::InstanceNorm(o) => o.lower(ins, ctx),
        Op::Pool(o) => o.lower(ins, ctx),
        Op::GlobalPool(o) => o.lower(ins, ctx),
        Op::Resize(o) => o.lower(ins, ctx),
        Op::Unary(o) => o.lower(ins, ctx),
        Op::LeakyRelu(o) => o.lower(ins, ctx),
        Op::HardSigmoid(o) => o.lower(ins, ctx),
        Op::Elu(o) => o.lower(ins, ctx),
        Op::Gelu(o) => o.lower(ins, ctx),
        Op::Clip(o) => o.lower(ins, ctx),
        Op::Softmax(o) => o.lower(ins, ctx),
        Op::LogSoftmax(o) => o.lower(ins, ctx),
        Op::Binary(o) => o.lower(ins, ctx),
        Op::Where(o) => o.lower(ins, ctx),
        Op::Cast(o) => o.lower(ins, ctx),
        Op::Reduce(o) => o.lower(ins, ctx),
        Op::Reshape(o) => o.lower(ins, ctx),
        Op::Flatten(o) => o.lower(ins, ctx),
        Op::Transpose(o) => o.lower(ins, ctx),
        Op::Squeeze(o) => o.lower(ins, ctx),
        Op::Unsqueeze(o) => o.lower(ins, ctx),
        Op::Expand(o) => o.lower(ins, ctx),
        Op::Shape(o) => o.lower(ins, ctx),
        Op::Concat(o) => o.lower(ins, ctx),
        Op::Split(o) => o.lower(ins, ctx),
        Op::Slice(o) => o.lower(ins, ctx),
        Op::Pad(o) => o.lower(ins, ctx),
        Op::Gather(o) => o.lower(ins, ctx),
        Op::Identity(o) => o.lower(ins, ctx),
        Op::QuantizeLinear(o) => o.lower(ins, ctx),
        Op::DequantizeLinear(o) => o.lower(ins, ctx),
    }
}

/// An IR tensor as a candle tensor (bool → u8; candle has no i8/i32, so int8, uint8 and int32
/// values, exact in i64, become i64 tensors and [`from_candle`] gives them their dtype back).
pub fn to_candle(t: &shrink_graph::Tensor, device: &Device) -> Result<Tensor> {
    let shape = t.shape.as_slice();
    Ok(match &t.data {
        TensorData::F32(v) => Tensor::from_slice(v, shape, device)?,
        TensorData::I64(v) => Tensor::from_slice(v, shape, device)?,
        TensorData::Bool(v) => {
            Tensor::from_vec(v.iter().map(|&b| b as u8).collect::<Vec<u8>>(), shape, device)?
        }
        TensorData::I8(_) | TensorData::U8(_) | TensorData::I32(_) => {
            Tensor::from_vec(t.to_i64_vec(), shape, device)?
        }
    })
}

/// A candle tensor back as an IR tensor of `dtype`.
pub fn from_candle(t: &Tensor, dtype: DType) -> Result<shrink_graph::Tensor> {
    let shape = t.dims().to_vec();
    let flat = t.flatten_all()?;
    Ok(match dtype {
        DType::F32 => shrink_graph::Tensor::f32(shape, flat.to_dtype(CDType::F32)?.to_vec1::<f32>()?),
        DType::I64 => shrink_graph::Tensor::i64(shape, flat.to_dtype(CDType::I64)?.to_vec1::<i64>()?),
        DType::Bool => shrink_graph::Tensor::bool(
            shape,
            flat.to_dtype(CDType::U8)?.to_vec1::<u8>()?.into_iter().map(|b| b != 0).collect(),
        ),
        // Saturated to the dtype's range (the values came from a tensor of that dtype).
        d @ (DType::I8 | DType::U8 | DType::I32) => {
            shrink_graph::Tensor::from_i64s(d, shape, &flat.to_dtype(CDType::I64)?.to_vec1::<i64>()?)
        }
    })
}

/// Which inputs of an op are trained parameters when they are f32 constants.
fn trains_input(op: &Op, k: usize) -> bool {
    match op {
        Op::Conv(_) | Op::ConvTranspose(_) | Op::Gemm(_) | Op::MatMul(_) => k >= 1,
        Op::BatchNorm(_) => k == 1 || k == 2,
        Op::LayerNorm(_) | Op::GroupNorm(_) | Op::InstanceNorm(_) => k >= 1,
        // Biases added after a MatMul, position embeddings, class tokens, layer scales.
        Op::Binary(_) => true,
        Op::Gather(_) => k == 0,
        Op::Concat(_) => true,
        Op::Expand(_) => k == 0,
        _ => false,
    }
}

/// Give every batch norm's running statistics constants of their own. Exporters deduplicate
/// equal initializers, so a fresh model's running variance (ones) can be the very constant that
/// is also its scale, or another layer's: updating it in train mode would overwrite those.
fn untie_running_stats(graph: &mut Graph) -> Result<()> {
    let mut uses = vec![0usize; graph.values.len()];
    for n in &graph.nodes {
        for &v in &n.inputs {
            uses[v] += 1;
        }
    }
    for k in 0..graph.nodes.len() {
        if !matches!(graph.nodes[k].op, Op::BatchNorm(_)) {
            continue;
        }
        for slot in [3, 4] {
            let Some(&v) = graph.nodes[k].inputs.get(slot) else { continue };
            let Some(t) = graph.const_value(v) else { continue };
            if uses[v] > 1 {
                let t = t.clone();
                let base = format!(
                    "{}.{}",
                    graph.nodes[k].name,
                    if slot == 3 { "running_mean" } else { "running_var" }
                );
                let mut name = base.clone();
                let mut i = 0;
                while graph.find(&name).is_some() {
                    i += 1;
                    name = format!("{base}.{i}");
                }
                let id = graph.add_const(&name, t).map_err(|e| IrError::Invalid(e.to_string()))?;
                uses[v] -= 1;
                uses.push(1);
                graph.nodes[k].inputs[slot] = id;
            }
        }
    }
    Ok(())
}

/// An open-IR graph with its constants on a candle device.
pub struct GraphModel {
    pub graph: Graph,
    device: Device,
    /// Every constant as a candle value; f32 ones are `Var`s.
    consts: HashMap<ValueId, Var>,
    other_consts: HashMap<ValueId, Tensor>,
    trainable: Vec<ValueId>,
    /// Optional per-constant masks (pruned weights stay exactly zero).
    pub bn_momentum: f64,
}

impl GraphModel {
    /// Put `graph`'s constants on `device`. Trainable: f32 constants of rank ≥ 1 that some node
    /// reads as a weight, bias, normalization parameter or embedding.
    pub fn new(mut graph: Graph, device: &Device) -> Result<Self> {
        untie_running_stats(&mut graph)?;
        let mut consts = HashMap::new();
        let mut other_consts = HashMap::new();
        let mut trainable = Vec::new();
        let consumers = graph.consumers();
        for (id, v) in graph.values.iter().enumerate() {
            let ValueDef::Const(t) = &v.def else { continue };
            let c = to_candle(t, device)?;
            if t.dtype() == DType::F32 {
                let trains = !t.shape.is_empty()
                    && consumers[id].iter().any(|&n| {
                        let node = &graph.nodes[n];
                        node.inputs.iter().enumerate().any(|(k, &i)| i == id && trains_input(&node.op, k))
                    })
                    && !consumers[id].iter().any(|&n| {
                        matches!(&graph.nodes[n].op, Op::BatchNorm(_))
                            && graph.nodes[n].inputs[3..].contains(&id)
                    });
                if trains {
                    trainable.push(id);
                }
                consts.insert(id, Var::from_tensor(&c)?);
            } else {
                other_consts.insert(id, c);
            }
        }
        Ok(GraphModel { graph, device: device.clone(), consts, other_consts, trainable, bn_momentum: 0.1 })
    }

    /// The trained parameters by constant name (PyTorch names when the exporter kept them).
    pub fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.trainable
            .iter()
            .map(|&id| (self.graph.values[id].name.clone(), self.consts[&id].clone()))
            .collect()
    }

    /// Run the graph on `inputs` (graph input order); returns its outputs.
    pub fn forward(&self, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        let g = &self.graph;
        if inputs.len() != g.inputs.len() {
            return Err(IrError::Invalid(format!(
                "the graph has {} inputs, {} were given",
                g.inputs.len(),
                inputs.len()
            )));
        }
        let mut syms = HashMap::new();
        for (&id, t) in g.inputs.iter().zip(inputs) {
            let fact = &g.values[id].fact;
            if t.rank() != fact.rank() {
                return Err(IrError::Invalid(format!(
                    "input `{}` expects {fact}, got {:?}",
                    g.values[id].name,
                    t.dims()
                )));
            }
            for (d, &n) in fact.shape.iter().zip(t.dims()) {
                match d {
                    Dim::Sym(s) => {
                        syms.insert(s.clone(), n);
                    }
                    Dim::Fixed(k) if *k != n => {
                        return Err(IrError::Invalid(format!(
                            "input `{}` expects {fact}, got {:?}",
                            g.values[id].name,
                            t.dims()
                        )))
                    }
                    _ => {}
                }
            }
        }
        let mut vals: Vec<Option<Tensor>> = vec![None; g.values.len()];
        for (&id, t) in g.inputs.iter().zip(inputs) {
            vals[id] = Some(t.clone());
        }
        for (id, v) in &self.consts {
            vals[*id] = Some(v.as_tensor().clone());
        }
        for (id, t) in &self.other_consts {
            vals[*id] = Some(t.clone());
        }
        let mut reads = vec![0usize; g.values.len()];
        for n in &g.nodes {
            for &v in &n.inputs {
                reads[v] += 1;
            }
        }
        for &o in &g.outputs {
            reads[o] += 1;
        }
        for node in &g.nodes {
            let ctx = LowerCtx {
                train,
                bn_momentum: self.bn_momentum,
                syms: &syms,
                device: &self.device,
                updates: RefCell::new(vec![]),
            };
            let ins: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|&v| {
                    vals[v].as_ref().ok_or_else(|| {
                        IrError::Invalid(format!(
                            "node `{}`: input `{}` has no value",
                            node.name, g.values[v].name
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            let outs = lower_op(&node.op, &ins, &ctx)
                .map_err(|e| IrError::Node { node: node.name.clone(), msg: e.to_string() })?;
            for (k, t) in ctx.updates.into_inner() {
                let id = node.inputs[k];
                if let Some(var) = self.consts.get(&id) {
                    var.set(&t.detach())?;
                }
            }
            for &v in &node.inputs {
                reads[v] -= 1;
                if reads[v] == 0 && !matches!(g.values[v].def, ValueDef::Const(_)) {
                    vals[v] = None;
                }
            }
            for (&o, t) in node.outputs.iter().zip(outs) {
                vals[o] = Some(t);
            }
        }
        g.outputs
            .iter()
            .map(|&o| {
                vals[o].clone().ok_or_else(|| {
                    IrError::Invalid(format!("output `{}` was not computed", g.values[o].name))
                })
            })
            .collect()
    }

    /// The graph with the current constant values (trained weights, running statistics).
    pub fn to_graph(&self) -> Result<Graph> {
        let mut g = self.graph.clone();
        for (&id, var) in &self.consts {
            g.set_const(id, from_candle(var.as_tensor(), DType::F32)?);
        }
        Ok(g)
    }
}

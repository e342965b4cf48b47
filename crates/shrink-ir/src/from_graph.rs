//! Conversion of an open-IR graph ([`shrink_graph::Graph`]) into a layer [`Model`]: the inverse
//! of [`Model::to_graph`], and the second half of ONNX import (`shrink_io::onnx::import_onnx`
//! is the graph importer followed by [`Model::from_graph`]).
//!
//! Nodes are walked in order; every value is a constant or the output of a layer. The patterns
//! the 12 layer ops express map to them: Conv (2-D, symmetric pads, no dilation) → Conv2d;
//! Gemm / MatMul with a constant weight, plus an Add of a constant right after → Linear;
//! BatchNorm on (N,C) or (N,C,H,W) → BatchNorm; Relu and Clip(0, ∞) → ReLU; 2-D max/average
//! pools → MaxPool2d/AvgPool2d; GlobalAveragePool and ReduceMean over H,W → GlobalAvgPool;
//! Flatten / Reshape / Squeeze that keep the batch and flatten the rest → Flatten; Add of two
//! layers → Add; a strided Slice on H,W and zero padding of the channels → ShortcutA; Identity
//! and f32 Casts pass through; a trailing Softmax / LogSoftmax is dropped (the layer IR works on
//! logits: the predicted class is the same and the loss starts from logits). Anything else is
//! the one-line error "node `X` (Op) does not fit the layer IR; use --engine graph".
//!
//! The batch is axis 0 of the graph's one input (symbolic or fixed); the model's input shape is
//! the rest. Layer names come from weight names and exporter scopes (see [`names`]).

mod names;

use crate::error::{IrError, Result};
use crate::graph::{Graph as Layers, NodeId, Op as L};
use crate::model::{Model, ModelMeta};
use crate::params::ParamStore;
use crate::zoo;
use candle_core::Device;
use shrink_graph::ops::activation::UnaryKind;
use shrink_graph::ops::binary::BinaryKind;
use shrink_graph::ops::combine::PadMode;
use shrink_graph::ops::pool::PoolKind;
use shrink_graph::ops::reduce::ReduceKind;
use shrink_graph::{DType, Dim, Graph, Node, Op, Tensor, ValueDef, ValueId};
use std::collections::HashMap;

/// Why a node does not fit; completed with the node and op by [`unfit`].
type R<T> = std::result::Result<T, String>;

/// Largest kernel, stride, pad or slice step accepted (keeps size arithmetic far from overflow).
const MAX_SIZE: usize = 1 << 16;

/// A value of the graph as the layer model sees it.
#[derive(Clone)]
enum Val {
    /// A constant of the graph.
    Const(ValueId),
    /// Output of layer `id`; `sub` is a pending `x[:, :, ::sub[0], ::sub[1]]` (a strided Slice)
    /// that becomes part of a ShortcutA when a channel Pad follows, or its own node otherwise.
    Dyn { id: NodeId, sub: [usize; 2], sub_name: String },
}

fn dyn_val(id: NodeId) -> Val {
    Val::Dyn { id, sub: [1, 1], sub_name: String::new() }
}

/// The one-line error for a node the layer IR cannot express.
fn unfit(node: &Node, why: &str) -> IrError {
    let op = node.op.def().name();
    let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
    IrError::Invalid(format!(
        "node `{}` ({op}) does not fit the layer IR{why}; use --engine graph",
        node.name
    ))
}

/// Symmetric 2-D pads `[top, left, bottom, right]` → `[h, w]`.
fn sym_pads(p: &[usize]) -> R<[usize; 2]> {
    match p {
        &[t, l, b, r] if t == b && l == r && t < MAX_SIZE && l < MAX_SIZE => Ok([t, l]),
        _ => Err(format!("pads {p:?} are not symmetric")),
    }
}

fn pair(v: &[usize], what: &str) -> R<[usize; 2]> {
    match v {
        &[a, b] if (1..MAX_SIZE).contains(&a) && (1..MAX_SIZE).contains(&b) => Ok([a, b]),
        _ => Err(format!("{what} {v:?}: two positive values expected (2-D only)")),
    }
}

/// The conversion state.
struct Convert<'g> {
    g: &'g Graph,
    layers: Layers,
    /// Parameter tensors by full name (`{layer}.{suffix}`): shape and values.
    weights: HashMap<String, (Vec<usize>, Vec<f32>)>,
    vals: HashMap<ValueId, Val>,
    consumers: Vec<Vec<shrink_graph::NodeId>>,
    names: names::Names,
    /// Axis 0 of the graph input.
    batch: Dim,
}

impl<'g> Convert<'g> {
    fn val(&self, v: ValueId) -> R<Val> {
        if let ValueDef::Const(_) = self.g.values[v].def {
            return Ok(Val::Const(v));
        }
        self.vals.get(&v).cloned().ok_or_else(|| format!("reads `{}`, which no layer computes", self.name(v)))
    }

    fn name(&self, v: ValueId) -> &str {
        &self.g.values[v].name
    }

    /// The per-example shape of a value (its fact without the batch axis), which must be fixed.
    fn dims(&self, v: ValueId) -> R<Vec<usize>> {
        let f = &self.g.values[v].fact;
        if f.shape.first() != Some(&self.batch) {
            return Err(format!("`{}` {f} does not keep the batch dimension {}", self.name(v), self.batch));
        }
        f.shape[1..]
            .iter()
            .map(|d| d.fixed().ok_or_else(|| format!("`{}` {f} has a symbolic dimension", self.name(v))))
            .collect()
    }

    /// An f32 constant input.
    fn konst(&self, v: ValueId) -> R<&'g Tensor> {
        match self.g.const_value(v) {
            Some(t) if t.dtype() == DType::F32 => Ok(t),
            Some(t) => Err(format!("`{}` is a {:?} constant, f32 expected", self.name(v), t.dtype())),
            None => Err(format!("`{}` must be a constant (a weight)", self.name(v))),
        }
    }

    fn push(&mut self, name: String, op: L, inputs: Vec<NodeId>) -> NodeId {
        self.layers.push(name, op, inputs)
    }

    /// The layer of a value (materializing a pending subsample as a ShortcutA).
    fn node_of(&mut self, v: &Val) -> R<NodeId> {
        match v {
            Val::Const(c) => Err(format!("expects a layer output, got the constant `{}`", self.name(*c))),
            Val::Dyn { id, sub, .. } if *sub == [1, 1] => Ok(*id),
            Val::Dyn { id, sub, sub_name } => {
                if sub[0] != sub[1] {
                    return Err(format!("strided slice {sub:?} with unequal H/W steps"));
                }
                let name = self.names.unique(sub_name.clone());
                Ok(self.push(name, L::ShortcutA { stride: sub[0], pad_before: 0, pad_after: 0 }, vec![*id]))
            }
        }
    }

    fn set_out(&mut self, node: &Node, v: Val) {
        if let Some(&o) = node.outputs.first() {
            self.vals.insert(o, v);
        }
    }

    fn add_weight(&mut self, name: String, dims: Vec<usize>, values: Vec<f32>) {
        self.weights.insert(name, (dims, values));
    }

    /// A weightless layer `op` on `x`.
    fn unary(&mut self, node: &Node, x: &Val, op: L) -> R<()> {
        let xid = self.node_of(x)?;
        let name = self.names.plain(&node.name, node.op.def().name());
        let id = self.push(name, op, vec![xid]);
        self.set_out(node, dyn_val(id));
        Ok(())
    }

    /// A Flatten of `x` (nothing when it is already flat).
    fn flatten(&mut self, node: &Node, x: &Val, xv: ValueId) -> R<()> {
        if self.dims(xv)?.len() == 1 {
            self.set_out(node, x.clone());
            return Ok(());
        }
        self.unary(node, x, L::Flatten)
    }

    fn node(&mut self, node: &Node) -> R<()> {
        let ins: Vec<Val> = node.inputs.iter().map(|&v| self.val(v)).collect::<R<_>>()?;
        let Some(x) = ins.first().cloned() else { return Err("it has no input".into()) };
        if ins.iter().all(|v| matches!(v, Val::Const(_))) {
            return Err("it computes from constants only".into());
        }
        let xv = node.inputs[0];
        match &node.op {
            Op::Conv(c) => {
                let xid = self.node_of(&x)?;
                let w = self.konst(node.inputs[1])?;
                if w.shape.len() != 4 {
                    return Err(format!("only 2-D convolutions (weight shape {:?})", w.shape));
                }
                if c.dilations.iter().any(|&d| d != 1) {
                    return Err(format!("dilations {:?}", c.dilations));
                }
                let stride = pair(&c.strides, "strides")?;
                let padding = sym_pads(&c.pads)?;
                let b = match node.inputs.get(2) {
                    Some(&b) => Some(self.konst(b)?.to_f32_vec()),
                    None => None,
                };
                let in_channels = self.dims(xv)?.first().copied().unwrap_or(0);
                let out = w.shape[0];
                let wname = self.name(node.inputs[1]).to_string();
                let name = self.names.layer(&node.name, "Conv", Some(&wname));
                self.add_weight(format!("{name}.weight"), w.shape.clone(), w.to_f32_vec());
                let bias = b.is_some();
                if let Some(b) = b {
                    self.add_weight(format!("{name}.bias"), vec![out], b);
                }
                let op = L::Conv2d {
                    in_channels,
                    out_channels: out,
                    kernel: [w.shape[2], w.shape[3]],
                    stride,
                    padding,
                    groups: c.groups,
                    bias,
                };
                let id = self.push(name, op, vec![xid]);
                self.set_out(node, dyn_val(id));
            }
            Op::Gemm(gm) => {
                if gm.trans_a {
                    return Err("transA=1".into());
                }
                let c = node.inputs.get(2).map(|&c| (c, gm.beta));
                self.linear(node, &x, gm.trans_b, gm.alpha, c)?;
            }
            Op::MatMul(_) => self.linear(node, &x, false, 1.0, None)?,
            Op::Binary(b) if b.kind == BinaryKind::Add => {
                let y = ins[1].clone();
                match (&x, &y) {
                    (Val::Dyn { .. }, Val::Dyn { .. }) => {
                        let a = self.node_of(&x)?;
                        let b = self.node_of(&y)?;
                        let name = self.names.plain(&node.name, "Add");
                        let id = self.push(name, L::Add, vec![a, b]);
                        self.set_out(node, dyn_val(id));
                    }
                    (Val::Const(c), d) | (d, Val::Const(c)) => {
                        let dv = if matches!(x, Val::Dyn { .. }) { node.inputs[0] } else { node.inputs[1] };
                        let id = self.add_bias(d, dv, *c)?;
                        self.set_out(node, dyn_val(id));
                    }
                }
            }
            Op::BatchNorm(bn) => {
                let xid = self.node_of(&x)?;
                let xs = self.dims(xv)?;
                if !(xs.len() == 1 || xs.len() == 3) {
                    return Err(format!("input shape {xs:?} ((N,C) or (N,C,H,W) expected)"));
                }
                let c = xs[0];
                let mut vals = Vec::new();
                for k in 1..5 {
                    let t = self.konst(node.inputs[k])?;
                    if t.len() != c {
                        return Err(format!("input {k} has shape {:?}, the input has {c} channels", t.shape));
                    }
                    vals.push(t.to_f32_vec());
                }
                // eps is an f32 in the graph; take its shortest decimal form (1e-5, not 9.99999974e-6).
                let eps: f64 = bn.epsilon.to_string().parse().unwrap_or(1e-5);
                let wname = self.name(node.inputs[1]).to_string();
                let name = self.names.layer(&node.name, "BatchNormalization", Some(&wname));
                for (suffix, v) in ["weight", "bias", "running_mean", "running_var"].iter().zip(vals) {
                    self.add_weight(format!("{name}.{suffix}"), vec![c], v);
                }
                // The graph carries no momentum: PyTorch's default.
                let id = self.push(name, L::BatchNorm { num_features: c, eps, momentum: 0.1 }, vec![xid]);
                self.set_out(node, dyn_val(id));
            }
            Op::Unary(u) if u.kind == UnaryKind::Relu => self.unary(node, &x, L::Relu)?,
            Op::Clip(c) if c.min == Some(0.0) && c.max.is_none_or(|m| m >= f32::MAX) => {
                self.unary(node, &x, L::Relu)?
            }
            Op::Pool(p) => {
                let xs = self.dims(xv)?;
                if xs.len() != 3 {
                    return Err(format!("input shape {xs:?} (N,C,H,W expected)"));
                }
                if p.dilations.iter().any(|&d| d != 1) {
                    return Err(format!("dilations {:?}", p.dilations));
                }
                let kernel = pair(&p.kernel, "kernel")?;
                let stride = pair(&p.strides, "strides")?;
                let padding = sym_pads(&p.pads)?;
                if p.ceil_mode {
                    // The same output as floor mode when the windows fit exactly.
                    for d in 0..2 {
                        let span = xs[d + 1] + 2 * padding[d];
                        if span < kernel[d] || !(span - kernel[d]).is_multiple_of(stride[d]) {
                            return Err("ceil_mode=1 for this input size".into());
                        }
                    }
                }
                let op = match p.kind {
                    PoolKind::Max => L::MaxPool2d { kernel, stride, padding },
                    PoolKind::Avg if padding != [0, 0] && !p.count_include_pad => {
                        return Err("padded average pooling with count_include_pad=0".into())
                    }
                    PoolKind::Avg => L::AvgPool2d { kernel, stride, padding },
                };
                self.unary(node, &x, op)?
            }
            Op::GlobalPool(p) if p.kind == PoolKind::Avg => {
                let xs = self.dims(xv)?;
                if xs.len() != 3 {
                    return Err(format!("input shape {xs:?} (N,C,H,W expected)"));
                }
                self.unary(node, &x, L::GlobalAvgPool)?
            }
            Op::Reduce(r) if r.kind == ReduceKind::Mean => {
                let xs = self.dims(xv)?;
                let mut ax: Vec<usize> = r
                    .axes
                    .iter()
                    .map(|&a| shrink_graph::fact::normalize_axis(a, xs.len() + 1).map_err(|e| e.to_string()))
                    .collect::<R<_>>()?;
                ax.sort_unstable();
                if xs.len() != 3 || ax != [2, 3] {
                    return Err(format!("a mean over axes {:?} (only over H and W)", r.axes));
                }
                let xid = self.node_of(&x)?;
                let name = self.names.plain(&node.name, "ReduceMean");
                let mut id = self.push(name.clone(), L::GlobalAvgPool, vec![xid]);
                if !r.keepdims {
                    let fname = self.names.unique(format!("{name}.flatten"));
                    id = self.push(fname, L::Flatten, vec![id]);
                }
                self.set_out(node, dyn_val(id));
            }
            Op::Flatten(f) => {
                let rank = self.dims(xv)?.len() as i64 + 1;
                let a = if f.axis < 0 { f.axis + rank } else { f.axis };
                if a != 1 {
                    return Err(format!("axis {} (only 1)", f.axis));
                }
                self.flatten(node, &x, xv)?
            }
            Op::Reshape(_) | Op::Squeeze(_) => {
                let xs = self.dims(xv)?;
                let ys = self.dims(node.outputs[0])?;
                if ys == xs {
                    self.set_out(node, x.clone());
                } else if ys.len() == 1 {
                    self.flatten(node, &x, xv)?
                } else {
                    return Err(format!("{xs:?} to {ys:?} per example (only flattening)"));
                }
            }
            Op::Identity(_) => self.set_out(node, x.clone()),
            Op::Cast(c) if c.to == DType::F32 && self.g.values[xv].fact.dtype == DType::F32 => {
                self.set_out(node, x.clone())
            }
            Op::Softmax(_) | Op::LogSoftmax(_) => {
                let out = node.outputs[0];
                if !self.consumers[out].is_empty() || !self.g.outputs.contains(&out) {
                    return Err("only as the last op of the graph".into());
                }
                // Dropped: argmax is unchanged and shrink's loss starts from logits.
                self.set_out(node, x.clone());
            }
            Op::Slice(s) => self.slice(node, &x, s)?,
            Op::Pad(p) => self.pad(node, &x, p)?,
            _ => return Err(String::new()),
        }
        Ok(())
    }

    /// Gemm / MatMul with a constant weight → Linear; `c`: the bias input and its beta.
    fn linear(
        &mut self,
        node: &Node,
        x: &Val,
        trans_b: bool,
        alpha: f32,
        c: Option<(ValueId, f32)>,
    ) -> R<()> {
        let xid = self.node_of(x)?;
        let wv = node.inputs[1];
        let b = self.konst(wv)?;
        let [k, n] = b.shape[..] else {
            return Err(format!("the weight must be a matrix, got shape {:?}", b.shape));
        };
        let data = b.to_f32_vec();
        let (out, inf, mut w) = if trans_b {
            (k, n, data)
        } else {
            // [in, out] → [out, in].
            let mut t = vec![0f32; data.len()];
            for i in 0..k {
                for j in 0..n {
                    t[j * k + i] = data[i * n + j];
                }
            }
            (n, k, t)
        };
        let xs = self.dims(node.inputs[0])?;
        if xs != [inf] {
            return Err(format!("input shape {xs:?} does not match weight [{out}, {inf}] (flatten first)"));
        }
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let bias = match c {
            None => None,
            Some((c, beta)) => {
                let t = self.konst(c)?;
                let v = t.to_f32_vec();
                let v = match (t.shape.as_slice(), v.len()) {
                    (_, 1) => vec![v[0]; out],
                    ([k] | [1, k], _) if *k == out => v,
                    (s, _) => return Err(format!("bias shape {s:?} does not broadcast to [{out}]")),
                };
                Some(v.into_iter().map(|x| x * beta).collect::<Vec<f32>>())
            }
        };
        let wname = self.name(wv).to_string();
        let name = self.names.layer(&node.name, node.op.def().name(), Some(&wname));
        self.add_weight(format!("{name}.weight"), vec![out, inf], w);
        let has_bias = bias.is_some();
        if let Some(b) = bias {
            self.add_weight(format!("{name}.bias"), vec![out], b);
        }
        let id =
            self.push(name, L::Linear { in_features: inf, out_features: out, bias: has_bias }, vec![xid]);
        self.set_out(node, dyn_val(id));
        Ok(())
    }

    /// `layer + constant`: folded into the bias of the Conv/Linear that produced `layer` (the
    /// last layer so far, read by nothing else).
    fn add_bias(&mut self, d: &Val, dv: ValueId, c: ValueId) -> R<NodeId> {
        let id = match d {
            Val::Dyn { id, sub, .. } if *sub == [1, 1] => *id,
            _ => return Err("adding a constant to a strided slice".into()),
        };
        let t = self.konst(c)?;
        let single_use = self.consumers[dv].len() == 1 && !self.g.outputs.contains(&dv);
        let node = &self.layers.nodes[id];
        let name = node.name.clone();
        let (out, ok_dims) = match &node.op {
            L::Linear { out_features, .. } => {
                (*out_features, matches!(t.shape.as_slice(), [k] | [1, k] if *k == *out_features))
            }
            L::Conv2d { out_channels, .. } => {
                (*out_channels, matches!(t.shape.as_slice(), [k, 1, 1] | [1, k, 1, 1] if *k == *out_channels))
            }
            _ => (0, false),
        };
        if !single_use || !ok_dims || id != self.layers.output() {
            return Err(format!(
                "adding a constant of shape {:?} is supported only as the bias of the Conv/Gemm/MatMul right before it",
                t.shape
            ));
        }
        let add = t.to_f32_vec();
        let key = format!("{name}.bias");
        match self.weights.get_mut(&key) {
            Some((_, b)) => b.iter_mut().zip(&add).for_each(|(b, a)| *b += a),
            None => self.add_weight(key, vec![out], add),
        }
        if let L::Linear { bias, .. } | L::Conv2d { bias, .. } = &mut self.layers.nodes[id].op {
            *bias = true;
        }
        Ok(id)
    }

    /// Slice of a layer output: only `::s` on H and W (start 0, to the end) fits.
    fn slice(&mut self, node: &Node, x: &Val, s: &shrink_graph::ops::combine::Slice) -> R<()> {
        let Val::Dyn { id, mut sub, sub_name } = x.clone() else { return Err("slices a constant".into()) };
        let xs = self.dims(node.inputs[0])?;
        let rank = xs.len() + 1;
        let n = s.starts.len();
        let axes: Vec<i64> = if s.axes.is_empty() { (0..n as i64).collect() } else { s.axes.clone() };
        let steps: Vec<i64> = if s.steps.is_empty() { vec![1; n] } else { s.steps.clone() };
        if s.ends.len() != n || axes.len() != n || steps.len() != n {
            return Err("starts/ends/axes/steps differ in length".into());
        }
        for k in 0..n {
            let a = shrink_graph::fact::normalize_axis(axes[k], rank).map_err(|e| e.to_string())?;
            let full =
                if a == 0 { self.batch.fixed().map_or(i64::MAX / 2, |b| b as i64) } else { xs[a - 1] as i64 };
            let (st, e, step) = (s.starts[k], s.ends[k], steps[k]);
            if !(st == 0 && e >= full && step >= 1) {
                return Err(format!("[{st}:{e}:{step}] on axis {a} (only full strided ranges)"));
            }
            if step > 1 {
                if rank != 4 || a < 2 || step as usize > MAX_SIZE {
                    return Err(format!("a strided slice on axis {a} (only H and W)"));
                }
                sub[a - 2] = sub[a - 2].saturating_mul(step as usize).min(MAX_SIZE);
            }
        }
        let sub_name = if sub_name.is_empty() { self.names.plain(&node.name, "Slice") } else { sub_name };
        self.set_out(node, Val::Dyn { id, sub, sub_name });
        Ok(())
    }

    /// Zero padding of the channels (after an optional `::s` subsample) → ShortcutA.
    fn pad(&mut self, node: &Node, x: &Val, p: &shrink_graph::ops::combine::Pad) -> R<()> {
        if p.mode != PadMode::Constant || p.value != 0.0 {
            return Err("only zero padding".into());
        }
        let rank = self.dims(node.inputs[0])?.len() + 1;
        let Val::Dyn { id, sub, .. } = x.clone() else { return Err("pads a constant".into()) };
        let pads = &p.pads;
        let only_channels =
            pads.len() == 2 * rank && (0..rank).all(|a| a == 1 || (pads[a] == 0 && pads[a + rank] == 0));
        let ok = |v: i64| (0..MAX_SIZE as i64).contains(&v);
        if rank != 4 || !only_channels || !ok(pads[1]) || !ok(pads[1 + rank]) {
            return Err(format!("pads {pads:?} (only zero padding of the channels of N,C,H,W)"));
        }
        let (before, after) = (pads[1] as usize, pads[5] as usize);
        if before == 0 && after == 0 {
            self.set_out(node, x.clone());
            return Ok(());
        }
        if sub[0] != sub[1] {
            return Err(format!("strided slice {sub:?} with unequal H/W steps"));
        }
        let name = self.names.plain(&node.name, "Pad");
        let id =
            self.push(name, L::ShortcutA { stride: sub[0], pad_before: before, pad_after: after }, vec![id]);
        self.set_out(node, dyn_val(id));
        Ok(())
    }
}

/// Keeps only the layers the output depends on (dropping e.g. a branch that fed nothing).
fn compact(graph: &Layers, out: NodeId) -> Layers {
    let mut keep = vec![false; graph.nodes.len()];
    keep[out] = true;
    keep[0] = true;
    for id in (0..=out).rev() {
        if keep[id] {
            for &i in &graph.nodes[id].inputs {
                keep[i] = true;
            }
        }
    }
    let mut map = vec![usize::MAX; graph.nodes.len()];
    let mut g = Layers { nodes: Vec::new() };
    for (id, node) in graph.nodes.iter().enumerate().take(out + 1) {
        if keep[id] {
            map[id] = g.nodes.len();
            let mut node = node.clone();
            node.inputs = node.inputs.iter().map(|&i| map[i]).collect();
            g.nodes.push(node);
        }
    }
    g
}

/// The metadata a converted graph gets: the zoo architecture's when the layers are one, else
/// `custom`; MNIST/CIFAR normalization for their input shapes, none otherwise.
fn default_meta(graph: &Layers, input_shape: &[usize], classes: usize) -> ModelMeta {
    let arch = zoo::ARCHS.iter().find(|a| zoo::graph(a).is_ok_and(|z| &z == graph)).copied();
    let arch = arch.unwrap_or("custom");
    let mut meta = if input_shape == [3, 32, 32] {
        zoo::cifar_meta(arch)
    } else if input_shape == [1, 28, 28] {
        zoo::mnist_meta(arch)
    } else {
        let c = input_shape[0];
        ModelMeta {
            arch: arch.into(),
            input_shape: input_shape.to_vec(),
            mean: vec![0.0; c],
            std: vec![1.0; c],
            classes: vec![],
        }
    };
    if meta.classes.len() != classes {
        meta.classes = (0..classes).map(|i| i.to_string()).collect();
    }
    meta
}

impl Model {
    /// The layer model a graph expresses (see the module documentation for the patterns), with
    /// default metadata ([`ModelMeta`] of the zoo architecture it equals, else `custom`). A graph
    /// the 12 layer ops cannot express is a one-line error naming the first node that does not
    /// fit.
    pub fn from_graph(g: &Graph) -> Result<Model> {
        let inv = |msg: String| IrError::Invalid(format!("{msg}; use --engine graph"));
        let input = match g.inputs.as_slice() {
            [i] => *i,
            [] => return Err(IrError::Invalid("the graph has no input".into())),
            more => {
                let names: Vec<&str> = more.iter().map(|&i| g.values[i].name.as_str()).collect();
                return Err(inv(format!(
                    "the graph has {} inputs ({}); the layer IR takes one",
                    more.len(),
                    names.join(", ")
                )));
            }
        };
        let fact = &g.values[input].fact;
        let iname = &g.values[input].name;
        if fact.dtype != DType::F32 {
            return Err(inv(format!("input `{iname}` is {fact}, the layer IR takes f32")));
        }
        if fact.rank() < 2 {
            return Err(inv(format!("input `{iname}` {fact} has no (batch, ...) layout")));
        }
        let input_shape: Vec<usize> = fact.shape[1..]
            .iter()
            .map(|d| match d {
                Dim::Fixed(v) if (1..=1 << 20).contains(v) => Ok(*v),
                d => Err(inv(format!("input `{iname}` has non-static dimension {d}"))),
            })
            .collect::<Result<_>>()?;
        let mut cv = Convert {
            g,
            layers: Layers::new(),
            weights: HashMap::new(),
            vals: HashMap::from([(input, dyn_val(0))]),
            consumers: g.consumers(),
            names: names::Names::new(),
            batch: fact.shape[0].clone(),
        };
        for node in &g.nodes {
            cv.node(node).map_err(|why| unfit(node, &why))?;
        }
        let &out_v = g.outputs.first().ok_or_else(|| IrError::Invalid("the graph has no output".into()))?;
        let out_val = cv.val(out_v).map_err(IrError::Invalid)?;
        if let Val::Const(_) = out_val {
            return Err(IrError::Invalid(format!(
                "the graph output `{}` is a constant",
                g.values[out_v].name
            )));
        }
        let out = cv.node_of(&out_val).map_err(IrError::Invalid)?;
        if out == 0 {
            return Err(IrError::Invalid("the graph output is its input (no layers)".into()));
        }
        let graph = compact(&cv.layers, out);
        let mut store = ParamStore::new();
        for node in &graph.nodes {
            for spec in node.op.params() {
                let name = format!("{}.{}", node.name, spec.suffix);
                let (dims, v) = cv
                    .weights
                    .remove(&name)
                    .ok_or_else(|| IrError::Invalid(format!("internal: weight `{name}` missing")))?;
                let t = candle_core::Tensor::from_vec(v, dims.as_slice(), &Device::Cpu)?;
                store.insert(name, t, spec.kind)?;
            }
        }
        let shapes = graph.infer_shapes(&input_shape)?;
        let classes: usize = shapes[graph.output()].iter().product();
        let meta = default_meta(&graph, &input_shape, classes);
        Model::new(graph, store, meta)
    }
}

//! ONNX → shrink IR.
//!
//! The graph is walked in order. Values are either constants (initializers, `Constant` nodes
//! and everything computed only from them, folded by [`super::import_const`]) or outputs of IR
//! nodes. Shape subgraphs therefore collapse to constants, and the layers map to IR ops:
//! Conv → Conv2d, Gemm / MatMul (+ Add of a constant) → Linear, BatchNormalization →
//! BatchNorm, Relu and Clip(0, ∞) → ReLU, MaxPool, AveragePool, GlobalAveragePool / ReduceMean
//! over H,W → GlobalAvgPool, Flatten / Reshape(batch, -1) / Squeeze → Flatten, Add of two
//! layers → Add, Slice(::s on H,W) + Pad(channels) → ShortcutA, Dropout → Dropout, and
//! Identity / Cast to float pass through; a trailing Softmax is dropped (it changes neither the
//! predicted class nor, since shrink computes the loss from logits, the loss).
//!
//! Layer names: a weight initializer called like a PyTorch parameter (`layer1.0.conv1.weight`)
//! names its layer; otherwise the name comes from the node's scope (`/layer1/layer1.0/conv1/Conv`
//! → `layer1.0.conv1`), so imported graphs have the same stable PyTorch-style names as zoo ones.
use super::decode::{self, AttributeProto, Dim, NodeProto};
use super::import_const::{self as fold, Const, BATCH};
use crate::error::{IoError, Result};
use candle_core::{Device, Tensor};
use shrink_ir::{zoo, Graph, Model, ModelMeta, NodeId, Op, ParamStore};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

type R<T> = std::result::Result<T, String>;

/// A value flowing through the ONNX graph.
#[derive(Clone)]
enum Val {
    Const(Rc<Const>),
    /// Output of IR node `id`; `sub` is a pending `x[:, :, ::sub[0], ::sub[1]]` (from Slice)
    /// that becomes part of a ShortcutA when a Pad follows, or its own node otherwise.
    Dyn {
        id: NodeId,
        sub: [usize; 2],
        sub_name: String,
    },
}

fn dyn_val(id: NodeId) -> Val {
    Val::Dyn { id, sub: [1, 1], sub_name: String::new() }
}

fn attr<'n, 'a>(n: &'n NodeProto<'a>, name: &str) -> Option<&'n AttributeProto<'a>> {
    n.attributes.iter().find(|a| a.name == name)
}

fn attr_int(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_float(n: &NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

fn attr_str(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).and_then(|a| a.s).map(|s| String::from_utf8_lossy(s).into_owned())
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect()
}

/// Splits an exporter node name `/layer1/layer1.0/conv1/Conv` into its module scope
/// (`layer1.0.conv1`: a scope part that extends the previous one replaces it) and leaf (`Conv`).
fn scope_leaf(name: &str) -> (String, String) {
    if !name.contains('/') {
        return (String::new(), name.to_string());
    }
    let parts: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
    let Some((leaf, scopes)) = parts.split_last() else { return (String::new(), String::new()) };
    let mut scope = String::new();
    for s in scopes {
        if scope.is_empty() || s.starts_with(&format!("{scope}.")) {
            scope = s.to_string();
        } else {
            scope = format!("{scope}.{s}");
        }
    }
    (scope, leaf.to_string())
}

fn pytorch_like(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix.starts_with('.')
        && !prefix.ends_with('.')
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Largest kernel, stride, pad or slice step accepted (keeps all size arithmetic far from overflow).
const MAX_SIZE: i64 = 1 << 16;

/// 2-D pads `[top, left, bottom, right]` → symmetric `[h, w]`.
fn sym_pads(p: Option<Vec<i64>>) -> R<[usize; 2]> {
    let p = p.unwrap_or_else(|| vec![0; 4]);
    let ok = |v: i64| (0..MAX_SIZE).contains(&v);
    match p.as_slice() {
        &[t, l, b, r] if t == b && l == r && ok(t) && ok(l) => Ok([t as usize, l as usize]),
        _ => Err(format!("pads {p:?} are not symmetric and non-negative (unsupported)")),
    }
}

fn pair(v: Option<Vec<i64>>, default: usize, what: &str) -> R<[usize; 2]> {
    match v.as_deref() {
        None => Ok([default, default]),
        Some(&[a, b]) if (1..MAX_SIZE).contains(&a) && (1..MAX_SIZE).contains(&b) => {
            Ok([a as usize, b as usize])
        }
        Some(v) => Err(format!("{what} {v:?} unsupported (two positive values expected)")),
    }
}

struct Importer {
    graph: Graph,
    shapes: Vec<Vec<usize>>,
    input_shape: Vec<usize>,
    fixed_batch: Option<i64>,
    /// Parameter tensors by full name (`{layer}.{suffix}`): shape and values.
    weights: HashMap<String, (Vec<usize>, Vec<f32>)>,
    values: HashMap<String, Val>,
    /// How many node inputs (and graph outputs) read each value.
    consumers: HashMap<String, usize>,
    graph_outputs: HashSet<String>,
    /// Outputs of a dropped trailing Softmax: nothing may read them.
    dropped: HashSet<String>,
    used_names: HashSet<String>,
    counter: usize,
}

impl Importer {
    fn get(&self, name: &str) -> R<Val> {
        if self.dropped.contains(name) {
            return Err(format!(
                "reads `{name}`, the output of a Softmax (only a trailing Softmax is supported)"
            ));
        }
        self.values.get(name).cloned().ok_or_else(|| format!("input `{name}` is produced by no earlier node"))
    }

    fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut k = 1;
        while self.used_names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used_names.insert(name.clone());
        name
    }

    fn fallback(&mut self, n: &NodeProto) -> String {
        self.counter += 1;
        format!("{}{}", n.op_type.to_lowercase(), self.counter)
    }

    /// Name of a layer with weights; `weight` is the ONNX name of its weight input.
    fn layer_name(&mut self, n: &NodeProto, weight: Option<&str>) -> String {
        if let Some(p) = weight.and_then(|w| w.strip_suffix(".weight")) {
            if pytorch_like(p) && !self.used_names.contains(p) {
                return self.unique(p.to_string());
            }
        }
        let (scope, leaf) = scope_leaf(&n.name);
        let base = if !scope.is_empty() {
            sanitize(&scope)
        } else if !leaf.is_empty() {
            sanitize(&leaf)
        } else {
            self.fallback(n)
        };
        self.unique(base)
    }

    /// Name of a layer without weights.
    fn plain_name(&mut self, n: &NodeProto) -> String {
        let (scope, leaf) = scope_leaf(&n.name);
        let base = match (scope.is_empty(), leaf.is_empty()) {
            (_, true) => self.fallback(n),
            (true, false) if n.name.contains('/') => sanitize(&leaf.to_lowercase()),
            (true, false) => sanitize(&leaf),
            (false, false) => format!("{}.{}", sanitize(&scope), sanitize(&leaf.to_lowercase())),
        };
        self.unique(base)
    }

    fn push(&mut self, name: String, op: Op, inputs: Vec<NodeId>) -> R<NodeId> {
        let id = self.graph.push(name, op, inputs);
        match self.graph.infer_shapes(&self.input_shape) {
            Ok(mut s) => {
                self.shapes.push(s.swap_remove(id));
                Ok(id)
            }
            Err(e) => {
                self.graph.nodes.pop();
                Err(e.to_string())
            }
        }
    }

    /// Shape (without batch) of a dynamic value, including a pending subsample.
    fn shape_of(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Const(c) => c.dims.clone(),
            Val::Dyn { id, sub, .. } => {
                let mut s = self.shapes[*id].clone();
                if *sub != [1, 1] && s.len() == 3 {
                    s[1] = s[1].div_ceil(sub[0]);
                    s[2] = s[2].div_ceil(sub[1]);
                }
                s
            }
        }
    }

    /// The IR node of a dynamic value (materializing a pending subsample as a ShortcutA).
    fn node_of(&mut self, v: &Val) -> R<NodeId> {
        match v {
            Val::Const(_) => Err("expects a layer output here, got a constant".into()),
            Val::Dyn { id, sub, .. } if *sub == [1, 1] => Ok(*id),
            Val::Dyn { id, sub, sub_name } => {
                if sub[0] != sub[1] {
                    return Err(format!("strided slice {sub:?} with unequal H/W steps is not supported"));
                }
                let name = self.unique(sub_name.clone());
                self.push(name, Op::ShortcutA { stride: sub[0], pad_before: 0, pad_after: 0 }, vec![*id])
            }
        }
    }

    fn set_out(&mut self, n: &NodeProto, v: Val) {
        if let Some(o) = n.outputs.first() {
            self.values.insert(o.clone(), v);
        }
    }

    fn add_weight(&mut self, name: String, dims: Vec<usize>, values: Vec<f32>) {
        self.weights.insert(name, (dims, values));
    }

    fn node(&mut self, n: &NodeProto) -> R<()> {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(format!("operator domain `{}` is not supported", n.domain));
        }
        let ins: Vec<Option<Val>> = n
            .inputs
            .iter()
            .map(|name| if name.is_empty() { Ok(None) } else { self.get(name).map(Some) })
            .collect::<R<_>>()?;
        let all_const = ins.iter().all(|v| matches!(v, None | Some(Val::Const(_))));
        if all_const {
            let consts: Vec<Option<Rc<Const>>> = ins
                .iter()
                .map(|v| v.as_ref().map(|v| if let Val::Const(c) = v { c.clone() } else { unreachable!() }))
                .collect();
            let c = self.fold(n, &consts)?;
            self.set_out(n, Val::Const(Rc::new(c)));
            return Ok(());
        }
        let op = n.op_type.as_str();
        let cin = |k: usize| -> R<Rc<Const>> {
            match ins.get(k) {
                Some(Some(Val::Const(c))) => Ok(c.clone()),
                Some(Some(_)) => Err(format!("input {k} must be a constant (a weight or folded shape)")),
                _ => Err(format!("input {k} is missing")),
            }
        };
        let opt_cin = |k: usize| -> R<Option<Rc<Const>>> {
            match ins.get(k) {
                Some(Some(_)) => cin(k).map(Some),
                _ => Ok(None),
            }
        };
        let x = ins.first().cloned().flatten().ok_or("input 0 is missing")?;
        match op {
            "Conv" => {
                let xid = self.node_of(&x)?;
                let w = cin(1)?;
                let b = opt_cin(2)?;
                if w.dims.len() != 4 {
                    return Err(format!("only 2-D convolutions are supported (weight shape {:?})", w.dims));
                }
                let group = attr_int(n, "group", 1);
                if !(1..MAX_SIZE).contains(&group) {
                    return Err(format!("group {group} must be positive"));
                }
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err("dilated convolutions are not supported".into());
                }
                let kernel = [w.dims[2], w.dims[3]];
                if let Some(k) = attr_ints(n, "kernel_shape") {
                    if k != [kernel[0] as i64, kernel[1] as i64] {
                        return Err(format!("kernel_shape {k:?} does not match weight shape {:?}", w.dims));
                    }
                }
                let stride = pair(attr_ints(n, "strides"), 1, "strides")?;
                let padding = self.pool_pads(n, kernel, stride)?;
                let out = w.dims[0];
                let in_channels = self.shape_of(&x).first().copied().unwrap_or(0);
                let expected = w.dims[1].checked_mul(group as usize);
                if expected != Some(in_channels) {
                    return Err(format!(
                        "input has {in_channels} channels, weight {:?} with group {group} does not fit",
                        w.dims
                    ));
                }
                if let Some(b) = &b {
                    if b.len() != out {
                        return Err(format!("bias shape {:?} does not match {out} output channels", b.dims));
                    }
                }
                let name = self.layer_name(n, n.inputs.get(1).map(String::as_str));
                self.add_weight(format!("{name}.weight"), w.dims.clone(), w.to_floats()?);
                if let Some(b) = &b {
                    self.add_weight(format!("{name}.bias"), vec![out], b.to_floats()?);
                }
                let op = Op::Conv2d {
                    in_channels,
                    out_channels: out,
                    kernel,
                    stride,
                    padding,
                    groups: group as usize,
                    bias: b.is_some(),
                };
                let id = self.push(name, op, vec![xid])?;
                self.set_out(n, dyn_val(id));
            }
            "Gemm" | "MatMul" => {
                let xid = self.node_of(&x)?;
                let b = cin(1)?;
                if b.dims.len() != 2 {
                    return Err(format!("weight must be 2-D, got shape {:?}", b.dims));
                }
                if op == "Gemm" && attr_int(n, "transA", 0) != 0 {
                    return Err("transA=1 is not supported".into());
                }
                let trans_b = op == "Gemm" && attr_int(n, "transB", 0) != 0;
                let w = if trans_b { (*b).clone() } else { fold::transpose(&b, None)? };
                let (out, inf) = (w.dims[0], w.dims[1]);
                let xs = self.shape_of(&x);
                if xs != [inf] {
                    return Err(format!(
                        "input shape {xs:?} does not match weight [{out}, {inf}] (flatten first)"
                    ));
                }
                let mut wv = w.to_floats()?;
                let alpha = if op == "Gemm" { attr_float(n, "alpha", 1.0) } else { 1.0 };
                if alpha != 1.0 {
                    wv.iter_mut().for_each(|v| *v *= alpha);
                }
                let c = if op == "Gemm" { opt_cin(2)? } else { None };
                let bias = match &c {
                    None => None,
                    Some(c) => {
                        let beta = attr_float(n, "beta", 1.0);
                        let v = c.to_floats()?;
                        let v = match (c.dims.as_slice(), v.len()) {
                            (_, 1) => vec![v[0]; out],
                            ([k] | [1, k], _) if *k == out => v,
                            _ => {
                                return Err(format!("bias shape {:?} does not broadcast to [{out}]", c.dims))
                            }
                        };
                        Some(v.into_iter().map(|x| x * beta).collect::<Vec<f32>>())
                    }
                };
                let name = self.layer_name(n, n.inputs.get(1).map(String::as_str));
                self.add_weight(format!("{name}.weight"), vec![out, inf], wv);
                let has_bias = bias.is_some();
                if let Some(b) = bias {
                    self.add_weight(format!("{name}.bias"), vec![out], b);
                }
                let id = self.push(
                    name,
                    Op::Linear { in_features: inf, out_features: out, bias: has_bias },
                    vec![xid],
                )?;
                self.set_out(n, dyn_val(id));
            }
            "Add" | "Sum" if ins.len() == 2 => {
                let y = ins[1].clone().ok_or("input 1 is missing")?;
                match (&x, &y) {
                    (Val::Dyn { .. }, Val::Dyn { .. }) => {
                        let a = self.node_of(&x)?;
                        let b = self.node_of(&y)?;
                        let name = self.plain_name(n);
                        let id = self.push(name, Op::Add, vec![a, b])?;
                        self.set_out(n, dyn_val(id));
                    }
                    (Val::Const(c), d @ Val::Dyn { .. }) | (d @ Val::Dyn { .. }, Val::Const(c)) => {
                        let dyn_input =
                            if matches!(x, Val::Dyn { .. }) { &n.inputs[0] } else { &n.inputs[1] };
                        let id = self.add_bias(d, dyn_input, c)?;
                        self.set_out(n, dyn_val(id));
                    }
                    _ => unreachable!("all-constant inputs are folded"),
                }
            }
            "BatchNormalization" => {
                let xid = self.node_of(&x)?;
                if attr_int(n, "training_mode", 0) != 0 {
                    return Err("training_mode=1 is not supported".into());
                }
                if n.outputs
                    .iter()
                    .skip(1)
                    .any(|o| !o.is_empty() && self.consumers.get(o).copied().unwrap_or(0) > 0)
                {
                    return Err("the running-statistics outputs are not supported".into());
                }
                let xs = self.shape_of(&x);
                let c = xs.first().copied().unwrap_or(0);
                if !(xs.len() == 1 || xs.len() == 3) {
                    return Err(format!("input shape {xs:?} unsupported ((N,C) or (N,C,H,W) expected)"));
                }
                let mut vals = Vec::new();
                for k in 1..5 {
                    let t = cin(k)?;
                    if t.len() != c {
                        return Err(format!(
                            "parameter {k} has shape {:?}, the input has {c} channels",
                            t.dims
                        ));
                    }
                    vals.push(t.to_floats()?);
                }
                // ONNX stores eps as f32; take its shortest decimal form (1e-5, not 9.99999974e-6).
                let eps: f64 = attr_float(n, "epsilon", 1e-5).to_string().parse().unwrap_or(1e-5);
                let m = attr_float(n, "momentum", 0.9) as f64;
                let momentum = if m > 0.0 && m < 1.0 { ((1.0 - m) * 1e6).round() / 1e6 } else { 0.1 };
                let name = self.layer_name(n, n.inputs.get(1).map(String::as_str));
                for (suffix, v) in ["weight", "bias", "running_mean", "running_var"].iter().zip(vals) {
                    self.add_weight(format!("{name}.{suffix}"), vec![c], v);
                }
                let id = self.push(name, Op::BatchNorm { num_features: c, eps, momentum }, vec![xid])?;
                self.set_out(n, dyn_val(id));
            }
            "Relu" => self.unary(n, &x, Op::Relu)?,
            "Clip" => {
                let lo = match opt_cin(1)? {
                    Some(c) => c.scalar_float()?,
                    None => attr(n, "min").and_then(|a| a.f).unwrap_or(f32::NEG_INFINITY),
                };
                let hi = match opt_cin(2)? {
                    Some(c) => c.scalar_float()?,
                    None => attr(n, "max").and_then(|a| a.f).unwrap_or(f32::INFINITY),
                };
                if lo != 0.0 || hi < f32::MAX {
                    return Err(format!("Clip({lo}, {hi}) is not supported (only Clip(0, inf) = ReLU)"));
                }
                self.unary(n, &x, Op::Relu)?
            }
            "MaxPool" | "AveragePool" => {
                if n.outputs.len() > 1 && self.consumers.get(&n.outputs[1]).copied().unwrap_or(0) > 0 {
                    return Err("the Indices output is not supported".into());
                }
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    return Err("dilated pooling is not supported".into());
                }
                let kernel = pair(attr_ints(n, "kernel_shape"), 0, "kernel_shape")?;
                if kernel[0] == 0 {
                    return Err("kernel_shape is missing".into());
                }
                let stride = pair(attr_ints(n, "strides"), 1, "strides")?;
                let padding = self.pool_pads(n, kernel, stride)?;
                let xs = self.shape_of(&x);
                if xs.len() != 3 {
                    return Err(format!("input shape {xs:?} unsupported (N,C,H,W expected)"));
                }
                if attr_int(n, "ceil_mode", 0) != 0 {
                    // Same output as floor mode when the window fits exactly.
                    for d in 0..2 {
                        let span = xs[d + 1] + 2 * padding[d];
                        if span < kernel[d] || !(span - kernel[d]).is_multiple_of(stride[d]) {
                            return Err("ceil_mode=1 is not supported for this input size".into());
                        }
                    }
                }
                let op = if op == "MaxPool" {
                    Op::MaxPool2d { kernel, stride, padding }
                } else {
                    if padding != [0, 0] && attr_int(n, "count_include_pad", 0) == 0 {
                        return Err("padded AveragePool with count_include_pad=0 is not supported".into());
                    }
                    Op::AvgPool2d { kernel, stride, padding }
                };
                self.unary(n, &x, op)?
            }
            "GlobalAveragePool" => {
                if self.shape_of(&x).len() != 3 {
                    return Err(format!(
                        "input shape {:?} unsupported (N,C,H,W expected)",
                        self.shape_of(&x)
                    ));
                }
                self.unary(n, &x, Op::GlobalAvgPool)?
            }
            "ReduceMean" => {
                let axes = match opt_cin(1)? {
                    Some(c) => c.to_ints()?,
                    None => attr_ints(n, "axes").unwrap_or_default(),
                };
                let xs = self.shape_of(&x);
                let mut ax: Vec<usize> =
                    axes.iter().map(|&a| fold::axis(a, xs.len() + 1)).collect::<R<_>>()?;
                ax.sort_unstable();
                if xs.len() != 3 || ax != [2, 3] {
                    return Err(format!("ReduceMean over axes {axes:?} is not supported (only H and W)"));
                }
                let xid = self.node_of(&x)?;
                let name = self.plain_name(n);
                let mut id = self.push(name.clone(), Op::GlobalAvgPool, vec![xid])?;
                if attr_int(n, "keepdims", 1) == 0 {
                    let fname = self.unique(format!("{name}.flatten"));
                    id = self.push(fname, Op::Flatten, vec![id])?;
                }
                self.set_out(n, dyn_val(id));
            }
            "Flatten" => {
                let xs = self.shape_of(&x);
                let a = fold::axis(attr_int(n, "axis", 1), xs.len() + 2)?;
                if a != 1 {
                    return Err(format!("Flatten axis {a} is not supported (only 1)"));
                }
                self.flatten(n, &x)?
            }
            "Reshape" => {
                let target = cin(1)?.to_ints_sym()?;
                let xs = self.shape_of(&x);
                let allowzero = attr_int(n, "allowzero", 0) != 0;
                let batch_like = |t: i64| t == BATCH || (t == 0 && !allowzero) || Some(t) == self.fixed_batch;
                let rest: Vec<i64> = match target.split_first() {
                    Some((&t0, rest)) if batch_like(t0) => rest.to_vec(),
                    Some((&-1, rest)) if !rest.contains(&-1) && rest.iter().all(|&v| v > 0) => rest.to_vec(),
                    _ => return Err(format!("Reshape to {target:?} keeps no batch dimension (unsupported)")),
                };
                // A 0 in `rest` copies the input dim at the same position (offset by the batch dim).
                let rest: Vec<i64> =
                    rest.iter()
                        .enumerate()
                        .map(|(i, &t)| {
                            if t == 0 && !allowzero {
                                xs.get(i).map(|&d| d as i64).unwrap_or(-2)
                            } else {
                                t
                            }
                        })
                        .collect();
                let dims =
                    fold::reshape_dims(&xs, &rest, true).map_err(|e| format!("{e} (target {target:?})"))?;
                if dims == xs {
                    self.set_out(n, x.clone());
                } else if dims.len() == 1 {
                    self.flatten(n, &x)?
                } else {
                    return Err(format!(
                        "Reshape of {xs:?} to {target:?} is not supported (only flattening)"
                    ));
                }
            }
            "Squeeze" => {
                let xs = self.shape_of(&x);
                let axes = match opt_cin(1)? {
                    Some(c) => Some(c.to_ints()?),
                    None => attr_ints(n, "axes"),
                };
                let rank = xs.len() + 1;
                let ax: Vec<usize> = match axes {
                    Some(a) => a.iter().map(|&v| fold::axis(v, rank)).collect::<R<_>>()?,
                    None => (1..rank).filter(|&i| xs[i - 1] == 1).collect(),
                };
                if ax.contains(&0) || ax.iter().any(|&a| xs[a - 1] != 1) {
                    return Err(format!("Squeeze of axes {ax:?} of shape {xs:?} is not supported"));
                }
                let kept = xs.len() - ax.len();
                if ax.is_empty() {
                    self.set_out(n, x.clone());
                } else if kept == 1 {
                    self.flatten(n, &x)?
                } else {
                    return Err(format!("Squeeze of {xs:?} to rank {} is not supported", kept + 1));
                }
            }
            "Dropout" => {
                if n.outputs.len() > 1 && self.consumers.get(&n.outputs[1]).copied().unwrap_or(0) > 0 {
                    return Err("the mask output is not supported".into());
                }
                let p = match opt_cin(1)? {
                    Some(c) => c.scalar_float()?,
                    None => attr_float(n, "ratio", 0.5),
                };
                self.unary(n, &x, Op::Dropout { p })?
            }
            "Identity" => self.set_out(n, x.clone()),
            "Cast" => {
                let to = attr_int(n, "to", 0);
                if !fold::is_float_type(to) {
                    return Err(format!("Cast of a layer output to non-float type {to} is not supported"));
                }
                self.set_out(n, x.clone());
            }
            "Softmax" | "LogSoftmax" => {
                let trailing = n.outputs.iter().filter(|o| !o.is_empty()).all(|o| {
                    self.graph_outputs.contains(o) && self.consumers.get(o).copied().unwrap_or(0) <= 1
                });
                if !trailing {
                    return Err(format!("{op} is supported only as the last op of the graph"));
                }
                // Dropped: argmax is unchanged and shrink's loss starts from logits.
                self.set_out(n, x.clone());
            }
            "Shape" => {
                let xs = self.shape_of(&x);
                let mut dims: Vec<i64> = std::iter::once(BATCH).chain(xs.iter().map(|&d| d as i64)).collect();
                let r = dims.len() as i64;
                let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clampi(attr_int(n, "start", 0));
                let end = clampi(attr_int(n, "end", r));
                dims = if start < end { dims[start..end].to_vec() } else { vec![] };
                self.set_out(n, Val::Const(Rc::new(Const::ints(vec![dims.len()], dims))));
            }
            "Slice" => self.slice(n, &x, &ins)?,
            "Pad" => self.pad(n, &x, &ins)?,
            _ => return Err(format!("unsupported operator `{op}`")),
        }
        Ok(())
    }

    fn unary(&mut self, n: &NodeProto, x: &Val, op: Op) -> R<()> {
        let xid = self.node_of(x)?;
        let name = self.plain_name(n);
        let id = self.push(name, op, vec![xid])?;
        self.set_out(n, dyn_val(id));
        Ok(())
    }

    fn flatten(&mut self, n: &NodeProto, x: &Val) -> R<()> {
        if self.shape_of(x).len() == 1 {
            self.set_out(n, x.clone());
            return Ok(());
        }
        self.unary(n, x, Op::Flatten)
    }

    /// Padding of a Conv/pool: explicit symmetric pads, VALID, or SAME when it is symmetric.
    fn pool_pads(&self, n: &NodeProto, kernel: [usize; 2], stride: [usize; 2]) -> R<[usize; 2]> {
        match attr_str(n, "auto_pad").as_deref() {
            None | Some("NOTSET") | Some("") => sym_pads(attr_ints(n, "pads")),
            Some("VALID") => Ok([0, 0]),
            Some(mode @ ("SAME_UPPER" | "SAME_LOWER")) => {
                if stride == [1, 1] && kernel[0] % 2 == 1 && kernel[1] % 2 == 1 {
                    Ok([kernel[0] / 2, kernel[1] / 2])
                } else {
                    Err(format!(
                        "auto_pad={mode} with stride {stride:?} / kernel {kernel:?} is not supported"
                    ))
                }
            }
            Some(m) => Err(format!("auto_pad={m} is not supported")),
        }
    }

    /// `layer + constant`: folded into the bias of the Conv/Linear that produced `layer`.
    fn add_bias(&mut self, d: &Val, onnx_input: &str, c: &Const) -> R<NodeId> {
        let id = match d {
            Val::Dyn { id, sub, .. } if *sub == [1, 1] => *id,
            _ => return Err("adding a constant to a strided slice is not supported".into()),
        };
        let single_use = self.consumers.get(onnx_input).copied().unwrap_or(0) == 1;
        let node = &self.graph.nodes[id];
        let name = node.name.clone();
        let (out, ok_dims) = match &node.op {
            Op::Linear { out_features, .. } => {
                (*out_features, matches!(c.dims.as_slice(), [k] | [1, k] if *k == *out_features))
            }
            Op::Conv2d { out_channels, .. } => {
                (*out_channels, matches!(c.dims.as_slice(), [k, 1, 1] | [1, k, 1, 1] if *k == *out_channels))
            }
            _ => (0, false),
        };
        if !single_use || !ok_dims || id != self.graph.output() {
            return Err(format!(
                "adding a constant of shape {:?} is supported only as the bias of the Conv/Gemm/MatMul right before it",
                c.dims
            ));
        }
        let add = c.to_floats()?;
        let key = format!("{name}.bias");
        match self.weights.get_mut(&key) {
            Some((_, b)) => b.iter_mut().zip(&add).for_each(|(b, a)| *b += a),
            None => {
                self.weights.insert(key, (vec![out], add));
            }
        }
        match &mut self.graph.nodes[id].op {
            Op::Linear { bias, .. } | Op::Conv2d { bias, .. } => *bias = true,
            _ => {}
        }
        Ok(id)
    }

    /// Slice of a layer output: only `::s` on H and W (start 0, to the end) is supported.
    fn slice(&mut self, n: &NodeProto, x: &Val, ins: &[Option<Val>]) -> R<()> {
        let get = |k: usize, attr_name: &str| -> R<Option<Vec<i64>>> {
            match ins.get(k) {
                Some(Some(Val::Const(c))) => Ok(Some(c.to_ints()?)),
                Some(Some(_)) => Err(format!("input {k} must be a constant")),
                _ => Ok(attr_ints(n, attr_name)),
            }
        };
        let starts = get(1, "starts")?.ok_or("starts are missing")?;
        let ends = get(2, "ends")?.ok_or("ends are missing")?;
        let xs = self.shape_of(x);
        let rank = xs.len() + 1;
        let axes = get(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = get(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts/ends/axes/steps differ in length".into());
        }
        let Val::Dyn { id, sub, sub_name } = x.clone() else { unreachable!("dynamic input") };
        let mut sub = sub;
        for k in 0..starts.len() {
            let a = fold::axis(axes[k], rank)?;
            let full = if a == 0 { self.fixed_batch.unwrap_or(i64::MAX / 2) } else { xs[a - 1] as i64 };
            let (s, e, st) = (starts[k], ends[k], steps[k]);
            let whole = s == 0 && e >= full && st >= 1;
            if !whole {
                return Err(format!(
                    "Slice [{s}:{e}:{st}] on axis {a} is not supported (only full strided ranges)"
                ));
            }
            if st > 1 {
                if rank != 4 || a < 2 || st > MAX_SIZE {
                    return Err(format!("strided Slice on axis {a} is not supported (only H and W)"));
                }
                sub[a - 2] = sub[a - 2].saturating_mul(st as usize).min(MAX_SIZE as usize);
            }
        }
        let sub_name = if sub_name.is_empty() { self.plain_name(n) } else { sub_name };
        self.set_out(n, Val::Dyn { id, sub, sub_name });
        Ok(())
    }

    /// Zero padding of the channel dim (after an optional `::s` subsample) → ShortcutA.
    fn pad(&mut self, n: &NodeProto, x: &Val, ins: &[Option<Val>]) -> R<()> {
        let mode = attr_str(n, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(format!("Pad mode `{mode}` is not supported"));
        }
        let pads = match ins.get(1) {
            Some(Some(Val::Const(c))) => c.to_ints()?,
            Some(Some(_)) => return Err("pads must be a constant".into()),
            _ => attr_ints(n, "pads").ok_or("pads are missing")?,
        };
        let value = match ins.get(2) {
            Some(Some(Val::Const(c))) => c.scalar_float()?,
            Some(Some(_)) => return Err("the pad value must be a constant".into()),
            _ => attr_float(n, "value", 0.0),
        };
        if value != 0.0 {
            return Err(format!("padding with {value} is not supported (only zeros)"));
        }
        let rank = self.shape_of(x).len() + 1;
        let axes: Vec<usize> = match ins.get(3) {
            Some(Some(Val::Const(c))) => {
                c.to_ints()?.iter().map(|&a| fold::axis(a, rank)).collect::<R<_>>()?
            }
            Some(Some(_)) => return Err("axes must be a constant".into()),
            _ => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
        }
        let mut before = vec![0i64; rank];
        let mut after = vec![0i64; rank];
        for (k, &a) in axes.iter().enumerate() {
            before[a] = pads[k];
            after[a] = pads[k + axes.len()];
        }
        let only_channels = (0..rank).all(|a| a == 1 || (before[a] == 0 && after[a] == 0));
        let ok = |v: i64| (0..MAX_SIZE).contains(&v);
        if rank != 4 || !only_channels || !ok(before[1]) || !ok(after[1]) {
            return Err(format!(
                "Pad {pads:?} is not supported (only zero padding of the channels of N,C,H,W)"
            ));
        }
        let Val::Dyn { id, sub, .. } = x.clone() else { unreachable!("dynamic input") };
        if before[1] == 0 && after[1] == 0 {
            self.set_out(n, x.clone());
            return Ok(());
        }
        if sub[0] != sub[1] {
            return Err(format!("strided slice {sub:?} with unequal H/W steps is not supported"));
        }
        let name = self.plain_name(n);
        let op =
            Op::ShortcutA { stride: sub[0], pad_before: before[1] as usize, pad_after: after[1] as usize };
        let id = self.push(name, op, vec![id])?;
        self.set_out(n, dyn_val(id));
        Ok(())
    }

    /// Folds a node whose inputs are all constants.
    fn fold(&self, n: &NodeProto, ins: &[Option<Rc<Const>>]) -> R<Const> {
        let op = n.op_type.as_str();
        let get = |k: usize| -> R<&Const> {
            ins.get(k).and_then(|c| c.as_deref()).ok_or_else(|| format!("input {k} is missing"))
        };
        let ints_in_or_attr = |k: usize, name: &str| -> R<Option<Vec<i64>>> {
            match ins.get(k).and_then(|c| c.as_deref()) {
                Some(c) => Ok(Some(c.to_ints()?)),
                None => Ok(attr_ints(n, name)),
            }
        };
        match op {
            "Constant" => {
                let a = n.attributes.first().ok_or("Constant without a value")?;
                match a.name.as_str() {
                    "value" => Const::from_proto(a.t.as_ref().ok_or("value is not a tensor")?),
                    "value_float" => Ok(Const::floats(vec![], vec![a.f.ok_or("value_float missing")?])),
                    "value_floats" => Ok(Const::floats(vec![a.floats.len()], a.floats.clone())),
                    "value_int" => Ok(Const::ints(vec![], vec![a.i.ok_or("value_int missing")?])),
                    "value_ints" => Ok(Const::ints(vec![a.ints.len()], a.ints.clone())),
                    other => Err(format!("Constant attribute `{other}` is not supported")),
                }
            }
            "Identity" | "Dropout" => Ok(get(0)?.clone()),
            "Cast" => fold::cast(get(0)?, attr_int(n, "to", fold::FLOAT)),
            "Shape" => {
                let d = &get(0)?.dims;
                let v: Vec<i64> = d.iter().map(|&x| x as i64).collect();
                let r = v.len() as i64;
                let clampi = |x: i64| (if x < 0 { x + r } else { x }).clamp(0, r) as usize;
                let (s, e) = (clampi(attr_int(n, "start", 0)), clampi(attr_int(n, "end", r)));
                let v = if s < e { v[s..e].to_vec() } else { vec![] };
                Ok(Const::ints(vec![v.len()], v))
            }
            "Gather" => fold::gather(get(0)?, get(1)?, attr_int(n, "axis", 0)),
            "Unsqueeze" => {
                let axes = ints_in_or_attr(1, "axes")?.ok_or("axes are missing")?;
                fold::unsqueeze(get(0)?, &axes)
            }
            "Squeeze" => {
                let axes = ints_in_or_attr(1, "axes")?;
                fold::squeeze(get(0)?, axes.as_deref())
            }
            "Concat" => {
                let xs: Vec<&Const> = ins.iter().filter_map(|c| c.as_deref()).collect();
                fold::concat(&xs, attr(n, "axis").and_then(|a| a.i).ok_or("axis is missing")?)
            }
            "ConstantOfShape" => {
                let shape = get(0)?.to_ints()?;
                let dims: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension in {shape:?}")))
                    .collect::<R<_>>()?;
                let count = fold::numel(&dims)?;
                let value = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => Const::from_proto(t)?,
                    None => Const::floats(vec![1], vec![0.0]),
                };
                match value.data {
                    fold::Data::F(v) if v.len() == 1 => Ok(Const::floats(dims, vec![v[0]; count])),
                    fold::Data::I(v) if v.len() == 1 => Ok(Const::ints(dims, vec![v[0]; count])),
                    _ => Err("value must hold one element".into()),
                }
            }
            "Slice" => {
                let x = get(0)?;
                let starts = ints_in_or_attr(1, "starts")?.ok_or("starts are missing")?;
                let ends = ints_in_or_attr(2, "ends")?.ok_or("ends are missing")?;
                let axes = ints_in_or_attr(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = ints_in_or_attr(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
                if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
                    return Err("starts/ends/axes/steps differ in length".into());
                }
                let axes: Vec<usize> = axes.iter().map(|&a| fold::axis(a, x.dims.len())).collect::<R<_>>()?;
                fold::slice(x, &starts, &ends, &axes, &steps)
            }
            "Reshape" => {
                let x = get(0)?;
                let target = get(1)?.to_ints()?;
                let dims = fold::reshape_dims(&x.dims, &target, attr_int(n, "allowzero", 0) != 0)?;
                Ok(x.reshaped(dims))
            }
            "Flatten" => {
                let x = get(0)?;
                let a = fold::axis(attr_int(n, "axis", 1), x.dims.len() + 1)?;
                let outer: usize = x.dims[..a].iter().product();
                let inner: usize = x.dims[a..].iter().product();
                Ok(x.reshaped(vec![outer, inner]))
            }
            "Transpose" => fold::transpose(get(0)?, attr_ints(n, "perm").as_deref()),
            "Add" | "Sub" | "Mul" | "Div" => fold::binary(op, get(0)?, get(1)?),
            "Neg" => fold::binary("Mul", get(0)?, &Const::ints(vec![], vec![-1])),
            _ => Err(format!("unsupported operator `{op}` (on constant inputs)")),
        }
    }
}

/// Keeps only the nodes the output depends on (dropping e.g. a branch that fed nothing).
fn compact(graph: &Graph, out: NodeId) -> Graph {
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
    let mut g = Graph { nodes: Vec::new() };
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

fn format_err(msg: impl Into<String>) -> IoError {
    IoError::Format(msg.into())
}

/// Imports an ONNX model (ModelProto bytes) into the IR.
pub fn import_onnx(bytes: &[u8]) -> Result<Model> {
    let m = decode::model(bytes)?;
    let g = m.graph.as_ref().ok_or_else(|| format_err("ONNX model has no graph"))?;
    let init_names: HashSet<&str> = g.initializers.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&decode::ValueInfo> =
        g.inputs.iter().filter(|i| !init_names.contains(i.name.as_str())).collect();
    let input = match inputs.as_slice() {
        [i] => *i,
        [] => return Err(format_err("ONNX graph has no input")),
        more => {
            return Err(format_err(format!(
                "ONNX graph has {} inputs ({}); one is supported",
                more.len(),
                more.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ")
            )))
        }
    };
    if input.elem_type != fold::FLOAT && input.elem_type != fold::DOUBLE && input.elem_type != 0 {
        return Err(format_err(format!(
            "input `{}` has non-float element type {}",
            input.name, input.elem_type
        )));
    }
    let dims =
        input.shape.as_ref().ok_or_else(|| format_err(format!("input `{}` has no shape", input.name)))?;
    if dims.len() < 2 {
        return Err(format_err(format!(
            "input `{}` has rank {}; (batch, ...) expected",
            input.name,
            dims.len()
        )));
    }
    let fixed_batch = match &dims[0] {
        Dim::Value(v) if *v > 0 => Some(*v),
        _ => None,
    };
    let input_shape: Vec<usize> = dims[1..]
        .iter()
        .map(|d| match d {
            Dim::Value(v) if *v > 0 && *v <= 1 << 20 => Ok(*v as usize),
            d => Err(format_err(format!("input `{}` has non-static dimension {d:?}", input.name))),
        })
        .collect::<Result<_>>()?;
    let output = g.outputs.first().ok_or_else(|| format_err("ONNX graph has no output"))?;

    let mut imp = Importer {
        graph: Graph::new(),
        shapes: vec![input_shape.clone()],
        input_shape: input_shape.clone(),
        fixed_batch,
        weights: HashMap::new(),
        values: HashMap::new(),
        consumers: HashMap::new(),
        graph_outputs: g.outputs.iter().map(|o| o.name.clone()).collect(),
        dropped: HashSet::new(),
        used_names: HashSet::from(["input".to_string()]),
        counter: 0,
    };
    for t in &g.initializers {
        let c = Const::from_proto(t).map_err(|e| format_err(format!("initializer: {e}")))?;
        imp.values.insert(t.name.clone(), Val::Const(Rc::new(c)));
    }
    imp.values.insert(input.name.clone(), dyn_val(0));
    for n in &g.nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            *imp.consumers.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.outputs {
        *imp.consumers.entry(o.name.clone()).or_default() += 1;
    }
    for n in &g.nodes {
        imp.node(n).map_err(|e| {
            let name = if n.name.is_empty() {
                n.outputs.first().cloned().unwrap_or_default()
            } else {
                n.name.clone()
            };
            format_err(format!("ONNX node `{name}` ({}): {e}", n.op_type))
        })?;
        if matches!(n.op_type.as_str(), "Softmax" | "LogSoftmax") {
            imp.dropped.extend(n.outputs.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    let out_val = imp
        .values
        .get(&output.name)
        .cloned()
        .ok_or_else(|| format_err(format!("graph output `{}` is produced by no node", output.name)))?;
    if matches!(out_val, Val::Const(_)) {
        return Err(format_err(format!("graph output `{}` is a constant", output.name)));
    }
    let out = imp.node_of(&out_val).map_err(format_err)?;
    if out == 0 {
        return Err(format_err("the graph output is its input (no layers)"));
    }
    let graph = compact(&imp.graph, out);

    let mut store = ParamStore::new();
    for node in &graph.nodes {
        for spec in node.op.params() {
            let name = format!("{}.{}", node.name, spec.suffix);
            let (dims, v) = imp
                .weights
                .remove(&name)
                .ok_or_else(|| format_err(format!("internal: weight `{name}` missing")))?;
            store.insert(name, Tensor::from_vec(v, dims.as_slice(), &Device::Cpu)?, spec.kind)?;
        }
    }
    let shapes = graph.infer_shapes(&input_shape)?;
    let classes: usize = shapes[graph.output()].iter().product();
    let stored: Option<ModelMeta> = m
        .metadata_props
        .iter()
        .find(|(k, _)| k == "shrink.meta")
        .and_then(|(_, v)| serde_json::from_str(v).ok());
    let zoo_arch = zoo::ARCHS.iter().find(|a| zoo::graph(a).is_ok_and(|z| z == graph)).copied();
    let meta = match stored {
        Some(meta) if meta.input_shape == input_shape && meta.classes.len() == classes => meta,
        _ => {
            let arch = zoo_arch.unwrap_or("custom");
            let mut meta = if input_shape == [3, 32, 32] {
                zoo::cifar_meta(arch)
            } else if input_shape == [1, 28, 28] {
                zoo::mnist_meta(arch)
            } else {
                let c = input_shape[0];
                ModelMeta {
                    arch: arch.into(),
                    input_shape: input_shape.clone(),
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
    };
    Ok(Model::new(graph, store, meta)?)
}

/// Whether `bytes` (a whole file) are an ONNX `ModelProto`, by content
/// ([`crate::format::is_onnx_proto`]), whatever the file is named.
pub fn is_onnx(bytes: &[u8]) -> bool {
    crate::format::is_onnx_proto(&bytes[..bytes.len().min(crate::format::SNIFF_LEN)], bytes.len() as u64)
}

/// Reads and imports an ONNX file.
pub fn load_onnx(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    import_onnx(&bytes).map_err(|e| e.in_file(path))
}

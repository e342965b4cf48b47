//! Open-IR graph → ONNX (opset 21). Every IR op has one mapping in [`export_node`] (one
//! exhaustive match); constants become initializers under their own (PyTorch) names, symbolic
//! dimensions become `dim_param`s, so the file runs in onnxruntime at any batch size.

use super::proto::Message;
use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use shrink_graph::ops::activation::UnaryKind;
use shrink_graph::ops::binary::BinaryKind;
use shrink_graph::ops::combine::PadMode;
use shrink_graph::ops::pool::{CoordMode, NearestMode, PoolKind};
use shrink_graph::ops::reduce::ReduceKind;
use shrink_graph::{DType, Dim, Fact, Graph, Node, Op, Tensor, TensorData};
use std::path::Path;

/// Default-domain opset written.
pub const GRAPH_OPSET: i64 = 21;
/// ONNX IR version matching the opset.
const IR_VERSION: i64 = 10;

fn elem_type(d: DType) -> i64 {
    d.onnx_code()
}

fn tensor_proto(name: &str, t: &Tensor) -> Message {
    let mut m = Message::new();
    for &d in &t.shape {
        m.int(1, d as i64);
    }
    m.int(2, elem_type(t.dtype())).string(8, name);
    let raw: Vec<u8> = match &t.data {
        TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        TensorData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
        TensorData::I8(v) => v.iter().map(|&b| b as u8).collect(),
        TensorData::U8(v) => v.to_vec(),
        TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    m.bytes(9, &raw);
    m
}

fn value_info(name: &str, fact: &Fact) -> Message {
    let mut shape = Message::new();
    for d in &fact.shape {
        let mut dim = Message::new();
        match d {
            Dim::Fixed(v) => dim.int(1, *v as i64),
            Dim::Sym(s) => dim.string(2, s),
        };
        shape.message(1, &dim);
    }
    let mut tensor = Message::new();
    tensor.int(1, elem_type(fact.dtype)).message(2, &shape);
    let mut ty = Message::new();
    ty.message(1, &tensor);
    let mut vi = Message::new();
    vi.string(1, name).message(2, &ty);
    vi
}

/// An attribute of a node.
enum Attr {
    I(i64),
    F(f32),
    S(&'static str),
    Ints(Vec<i64>),
}

fn attr(name: &str, a: &Attr) -> Message {
    let mut m = Message::new();
    m.string(1, name);
    match a {
        Attr::F(v) => m.float(2, *v).int(20, 1),
        Attr::I(v) => m.int(3, *v).int(20, 2),
        Attr::S(s) => m.bytes(4, s.as_bytes()).int(20, 3),
        Attr::Ints(v) => {
            for &x in v {
                m.int(8, x);
            }
            m.int(20, 7)
        }
    };
    m
}

/// Collects nodes and extra constants while a graph is written.
struct Writer<'g> {
    graph: &'g Graph,
    nodes: Vec<Message>,
    inits: Vec<Message>,
    counter: usize,
}

impl Writer<'_> {
    fn name(&self, v: usize) -> &str {
        &self.graph.values[v].name
    }

    fn emit(&mut self, op: &str, name: &str, inputs: &[String], outputs: &[String], attrs: &[(&str, Attr)]) {
        let mut n = Message::new();
        for i in inputs {
            n.string(1, i);
        }
        for o in outputs {
            n.string(2, o);
        }
        n.string(3, name).string(4, op);
        for (k, a) in attrs {
            n.message(5, &attr(k, a));
        }
        self.nodes.push(n);
    }

    /// A fresh constant input (attributes that are inputs in recent opsets).
    fn konst(&mut self, base: &str, t: Tensor) -> String {
        self.counter += 1;
        let name = format!("{base}__c{}", self.counter);
        self.inits.push(tensor_proto(&name, &t));
        name
    }

    fn ints(&mut self, base: &str, v: &[i64]) -> String {
        self.konst(base, Tensor::i64(vec![v.len()], v.to_vec()))
    }
}

fn usizes(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// Reshape/Expand target with symbolic dims written as ONNX markers: a symbol at the same
/// position as in the input is `copy` (0 for Reshape, 1 for Expand); one other symbol is -1.
fn shape_spec(node: &str, target: &[Dim], input: &Fact, copy: i64) -> Result<Vec<i64>> {
    let mut infer_used = false;
    target
        .iter()
        .enumerate()
        .map(|(k, d)| match d {
            Dim::Fixed(n) => Ok(*n as i64),
            Dim::Sym(s) if input.shape.get(k) == Some(d) => {
                let _ = s;
                Ok(copy)
            }
            Dim::Sym(s) if !infer_used && copy == 0 => {
                infer_used = true;
                let _ = s;
                Ok(-1)
            }
            Dim::Sym(s) => Err(IoError::Format(format!(
                "node `{node}`: symbolic dimension `{s}` of the target shape cannot be written in ONNX"
            ))),
        })
        .collect()
}

/// Write one node (the one exhaustive match of the ONNX export).
fn export_node(w: &mut Writer, node: &Node) -> Result<()> {
    let ins: Vec<String> = node.inputs.iter().map(|&v| w.name(v).to_string()).collect();
    let outs: Vec<String> = node.outputs.iter().map(|&v| w.name(v).to_string()).collect();
    let name = node.name.as_str();
    let in_fact = |k: usize| w.graph.values[node.inputs[k]].fact.clone();
    match &node.op {
        Op::Conv(c) => {
            let k = in_fact(1).fixed_shape().map_err(|e| IoError::Format(format!("node `{name}`: {e}")))?;
            let attrs = [
                ("kernel_shape", Attr::Ints(usizes(&k[2..]))),
                ("strides", Attr::Ints(usizes(&c.strides))),
                ("pads", Attr::Ints(usizes(&c.pads))),
                ("dilations", Attr::Ints(usizes(&c.dilations))),
                ("group", Attr::I(c.groups as i64)),
            ];
            w.emit("Conv", name, &ins, &outs, &attrs);
        }
        Op::ConvTranspose(c) => {
            let k = in_fact(1).fixed_shape().map_err(|e| IoError::Format(format!("node `{name}`: {e}")))?;
            let attrs = [
                ("kernel_shape", Attr::Ints(usizes(&k[2..]))),
                ("strides", Attr::Ints(usizes(&c.strides))),
                ("pads", Attr::Ints(usizes(&c.pads))),
                ("dilations", Attr::Ints(usizes(&c.dilations))),
                ("group", Attr::I(c.groups as i64)),
                ("output_padding", Attr::Ints(usizes(&c.output_padding))),
            ];
            w.emit("ConvTranspose", name, &ins, &outs, &attrs);
        }
        Op::Gemm(g) => {
            let attrs = [
                ("alpha", Attr::F(g.alpha)),
                ("beta", Attr::F(g.beta)),
                ("transA", Attr::I(g.trans_a as i64)),
                ("transB", Attr::I(g.trans_b as i64)),
            ];
            w.emit("Gemm", name, &ins, &outs, &attrs);
        }
        Op::MatMul(_) => w.emit("MatMul", name, &ins, &outs, &[]),
        Op::BatchNorm(b) => {
            w.emit("BatchNormalization", name, &ins, &outs, &[("epsilon", Attr::F(b.epsilon))])
        }
        Op::LayerNorm(l) => w.emit(
            "LayerNormalization",
            name,
            &ins,
            &outs,
            &[("axis", Attr::I(l.axis)), ("epsilon", Attr::F(l.epsilon))],
        ),
        Op::GroupNorm(g) => w.emit(
            "GroupNormalization",
            name,
            &ins,
            &outs,
            &[("num_groups", Attr::I(g.groups as i64)), ("epsilon", Attr::F(g.epsilon))],
        ),
        Op::InstanceNorm(n) => {
            w.emit("InstanceNormalization", name, &ins, &outs, &[("epsilon", Attr::F(n.epsilon))])
        }
        Op::Pool(p) => {
            let mut attrs = vec![
                ("kernel_shape", Attr::Ints(usizes(&p.kernel))),
                ("strides", Attr::Ints(usizes(&p.strides))),
                ("pads", Attr::Ints(usizes(&p.pads))),
                ("dilations", Attr::Ints(usizes(&p.dilations))),
                ("ceil_mode", Attr::I(p.ceil_mode as i64)),
            ];
            let op = match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Avg => {
                    attrs.push(("count_include_pad", Attr::I(p.count_include_pad as i64)));
                    "AveragePool"
                }
            };
            w.emit(op, name, &ins, &outs, &attrs);
        }
        Op::GlobalPool(p) => {
            let op = match p.kind {
                PoolKind::Max => "GlobalMaxPool",
                PoolKind::Avg => "GlobalAveragePool",
            };
            w.emit(op, name, &ins, &outs, &[]);
        }
        Op::Resize(r) => {
            let mut inputs = vec![ins[0].clone(), String::new()];
            let fixed: Option<Vec<usize>> = r.sizes.as_ref().and_then(|s| s.iter().map(Dim::fixed).collect());
            match (&r.sizes, fixed) {
                (Some(_), Some(s)) => {
                    inputs.push(String::new());
                    inputs.push(w.ints(name, &usizes(&s)));
                }
                (Some(sizes), None) => {
                    // Symbolic target sizes: the same symbol as the input's scales by 1.
                    let x = in_fact(0);
                    let scales = sizes
                        .iter()
                        .zip(&x.shape)
                        .map(|(t, i)| match (t, i) {
                            (a, b) if a == b => Ok(1.0),
                            (Dim::Fixed(t), Dim::Fixed(i)) if *i > 0 => Ok(*t as f32 / *i as f32),
                            _ => Err(IoError::Format(format!(
                                "node `{name}`: Resize sizes cannot be written in ONNX"
                            ))),
                        })
                        .collect::<Result<Vec<f32>>>()?;
                    inputs.push(w.konst(name, Tensor::f32(vec![scales.len()], scales)));
                }
                (None, _) => inputs.push(w.konst(name, Tensor::f32(vec![r.scales.len()], r.scales.clone()))),
            }
            let coord = match r.coord {
                CoordMode::HalfPixel => "half_pixel",
                CoordMode::HalfPixelSymmetric => "half_pixel_symmetric",
                CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
                CoordMode::AlignCorners => "align_corners",
                CoordMode::Asymmetric => "asymmetric",
                CoordMode::TfHalfPixelForNn => "tf_half_pixel_for_nn",
            };
            let nearest = match r.nearest {
                NearestMode::RoundPreferFloor => "round_prefer_floor",
                NearestMode::RoundPreferCeil => "round_prefer_ceil",
                NearestMode::Floor => "floor",
                NearestMode::Ceil => "ceil",
                // Resize-10 / Upsample: floor when enlarging an axis, ceil when shrinking it.
                NearestMode::Legacy if r.scales.iter().all(|&s| s >= 1.0) => "floor",
                NearestMode::Legacy if r.scales.iter().all(|&s| s <= 1.0) => "ceil",
                NearestMode::Legacy => {
                    return Err(IoError::Format(format!(
                        "node `{name}`: an opset-10 Resize that enlarges some axes and shrinks others cannot be written at opset {GRAPH_OPSET}"
                    )))
                }
            };
            let attrs = [
                ("mode", Attr::S("nearest")),
                ("coordinate_transformation_mode", Attr::S(coord)),
                ("nearest_mode", Attr::S(nearest)),
            ];
            w.emit("Resize", name, &inputs, &outs, &attrs);
        }
        Op::Unary(u) => {
            let op = match u.kind {
                UnaryKind::Relu => "Relu",
                UnaryKind::Sigmoid => "Sigmoid",
                UnaryKind::Tanh => "Tanh",
                UnaryKind::Erf => "Erf",
                UnaryKind::Exp => "Exp",
                UnaryKind::Log => "Log",
                UnaryKind::Sqrt => "Sqrt",
                UnaryKind::Neg => "Neg",
                UnaryKind::Abs => "Abs",
                UnaryKind::Reciprocal => "Reciprocal",
                UnaryKind::Floor => "Floor",
                UnaryKind::Ceil => "Ceil",
                UnaryKind::Round => "Round",
                UnaryKind::HardSwish => "HardSwish",
                UnaryKind::Softplus => "Softplus",
                UnaryKind::Sin => "Sin",
                UnaryKind::Cos => "Cos",
                UnaryKind::Not => "Not",
                UnaryKind::Silu => {
                    let s = format!("{}__sigmoid", outs[0]);
                    w.emit("Sigmoid", &format!("{name}.sigmoid"), &ins, std::slice::from_ref(&s), &[]);
                    w.emit("Mul", name, &[ins[0].clone(), s], &outs, &[]);
                    return Ok(());
                }
            };
            w.emit(op, name, &ins, &outs, &[]);
        }
        Op::LeakyRelu(l) => w.emit("LeakyRelu", name, &ins, &outs, &[("alpha", Attr::F(l.alpha))]),
        Op::HardSigmoid(h) => w.emit(
            "HardSigmoid",
            name,
            &ins,
            &outs,
            &[("alpha", Attr::F(h.alpha)), ("beta", Attr::F(h.beta))],
        ),
        Op::Elu(e) => w.emit("Elu", name, &ins, &outs, &[("alpha", Attr::F(e.alpha))]),
        Op::Gelu(g) => w.emit(
            "Gelu",
            name,
            &ins,
            &outs,
            &[("approximate", Attr::S(if g.tanh { "tanh" } else { "none" }))],
        ),
        Op::Clip(c) => {
            let mut inputs = vec![ins[0].clone()];
            for b in [c.min, c.max] {
                inputs.push(match b {
                    Some(v) => w.konst(name, Tensor::f32(vec![], vec![v])),
                    None => String::new(),
                });
            }
            while inputs.last().is_some_and(String::is_empty) {
                inputs.pop();
            }
            w.emit("Clip", name, &inputs, &outs, &[]);
        }
        Op::Softmax(s) => w.emit("Softmax", name, &ins, &outs, &[("axis", Attr::I(s.axis))]),
        Op::LogSoftmax(s) => w.emit("LogSoftmax", name, &ins, &outs, &[("axis", Attr::I(s.axis))]),
        Op::Binary(b) => {
            let op = match b.kind {
                BinaryKind::Add => "Add",
                BinaryKind::Sub => "Sub",
                BinaryKind::Mul => "Mul",
                BinaryKind::Div => "Div",
                BinaryKind::Mod | BinaryKind::Fmod => {
                    let fmod = (b.kind == BinaryKind::Fmod) as i64;
                    w.emit("Mod", name, &ins, &outs, &[("fmod", Attr::I(fmod))]);
                    return Ok(());
                }
                BinaryKind::Pow => "Pow",
                BinaryKind::Max => "Max",
                BinaryKind::Min => "Min",
                BinaryKind::Equal => "Equal",
                BinaryKind::Less => "Less",
                BinaryKind::Greater => "Greater",
                BinaryKind::LessOrEqual => "LessOrEqual",
                BinaryKind::GreaterOrEqual => "GreaterOrEqual",
                BinaryKind::And => "And",
                BinaryKind::Or => "Or",
            };
            w.emit(op, name, &ins, &outs, &[]);
        }
        Op::Where(_) => w.emit("Where", name, &ins, &outs, &[]),
        Op::Cast(c) => w.emit("Cast", name, &ins, &outs, &[("to", Attr::I(c.to.onnx_code()))]),
        Op::Reduce(r) => {
            let op = match r.kind {
                ReduceKind::Mean => "ReduceMean",
                ReduceKind::Sum => "ReduceSum",
                ReduceKind::Max => "ReduceMax",
                ReduceKind::Min => "ReduceMin",
                ReduceKind::Prod => "ReduceProd",
            };
            let mut inputs = ins.clone();
            if !r.axes.is_empty() {
                inputs.push(w.ints(name, &r.axes));
            }
            w.emit(op, name, &inputs, &outs, &[("keepdims", Attr::I(r.keepdims as i64))]);
        }
        Op::Reshape(r) => {
            let spec = shape_spec(name, &r.shape, &in_fact(0), 0)?;
            let s = w.ints(name, &spec);
            w.emit("Reshape", name, &[ins[0].clone(), s], &outs, &[]);
        }
        Op::Flatten(f) => w.emit("Flatten", name, &ins, &outs, &[("axis", Attr::I(f.axis))]),
        Op::Transpose(t) => w.emit("Transpose", name, &ins, &outs, &[("perm", Attr::Ints(usizes(&t.perm)))]),
        Op::Squeeze(s) => {
            let mut inputs = ins.clone();
            if !s.axes.is_empty() {
                inputs.push(w.ints(name, &s.axes));
            }
            w.emit("Squeeze", name, &inputs, &outs, &[]);
        }
        Op::Unsqueeze(u) => {
            let a = w.ints(name, &u.axes);
            w.emit("Unsqueeze", name, &[ins[0].clone(), a], &outs, &[]);
        }
        Op::Expand(_) if ins.len() == 2 => w.emit("Expand", name, &ins, &outs, &[]),
        Op::Expand(e) => {
            let input = in_fact(0);
            let off = e.shape.len().saturating_sub(input.rank());
            let aligned = Fact::dims(input.dtype, [vec![Dim::Fixed(1); off], input.shape.clone()].concat());
            let spec = shape_spec(name, &e.shape, &aligned, 1)?;
            let s = w.ints(name, &spec);
            w.emit("Expand", name, &[ins[0].clone(), s], &outs, &[]);
        }
        Op::Shape(s) => {
            let mut attrs = vec![("start", Attr::I(s.start))];
            if let Some(e) = s.end {
                attrs.push(("end", Attr::I(e)));
            }
            w.emit("Shape", name, &ins, &outs, &attrs);
        }
        Op::Concat(c) => w.emit("Concat", name, &ins, &outs, &[("axis", Attr::I(c.axis))]),
        Op::Split(s) => {
            let sizes = w.ints(name, &usizes(&s.sizes));
            w.emit("Split", name, &[ins[0].clone(), sizes], &outs, &[("axis", Attr::I(s.axis))]);
        }
        Op::Slice(s) => {
            // Empty axes / steps mean the defaults (0.. and 1s).
            let n = s.starts.len();
            let axes: Vec<i64> = if s.axes.is_empty() { (0..n as i64).collect() } else { s.axes.clone() };
            let steps: Vec<i64> = if s.steps.is_empty() { vec![1; n] } else { s.steps.clone() };
            let inputs = vec![
                ins[0].clone(),
                w.ints(name, &s.starts),
                w.ints(name, &s.ends),
                w.ints(name, &axes),
                w.ints(name, &steps),
            ];
            w.emit("Slice", name, &inputs, &outs, &[]);
        }
        Op::Pad(p) => {
            let mode = match p.mode {
                PadMode::Constant => "constant",
                PadMode::Reflect => "reflect",
                PadMode::Edge => "edge",
            };
            let mut inputs = vec![ins[0].clone(), w.ints(name, &p.pads)];
            if p.mode == PadMode::Constant {
                inputs.push(w.konst(name, Tensor::f32(vec![], vec![p.value])));
            }
            w.emit("Pad", name, &inputs, &outs, &[("mode", Attr::S(mode))]);
        }
        Op::Gather(g) => w.emit("Gather", name, &ins, &outs, &[("axis", Attr::I(g.axis))]),
        Op::Identity(_) => w.emit("Identity", name, &ins, &outs, &[]),
        Op::QuantizeLinear(q) => {
            let mut ins = ins.clone();
            if ins.len() == 2 && q.dtype != DType::U8 {
                // ONNX's default code type is uint8: an int8 node without zero point gets zeros.
                let s =
                    in_fact(1).fixed_shape().map_err(|e| IoError::Format(format!("node `{name}`: {e}")))?;
                let n = s.iter().product();
                ins.push(w.konst(name, Tensor::from_i64s(q.dtype, s, &vec![0; n])));
            }
            w.emit("QuantizeLinear", name, &ins, &outs, &[("axis", Attr::I(q.axis))]);
        }
        Op::DequantizeLinear(d) => {
            w.emit("DequantizeLinear", name, &ins, &outs, &[("axis", Attr::I(d.axis))])
        }
    }
    Ok(())
}

/// Serialize `graph` as an ONNX ModelProto.
pub fn graph_onnx_bytes(graph: &Graph) -> Result<Vec<u8>> {
    let mut w = Writer { graph, nodes: vec![], inits: vec![], counter: 0 };
    for node in &graph.nodes {
        export_node(&mut w, node)?;
    }
    let mut g = Message::new();
    for n in &w.nodes {
        g.message(1, n);
    }
    g.string(2, "shrink");
    for (_, name, t) in graph.consts() {
        g.message(5, &tensor_proto(name, t));
    }
    for t in &w.inits {
        g.message(5, t);
    }
    for &i in &graph.inputs {
        g.message(11, &value_info(&graph.values[i].name, &graph.values[i].fact));
    }
    for &o in &graph.outputs {
        g.message(12, &value_info(&graph.values[o].name, &graph.values[o].fact));
    }
    let mut opset = Message::new();
    opset.string(1, "").int(2, GRAPH_OPSET);
    let mut m = Message::new();
    m.int(1, IR_VERSION).string(2, "shrink").message(7, &g).message(8, &opset);
    Ok(m.into_bytes())
}

/// Write `graph` as an ONNX file (atomically).
pub fn save_graph_onnx(graph: &Graph, path: &Path) -> Result<()> {
    write_atomic(path, &graph_onnx_bytes(graph)?)
}

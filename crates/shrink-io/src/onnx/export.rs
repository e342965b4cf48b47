//! shrink IR → ONNX (opset 17). Weights are exported as the forward pass sees them (masked and
//! fake-quantized), so onnxruntime computes what `shrink eval` computes. The batch dimension is
//! symbolic (`batch`); the output is named `logits`.
use super::proto::Message;
use crate::atomic::write_atomic;
use crate::error::Result;
use shrink_ir::{Model, Op};
use std::path::Path;

/// ONNX IR version written (ONNX 1.13+, opset 17).
const IR_VERSION: i64 = 8;
/// Default-domain opset written.
pub const OPSET: i64 = 17;

const FLOAT: i64 = 1;
const INT64: i64 = 7;

// AttributeProto.AttributeType
const ATTR_FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

fn tensor_f32(name: &str, dims: &[usize], values: &[f32]) -> Message {
    let mut t = Message::new();
    for &d in dims {
        t.int(1, d as i64);
    }
    t.int(2, FLOAT).string(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

fn tensor_i64(name: &str, values: &[i64]) -> Message {
    let mut t = Message::new();
    t.int(1, values.len() as i64).int(2, INT64).string(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    t.bytes(9, &raw);
    t
}

fn attr_int(name: &str, v: i64) -> Message {
    let mut a = Message::new();
    a.string(1, name).int(3, v).int(20, ATTR_INT);
    a
}

fn attr_float(name: &str, v: f32) -> Message {
    let mut a = Message::new();
    a.string(1, name).float(2, v).int(20, ATTR_FLOAT);
    a
}

fn attr_ints(name: &str, v: &[usize]) -> Message {
    let mut a = Message::new();
    a.string(1, name);
    for &x in v {
        a.int(8, x as i64);
    }
    a.int(20, ATTR_INTS);
    a
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[Message]) -> Message {
    let mut n = Message::new();
    for i in inputs {
        n.string(1, i);
    }
    for o in outputs {
        n.string(2, o);
    }
    n.string(3, name).string(4, op);
    for a in attrs {
        n.message(5, a);
    }
    n
}

fn value_info(name: &str, dims: &[Option<usize>]) -> Message {
    let mut shape = Message::new();
    for d in dims {
        let mut dim = Message::new();
        match d {
            Some(v) => dim.int(1, *v as i64),
            None => dim.string(2, "batch"),
        };
        shape.message(1, &dim);
    }
    let mut tensor = Message::new();
    tensor.int(1, FLOAT).message(2, &shape);
    let mut ty = Message::new();
    ty.message(1, &tensor);
    let mut vi = Message::new();
    vi.string(1, name).message(2, &ty);
    vi
}

/// Serializes `model` as an ONNX ModelProto.
pub fn onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    let shapes = model.shapes()?;
    let mut graph = Message::new();
    let mut initializers: Vec<Message> = Vec::new();
    let names: Vec<String> = model
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, n)| {
            if id == 0 {
                "input".to_string()
            } else if id == model.graph.output() {
                "logits".to_string()
            } else {
                n.name.clone()
            }
        })
        .collect();
    fn weight_into(model: &Model, inits: &mut Vec<Message>, pname: &str) -> Result<String> {
        let t = model.effective_param(pname)?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        inits.push(tensor_f32(pname, t.dims(), &values));
        Ok(pname.to_string())
    }
    let mut nodes: Vec<Message> = Vec::new();
    for (id, n) in model.graph.nodes.iter().enumerate() {
        let out = names[id].as_str();
        let ins: Vec<&str> = n.inputs.iter().map(|&i| names[i].as_str()).collect();
        let p = |s: &str| format!("{}.{s}", n.name);
        match &n.op {
            Op::Input => {}
            Op::Linear { bias, .. } => {
                let w = weight_into(model, &mut initializers, &p("weight"))?;
                let mut inputs = vec![ins[0].to_string(), w];
                if *bias {
                    inputs.push(weight_into(model, &mut initializers, &p("bias"))?);
                }
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                nodes.push(node("Gemm", &n.name, &inputs, &[out], &[attr_int("transB", 1)]));
            }
            Op::Conv2d { kernel, stride, padding, groups, bias, .. } => {
                let w = weight_into(model, &mut initializers, &p("weight"))?;
                let mut inputs = vec![ins[0].to_string(), w];
                if *bias {
                    inputs.push(weight_into(model, &mut initializers, &p("bias"))?);
                }
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let attrs = [
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", stride),
                    attr_ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
                    attr_int("group", *groups as i64),
                ];
                nodes.push(node("Conv", &n.name, &inputs, &[out], &attrs));
            }
            Op::BatchNorm { eps, .. } => {
                let inputs = [
                    ins[0].to_string(),
                    weight_into(model, &mut initializers, &p("weight"))?,
                    weight_into(model, &mut initializers, &p("bias"))?,
                    weight_into(model, &mut initializers, &p("running_mean"))?,
                    weight_into(model, &mut initializers, &p("running_var"))?,
                ];
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                nodes.push(node(
                    "BatchNormalization",
                    &n.name,
                    &inputs,
                    &[out],
                    &[attr_float("epsilon", *eps as f32)],
                ));
            }
            Op::Relu => nodes.push(node("Relu", &n.name, &ins, &[out], &[])),
            Op::MaxPool2d { kernel, stride, padding } | Op::AvgPool2d { kernel, stride, padding } => {
                let mut attrs = vec![
                    attr_ints("kernel_shape", kernel),
                    attr_ints("strides", stride),
                    attr_ints("pads", &[padding[0], padding[1], padding[0], padding[1]]),
                ];
                let op = if matches!(n.op, Op::MaxPool2d { .. }) {
                    "MaxPool"
                } else {
                    attrs.push(attr_int("count_include_pad", 1));
                    "AveragePool"
                };
                nodes.push(node(op, &n.name, &ins, &[out], &attrs));
            }
            Op::GlobalAvgPool => nodes.push(node("GlobalAveragePool", &n.name, &ins, &[out], &[])),
            Op::Flatten => nodes.push(node("Flatten", &n.name, &ins, &[out], &[attr_int("axis", 1)])),
            Op::Add => nodes.push(node("Add", &n.name, &ins, &[out], &[])),
            Op::Dropout { .. } => nodes.push(node("Identity", &n.name, &ins, &[out], &[])),
            Op::ShortcutA { stride, pad_before, pad_after } => {
                // x[:, :, ::s, ::s] then zero-pad channels: Slice + Pad (opset ≥ 11 input form).
                let k = |s: &str| format!("{}.{s}", n.name);
                initializers.push(tensor_i64(&k("starts"), &[0, 0]));
                initializers.push(tensor_i64(&k("ends"), &[i64::MAX, i64::MAX]));
                initializers.push(tensor_i64(&k("axes"), &[2, 3]));
                initializers.push(tensor_i64(&k("steps"), &[*stride as i64, *stride as i64]));
                initializers
                    .push(tensor_i64(&k("pads"), &[0, *pad_before as i64, 0, 0, 0, *pad_after as i64, 0, 0]));
                let sliced = k("sliced");
                nodes.push(node(
                    "Slice",
                    &k("slice"),
                    &[ins[0], &k("starts"), &k("ends"), &k("axes"), &k("steps")],
                    &[&sliced],
                    &[],
                ));
                nodes.push(node("Pad", &n.name, &[&sliced, &k("pads")], &[out], &[]));
            }
        }
    }
    for n in &nodes {
        graph.message(1, n);
    }
    graph.string(2, &model.meta.arch);
    for t in &initializers {
        graph.message(5, t);
    }
    let dims = |s: &[usize]| -> Vec<Option<usize>> {
        std::iter::once(None).chain(s.iter().map(|d| Some(*d))).collect()
    };
    graph.message(11, &value_info("input", &dims(&model.meta.input_shape)));
    graph.message(12, &value_info("logits", &dims(&shapes[model.graph.output()])));
    let mut opset = Message::new();
    opset.string(1, "").int(2, OPSET);
    let mut m = Message::new();
    m.int(1, IR_VERSION)
        .string(2, "shrink")
        .string(3, crate::model_file::SHRINK_VERSION)
        .message(7, &graph)
        .message(8, &opset);
    // shrink's metadata (normalization, classes), read back by the importer.
    let mut meta = Message::new();
    meta.string(1, "shrink.meta").string(2, &serde_json::to_string(&model.meta)?);
    m.message(14, &meta);
    Ok(m.into_bytes())
}

/// Writes `model` as ONNX to `path` atomically.
pub fn save_onnx(model: &Model, path: &Path) -> Result<()> {
    write_atomic(path, &onnx_bytes(model)?)
}

//! ONNX → open graph IR ([`shrink_graph::Graph`]) as a registry: each ONNX op type maps to IR
//! ops in one function of a family file ([`nn`], [`math`], [`array`]); the driver orders the
//! nodes, binds inputs and initializers, dispatches, folds constant subgraphs as it goes and
//! keeps every graph output. An op outside the registry is a one-line error naming op type and
//! node.

pub mod array;
pub mod ctx;
pub mod math;
pub mod nn;
pub mod quant;
pub mod tensor_proto;

use crate::error::{IoError, Result};
use crate::onnx::decode::{self, Dim as OnnxDim, NodeProto};
pub use ctx::{Ctx, SymInt, R};
use shrink_graph::{DType, Dim, Fact, Graph};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tensor_proto::Const;

/// Maps one ONNX node into the graph.
pub type ImportFn = fn(&mut Ctx, &NodeProto) -> R<()>;

/// The mapping of an ONNX op type, if shrink supports it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    nn::lookup(op_type)
        .or_else(|| math::lookup(op_type))
        .or_else(|| array::lookup(op_type))
        .or_else(|| quant::lookup(op_type))
}

/// Oldest and newest default-domain opsets the importer accepts.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=22;

fn err(msg: impl Into<String>) -> IoError {
    IoError::Format(msg.into())
}

/// ONNX element type → IR dtype of a graph input (uint8 and int8 keep their type: quantized
/// inputs; the other integers are i64).
fn input_dtype(name: &str, elem_type: i64) -> Result<DType> {
    match elem_type {
        0 | 1 | 10 | 11 | 16 => Ok(DType::F32),
        2 => Ok(DType::U8),
        3 => Ok(DType::I8),
        4..=7 | 12 | 13 => Ok(DType::I64),
        9 => Ok(DType::Bool),
        t => Err(err(format!("input `{name}` has unsupported element type {t}"))),
    }
}

/// Import ONNX `ModelProto` bytes into an open-IR graph.
pub fn import_graph(bytes: &[u8]) -> Result<Graph> {
    let m = decode::model(bytes)?;
    let g = m.graph.as_ref().ok_or_else(|| err("the ONNX model has no graph"))?;
    let opset = m
        .opset_import
        .iter()
        .find(|(d, _)| d.is_empty() || d == "ai.onnx")
        .map(|(_, v)| *v)
        .unwrap_or(*OPSETS.start());
    if !OPSETS.contains(&opset) {
        return Err(err(format!(
            "opset {opset} is not supported (opsets {} to {} are)",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let mut ctx = Ctx::new(opset);
    let init_names: HashSet<&str> = g.initializers.iter().map(|t| t.name.as_str()).collect();
    for t in &g.initializers {
        let c = Const::from_proto(t).map_err(|e| err(format!("initializer `{}`: {e}", t.name)))?;
        let id = ctx.add_const(&t.name, ctx::to_tensor(c, t.data_type)).map_err(err)?;
        ctx.bind(&t.name, id);
    }
    for (k, i) in g.inputs.iter().filter(|i| !init_names.contains(i.name.as_str())).enumerate() {
        let dims = i.shape.as_ref().ok_or_else(|| err(format!("input `{}` has no shape", i.name)))?;
        let shape = dims
            .iter()
            .enumerate()
            .map(|(a, d)| match d {
                OnnxDim::Value(v) if *v > 0 && *v <= 1 << 24 => Ok(Dim::Fixed(*v as usize)),
                OnnxDim::Value(v) if *v > 0 => {
                    Err(err(format!("input `{}`: dimension {v} is too large", i.name)))
                }
                OnnxDim::Param(p) if !p.is_empty() => Ok(Dim::Sym(p.clone())),
                _ if a == 0 => Ok(Dim::Sym("N".into())),
                _ => Ok(Dim::Sym(format!("{}_{k}_{a}", i.name))),
            })
            .collect::<Result<Vec<_>>>()?;
        let fact = Fact::dims(input_dtype(&i.name, i.elem_type)?, shape);
        let id = ctx.graph.add_input(&i.name, fact).map_err(|e| err(e.to_string()))?;
        ctx.bind(&i.name, id);
    }
    if ctx.graph.inputs.is_empty() {
        return Err(err("the ONNX graph has no input"));
    }
    for node in topological(&g.nodes, &ctx)? {
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(err(format!(
                "node `{}`: op `{}` of domain `{}` is not supported",
                node.name, node.op_type, node.domain
            )));
        }
        let f = lookup(&node.op_type).ok_or_else(|| {
            err(format!("node `{}`: unsupported op type `{}`", display_name(node), node.op_type))
        })?;
        f(&mut ctx, node)
            .map_err(|e| err(format!("node `{}` ({}): {e}", display_name(node), node.op_type)))?;
    }
    let mut outputs = Vec::new();
    for o in &g.outputs {
        let id = ctx
            .lookup(&o.name)
            .ok_or_else(|| err(format!("graph output `{}` is not computed by any node", o.name)))?;
        outputs.push(id);
    }
    if outputs.is_empty() {
        return Err(err("the ONNX graph has no output"));
    }
    let mut graph = ctx.graph;
    graph.set_outputs(outputs);
    graph.remove_dead();
    Ok(graph)
}

/// Read and import an ONNX file; errors name the file.
pub fn load_graph(path: &Path) -> Result<Graph> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    import_graph(&bytes).map_err(|e| e.in_file(path))
}

fn display_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.outputs.first().cloned().unwrap_or_else(|| n.op_type.clone())
    } else {
        n.name.clone()
    }
}

/// The nodes in an order where each reads only defined names (ONNX files are usually sorted,
/// but not all exporters guarantee it). A name nothing defines is a dangling edge; nodes left
/// over after that are a cycle.
fn topological<'n, 'a>(nodes: &'n [NodeProto<'a>], ctx: &Ctx) -> Result<Vec<&'n NodeProto<'a>>> {
    let produced: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(k, n)| n.outputs.iter().filter(|o| !o.is_empty()).map(move |o| (o.as_str(), k)))
        .collect();
    for n in nodes {
        for i in n.inputs.iter().filter(|i| !i.is_empty()) {
            if ctx.lookup(i).is_none() && !produced.contains_key(i.as_str()) {
                return Err(err(format!(
                    "node `{}` reads `{i}`, which no input, initializer or node defines",
                    display_name(n)
                )));
            }
        }
    }
    let mut done = vec![false; nodes.len()];
    let mut defined: HashSet<&str> = HashSet::new();
    let mut order = Vec::with_capacity(nodes.len());
    loop {
        let mut progress = false;
        for (k, n) in nodes.iter().enumerate() {
            if done[k] {
                continue;
            }
            let ready = n
                .inputs
                .iter()
                .filter(|i| !i.is_empty())
                .all(|i| ctx.lookup(i).is_some() || defined.contains(i.as_str()));
            if ready {
                done[k] = true;
                progress = true;
                order.push(n);
                defined.extend(n.outputs.iter().map(String::as_str));
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        if !progress {
            let k = done.iter().position(|d| !d).expect("a node is left");
            return Err(err(format!("the graph has a cycle through node `{}`", display_name(&nodes[k]))));
        }
    }
}

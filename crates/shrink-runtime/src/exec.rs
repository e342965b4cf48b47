//! Reference executor: runs a [`Graph`] node by node in f32/i64, freeing each value after its
//! last reader. Symbolic dimensions are bound from the inputs' shapes.

use crate::eval::{Eval, EvalCtx};
use shrink_graph::{Dim, Graph, Op, Tensor, ValueDef};
use std::collections::HashMap;
use thiserror::Error;

/// An error while running a graph; names the node or input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EvalError {
    /// An input does not match the graph's declared fact.
    #[error("input `{name}`: {msg}")]
    Input { name: String, msg: String },
    /// An operator failed (bad runtime shape, unsupported attribute combination).
    #[error("node `{node}` ({op}): {msg}")]
    Node { node: String, op: &'static str, msg: String },
    /// An operator-level error before the node name is known.
    #[error("{0}")]
    Op(String),
}

impl EvalError {
    /// An operator-level error.
    pub fn op(msg: impl Into<String>) -> Self {
        EvalError::Op(msg.into())
    }
}

/// Evaluate one operator on tensors (the one exhaustive match over [`Op`] of the executor).
pub fn eval_op(op: &Op, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
    match op {
        Op::Conv(o) => o.eval(ins, ctx),
        Op::ConvTranspose(o) => o.eval(ins, ctx),
        Op::Gemm(o) => o.eval(ins, ctx),
        Op::MatMul(o) => o.eval(ins, ctx),
        Op::BatchNorm(o) => o.eval(ins, ctx),
        Op::LayerNorm(o) => o.eval(ins, ctx),
        Op::GroupNorm(o) => o.eval(ins, ctx),
        Op::InstanceNorm(o) => o.eval(ins, ctx),
        Op::Pool(o) => o.eval(ins, ctx),
        Op::GlobalPool(o) => o.eval(ins, ctx),
        Op::Resize(o) => o.eval(ins, ctx),
        Op::Unary(o) => o.eval(ins, ctx),
        Op::LeakyRelu(o) => o.eval(ins, ctx),
        Op::HardSigmoid(o) => o.eval(ins, ctx),
        Op::Elu(o) => o.eval(ins, ctx),
        Op::Gelu(o) => o.eval(ins, ctx),
        Op::Clip(o) => o.eval(ins, ctx),
        Op::Softmax(o) => o.eval(ins, ctx),
        Op::LogSoftmax(o) => o.eval(ins, ctx),
        Op::Binary(o) => o.eval(ins, ctx),
        Op::Where(o) => o.eval(ins, ctx),
        Op::Cast(o) => o.eval(ins, ctx),
        Op::Reduce(o) => o.eval(ins, ctx),
        Op::Reshape(o) => o.eval(ins, ctx),
        Op::Flatten(o) => o.eval(ins, ctx),
        Op::Transpose(o) => o.eval(ins, ctx),
        Op::Squeeze(o) => o.eval(ins, ctx),
        Op::Unsqueeze(o) => o.eval(ins, ctx),
        Op::Expand(o) => o.eval(ins, ctx),
        Op::Shape(o) => o.eval(ins, ctx),
        Op::Concat(o) => o.eval(ins, ctx),
        Op::Split(o) => o.eval(ins, ctx),
        Op::Slice(o) => o.eval(ins, ctx),
        Op::Pad(o) => o.eval(ins, ctx),
        Op::Gather(o) => o.eval(ins, ctx),
        Op::Identity(o) => o.eval(ins, ctx),
        Op::QuantizeLinear(o) => o.eval(ins, ctx),
        Op::DequantizeLinear(o) => o.eval(ins, ctx),
    }
}

/// Bind symbolic dimensions of the graph inputs to the fed tensors' sizes, checking dtypes,
/// ranks and fixed sizes.
pub fn bind_inputs(graph: &Graph, inputs: &[Tensor]) -> Result<HashMap<String, usize>, EvalError> {
    if inputs.len() != graph.inputs.len() {
        return Err(EvalError::Input {
            name: "(inputs)".into(),
            msg: format!("the graph has {} inputs, {} were given", graph.inputs.len(), inputs.len()),
        });
    }
    let mut syms = HashMap::new();
    for (&id, t) in graph.inputs.iter().zip(inputs) {
        let v = &graph.values[id];
        let bad = |msg: String| EvalError::Input { name: v.name.clone(), msg };
        if t.dtype() != v.fact.dtype {
            return Err(bad(format!("expects {:?} values, got {:?}", v.fact.dtype, t.dtype())));
        }
        if t.shape.len() != v.fact.rank() {
            return Err(bad(format!("expects shape {}, got {:?}", v.fact, t.shape)));
        }
        for (d, &n) in v.fact.shape.iter().zip(&t.shape) {
            match d {
                Dim::Fixed(k) if *k != n => {
                    return Err(bad(format!("expects shape {}, got {:?}", v.fact, t.shape)))
                }
                Dim::Sym(s) => match syms.insert(s.clone(), n) {
                    Some(prev) if prev != n => {
                        return Err(bad(format!("dimension `{s}` is {prev} elsewhere but {n} here")))
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(syms)
}

/// Run `graph` on `inputs` (in the order of `graph.inputs`); returns its outputs in order.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let syms = bind_inputs(graph, inputs)?;
    let mut ctx = EvalCtx { syms, exact_accumulation: false };
    let mut slots: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    for (&id, t) in graph.inputs.iter().zip(inputs) {
        slots[id] = Some(t.clone());
    }
    for (id, v) in graph.values.iter().enumerate() {
        if let ValueDef::Const(t) = &v.def {
            slots[id] = Some(t.as_ref().clone());
        }
    }
    // Remaining reads of each value, so intermediate tensors are dropped after their last reader.
    let mut reads = vec![0usize; graph.values.len()];
    for n in &graph.nodes {
        for &v in &n.inputs {
            reads[v] += 1;
        }
    }
    for &o in &graph.outputs {
        reads[o] += 1;
    }
    for node in &graph.nodes {
        let ins: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|&v| {
                slots[v].as_ref().ok_or_else(|| EvalError::Node {
                    node: node.name.clone(),
                    op: node.op.def().name(),
                    msg: format!("input `{}` has no value", graph.values[v].name),
                })
            })
            .collect::<Result<_, _>>()?;
        ctx.exact_accumulation = reads_dequantized_operands(graph, node);
        let outs = eval_op(&node.op, &ins, &ctx).map_err(|e| match e {
            EvalError::Op(msg) => EvalError::Node { node: node.name.clone(), op: node.op.def().name(), msg },
            other => other,
        })?;
        if outs.len() != node.outputs.len() {
            return Err(EvalError::Node {
                node: node.name.clone(),
                op: node.op.def().name(),
                msg: format!("produced {} outputs, the graph expects {}", outs.len(), node.outputs.len()),
            });
        }
        for &v in &node.inputs {
            reads[v] -= 1;
            if reads[v] == 0 && !matches!(graph.values[v].def, ValueDef::Const(_)) {
                slots[v] = None;
            }
        }
        for (&o, t) in node.outputs.iter().zip(outs) {
            slots[o] = Some(t);
        }
    }
    graph
        .outputs
        .iter()
        .map(|&o| {
            slots[o]
                .clone()
                .ok_or_else(|| EvalError::Op(format!("output `{}` was not computed", graph.values[o].name)))
        })
        .collect()
}

/// Whether `node` is a Conv / Gemm / MatMul whose two operands are both DequantizeLinear outputs
/// (a QDQ product: its exact value is an integer dot product times scales).
fn reads_dequantized_operands(graph: &Graph, node: &shrink_graph::Node) -> bool {
    let dequantized = |v: &usize| {
        matches!(graph.values[*v].def, ValueDef::Node { node, .. }
            if matches!(graph.nodes[node].op, Op::DequantizeLinear(_)))
    };
    matches!(node.op, Op::Conv(_) | Op::Gemm(_) | Op::MatMul(_))
        && node.inputs.iter().take(2).all(dequantized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrink_graph::ops::matmul::MatMul;
    use shrink_graph::ops::quant::DequantizeLinear;

    /// `x · w` with `x = [2^25, 1, -2^25]` (int32 codes, scale 1) and `w = [1, 1, 1]ᵀ`, each read
    /// through DequantizeLinear, or both as plain f32 constants.
    fn product(dequantized: bool) -> f32 {
        let big = 33_554_432;
        let mut g = Graph::new();
        let (x, w) = if dequantized {
            let xq = g.add_const("xq", Tensor::i32(vec![1, 3], vec![big, 1, -big])).unwrap();
            let wq = g.add_const("wq", Tensor::i8(vec![3, 1], vec![1, 1, 1])).unwrap();
            let s = g.add_const("s", Tensor::f32(vec![], vec![1.0])).unwrap();
            let x = g.add_node("dqx", DequantizeLinear { axis: 1 }, &[xq, s], &["x".into()]).unwrap()[0];
            let w = g.add_node("dqw", DequantizeLinear { axis: 1 }, &[wq, s], &["w".into()]).unwrap()[0];
            (x, w)
        } else {
            let x = g.add_const("x", Tensor::f32(vec![1, 3], vec![big as f32, 1.0, -big as f32])).unwrap();
            let w = g.add_const("w", Tensor::f32(vec![3, 1], vec![1.0; 3])).unwrap();
            (x, w)
        };
        let y = g.add_node("mm", MatMul {}, &[x, w], &["y".into()]).unwrap()[0];
        g.set_outputs(vec![y]);
        run(&g, &[]).unwrap()[0].as_f32().unwrap()[0]
    }

    #[test]
    fn products_of_dequantized_operands_are_summed_exactly() {
        assert!(reads_dequantized_operands_of_mm());
        assert_eq!(product(true), 1.0);
        // The same f32 values as plain constants: summed in f32 left to right the 1 is lost.
        assert_eq!(33_554_432f32 + 1.0 - 33_554_432f32, 0.0);
        assert!(product(false).is_finite());
    }

    fn reads_dequantized_operands_of_mm() -> bool {
        let mut g = Graph::new();
        let q = g.add_const("q", Tensor::i8(vec![2, 2], vec![1; 4])).unwrap();
        let s = g.add_const("s", Tensor::f32(vec![], vec![0.5])).unwrap();
        let a = g.add_node("dq", DequantizeLinear { axis: 1 }, &[q, s], &["a".into()]).unwrap()[0];
        let f = g.add_const("f", Tensor::f32(vec![2, 2], vec![1.0; 4])).unwrap();
        g.add_node("both", MatMul {}, &[a, a], &["y".into()]).unwrap();
        g.add_node("one", MatMul {}, &[a, f], &["z".into()]).unwrap();
        reads_dequantized_operands(&g, &g.nodes[1]) && !reads_dequantized_operands(&g, &g.nodes[2])
    }
}

//! Embedding shrink-runtime in a program: build a small graph in code, compile it into a plan,
//! open a session for a batch size and run it twice (the second run reuses the session's
//! memory). The runtime has no ONNX reader (no protobuf dependency): a program gets its
//! `Graph` from code, from shrink-io's importer at build time, or from a `.shrink` deploy file,
//! which loads into the same `Graph` and compiles through this same API.
//!
//! Run: `cargo run --release -p shrink-runtime --example embed`

use shrink_graph::ops::activation::{Clip, Unary, UnaryKind};
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::ops::pool::{GlobalPool, PoolKind};
use shrink_graph::ops::shape::Flatten;
use shrink_graph::{DType, Dim, Fact, Graph, Tensor};
use shrink_runtime::plan::{Plan, PlanOptions};

/// Deterministic stand-in weights.
fn weights(shape: Vec<usize>, seed: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::f32(shape, (0..n).map(|i| ((i as f32 + 1.0) * seed).sin() * 0.5).collect())
}

/// x (N, 1, 8, 8) → conv 3×3 (4 channels) → ReLU6 → global average pool → flatten → linear 4→3
/// → ReLU.
fn build() -> Result<Graph, shrink_graph::GraphError> {
    let mut g = Graph::new();
    let batch = Dim::Sym("N".into());
    let x =
        g.add_input("x", Fact::dims(DType::F32, vec![batch, Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(8)]))?;
    let w = g.add_const("conv.weight", weights(vec![4, 1, 3, 3], 0.7))?;
    let b = g.add_const("conv.bias", weights(vec![4], 0.3))?;
    let conv = Conv { strides: vec![1, 1], pads: vec![1; 4], dilations: vec![1, 1], groups: 1 };
    let c = g.add_node("conv", conv, &[x, w, b], &["c".into()])?[0];
    let r = g.add_node("relu6", Clip { min: Some(0.0), max: Some(6.0) }, &[c], &["r".into()])?[0];
    let p = g.add_node("pool", GlobalPool { kind: PoolKind::Avg }, &[r], &["p".into()])?[0];
    let f = g.add_node("flatten", Flatten { axis: 1 }, &[p], &["f".into()])?[0];
    let fw = g.add_const("fc.weight", weights(vec![3, 4], 1.1))?;
    let fb = g.add_const("fc.bias", weights(vec![3], 0.9))?;
    let fc = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    let y = g.add_node("fc", fc, &[f, fw, fb], &["logits".into()])?[0];
    let y = g.add_node("relu", Unary { kind: UnaryKind::Relu }, &[y], &["y".into()])?[0];
    g.set_outputs(vec![y]);
    Ok(g)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let graph = build()?;
    // Compile once: passes (BatchNorm folding, activation fusion), kernels, packed weights.
    let plan = Plan::compile(&graph, &PlanOptions { tune: false })?;
    for (i, s) in plan.steps().iter().enumerate() {
        println!("step {i}: {} ({})", s.name, s.op);
    }
    // A session per batch size: the arena is allocated here, once.
    let mut session = plan.session(2)?;
    println!("arena: {} floats in {} buffers", session.arena_len(), session.arena_buffers().len());
    for run in 0..2 {
        let x = Tensor::f32(vec![2, 1, 8, 8], (0..128).map(|i| (i + run) as f32 / 128.0).collect());
        let out = session.run(&[x])?;
        println!("run {run}: shape {:?}, values {:?}", out[0].shape, out[0].as_f32().unwrap_or(&[]));
    }
    Ok(())
}

//! Int4 weight-only linear steps.
//!
//! The graph form of an int4 weight (what `shrink export --int4` writes) is a
//! `DequantizeLinear` of a constant int8 tensor whose codes all lie in `[-8, 7]`, symmetric
//! (no zero point, or zero), with a per-tensor scale or one scale per output channel, read as
//! the weight (input 1) of a Gemm or MatMul. [`prepare`] finds these pairs, packs the codes
//! four bits each ([`Int4Weights`]) into a linear step of the Gemm / MatMul and drops the
//! `DequantizeLinear` (its f32 weight is never made). Two kernels read them: the W4A8 kernel
//! ([`LinearKernel::Int4U8`], activations quantized to u8 per row on the fly, integer dot
//! products; the default) and the f32-activation one ([`LinearKernel::Int4F32`], equal to the
//! reference evaluation up to f32 rounding).

use super::epilogue::Epilogue;
use super::linear::{LinearKernel, LinearStep, LinearWeights};
use super::sparse_linear::activation;
use super::StepKind;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::{DType, Graph, Op, ValueDef, ValueId};
use shrink_kernels::{linear_i4, linear_i4u8, Int4Group, Isa, PackedI4, PackedI4U8};
use std::collections::HashMap;

/// Int4 weights in the packings of both kernels.
#[derive(Debug, Clone)]
pub struct Int4Weights {
    /// For the f32-activation kernel.
    pub f32act: PackedI4,
    /// For the W4A8 kernel (absent when K is beyond its limit).
    pub u8act: Option<PackedI4U8>,
}

/// Candidates with both packings, W4A8 first.
pub const KERNELS_U8: [LinearKernel; 2] = [LinearKernel::Int4U8, LinearKernel::Int4F32];
/// Candidates with the f32-activation packing only.
pub const KERNELS_F32: [LinearKernel; 1] = [LinearKernel::Int4F32];

impl Int4Weights {
    /// The kernels that can run them.
    pub fn candidates(&self) -> &'static [LinearKernel] {
        if self.u8act.is_some() {
            &KERNELS_U8
        } else {
            &KERNELS_F32
        }
    }
}

/// The int4 codes (`[N, K]`) and per-output scales of weight value `w` when it is an int4
/// `DequantizeLinear` laid out as `[N, K]` (`trans_b`) or `[K, N]`; scales multiplied by
/// `alpha`.
fn int4_source(
    g: &Graph,
    w: ValueId,
    trans_b: bool,
    alpha: f32,
) -> Option<(Vec<i8>, Vec<f32>, usize, usize)> {
    let ValueDef::Node { node: p, slot: 0 } = g.values[w].def else { return None };
    let node = &g.nodes[p];
    let Op::DequantizeLinear(dq) = &node.op else { return None };
    let ins = &node.inputs;
    if !(2..=3).contains(&ins.len()) {
        return None;
    }
    let codes = g.const_value(ins[0])?;
    let q = codes.as_i8()?;
    if codes.shape.len() != 2 || q.iter().any(|v| !(-8..=7).contains(v)) {
        return None;
    }
    if let Some(&z) = ins.get(2) {
        let zp = g.const_value(z)?;
        if zp.dtype() != DType::I8 || zp.as_i8()?.iter().any(|&v| v != 0) {
            return None;
        }
    }
    let scale = g.const_value(ins[1])?.as_f32()?;
    let (rows, cols) = (codes.shape[0], codes.shape[1]);
    let (n, k) = if trans_b { (rows, cols) } else { (cols, rows) };
    let n_axis = if trans_b { 0 } else { 1 };
    let axis = if dq.axis < 0 { dq.axis + 2 } else { dq.axis };
    let scales: Vec<f32> = match scale.len() {
        1 => vec![alpha * scale[0]; n],
        l if l == n && axis == n_axis && n != 1 => scale.iter().map(|s| alpha * s).collect(),
        _ => return None,
    };
    if scales.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let mut out = vec![0i8; n * k];
    for j in 0..n {
        for t in 0..k {
            out[j * k + t] = if trans_b { q[j * k + t] } else { q[t * n + j] };
        }
    }
    Some((out, scales, n, k))
}

/// `beta·C` as a per-output bias (C constant along the rows), as the dense lowering.
fn bias_of(g: &Graph, gm: &Gemm, c: Option<&ValueId>, n: usize) -> Option<Option<Vec<f32>>> {
    let Some(&c) = c else { return Some(None) };
    if gm.beta == 0.0 {
        return Some(None);
    }
    let t = g.const_value(c)?;
    let cv = t.as_f32()?;
    if t.shape.len() > 2 || t.shape.iter().rev().skip(1).any(|&d| d != 1) {
        return None;
    }
    match cv.len() {
        1 => Some(Some(vec![gm.beta * cv[0]; n])),
        l if l == n => Some(Some(cv.iter().map(|v| gm.beta * v).collect())),
        _ => None,
    }
}

/// The int4 linear step of a Gemm / MatMul node whose weight is an int4 `DequantizeLinear`.
pub fn lower(g: &Graph, op: &Op, ins: &[ValueId]) -> Option<StepKind> {
    let f32_in = |v: ValueId| g.values[v].fact.dtype == DType::F32;
    let (gm, bias_in) = match op {
        Op::Gemm(gm) if (2..=3).contains(&ins.len()) && !gm.trans_a && g.values[ins[0]].fact.rank() == 2 => {
            (gm.clone(), ins.get(2))
        }
        Op::MatMul(_) if ins.len() == 2 && g.values[ins[0]].fact.rank() >= 1 => {
            (Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false }, None)
        }
        _ => return None,
    };
    if !f32_in(ins[0]) || ins[0] == ins[1] {
        return None;
    }
    let (q, scales, n, k) = int4_source(g, ins[1], gm.trans_b, gm.alpha)?;
    let bias = bias_of(g, &gm, bias_in, n)?;
    let f32act = PackedI4::pack(&q, &scales, n, k, Int4Group::PerChannel).ok()?;
    let u8act = PackedI4U8::pack(&q, &scales, n, k, Int4Group::PerChannel).ok();
    Some(StepKind::Linear(LinearStep {
        k,
        n,
        weights: LinearWeights::Int4(Box::new(Int4Weights { f32act, u8act })),
        bias,
        epilogue: Epilogue::None,
    }))
}

/// The int4 steps of a graph by node index, and which nodes they absorb (each
/// `DequantizeLinear` read only as the weight of int4 steps, and not a graph output).
pub fn prepare(g: &Graph) -> (Vec<bool>, HashMap<usize, StepKind>) {
    let mut steps = HashMap::new();
    for (k, node) in g.nodes.iter().enumerate() {
        if let Some(s) = lower(g, &node.op, &node.inputs) {
            steps.insert(k, s);
        }
    }
    let consumers = g.consumers();
    let mut absorbed = vec![false; g.nodes.len()];
    for (k, node) in g.nodes.iter().enumerate() {
        let ([out], Op::DequantizeLinear(_)) = (node.outputs.as_slice(), &node.op) else { continue };
        let readers = &consumers[*out];
        absorbed[k] = !readers.is_empty()
            && !g.outputs.contains(out)
            && readers.iter().all(|c| steps.contains_key(c) && g.nodes[*c].inputs[1] == *out);
    }
    (absorbed, steps)
}

/// The untuned kernel: W4A8 when packed for it.
pub fn default_kernel(w: &Int4Weights) -> LinearKernel {
    w.candidates()[0]
}

/// Run int4 `kernel` on `x` (`rows·K`) into `out` (`rows·N`).
pub fn run(
    w: &Int4Weights,
    kernel: LinearKernel,
    bias: Option<&[f32]>,
    ep: Epilogue,
    x: &[f32],
    out: &mut [f32],
) {
    let (k, n) = (w.f32act.k(), w.f32act.n());
    let rows = x.len().checked_div(k).unwrap_or(out.len() / n.max(1));
    let out = &mut out[..rows * n];
    let act = activation(ep);
    let r = match (&w.u8act, kernel) {
        (Some(p), LinearKernel::Int4U8) => linear_i4u8(Isa::detect(), x, rows, p, bias, act, out),
        _ => linear_i4(Isa::detect(), x, rows, &w.f32act, bias, act, out),
    };
    // The step's shapes were checked when the session was made: lengths always agree.
    r.expect("int4 kernel: operand lengths checked by the session");
}

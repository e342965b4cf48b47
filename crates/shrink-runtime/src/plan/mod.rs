//! The compiled runtime plan: a graph compiled once into a list of steps, then run by
//! [`Session`]s that own their memory.
//!
//! [`Plan::compile`] runs graph passes on its own copy of the graph (BatchNorm folded into the
//! preceding Conv / Gemm / MatMul, Identity removed), then lowers every node to a [`Step`]:
//! a conv or linear kernel with pre-packed weights and a fused ReLU / Clip epilogue, or the
//! reference evaluation ([`crate::exec::eval_op`]) of any other operator — so a plan runs every
//! graph the reference executor runs, with the same outputs.
//!
//! [`Plan::session`] binds the batch size, plans memory (liveness over the steps, intermediate
//! buffers in reusable arena slots) and allocates the arena once; [`Session::run`] then writes
//! every conv / linear output into the arena and allocates only the returned outputs (and the
//! results of reference-evaluated operators, which make their own tensors).
//!
//! ```
//! use shrink_graph::{ops::matmul::Gemm, DType, Dim, Fact, Graph, Tensor};
//! use shrink_runtime::plan::{Plan, PlanOptions};
//!
//! let mut g = Graph::new();
//! let x = g.add_input("x", Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(2)])).unwrap();
//! let w = g.add_const("w", Tensor::f32(vec![1, 2], vec![1.0, 2.0])).unwrap();
//! let gemm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
//! let y = g.add_node("fc", gemm, &[x, w], &["y".into()]).unwrap();
//! g.set_outputs(y);
//! let plan = Plan::compile(&g, &PlanOptions::default()).unwrap();
//! let mut session = plan.session(1).unwrap();
//! let out = session.run(&[Tensor::f32(vec![1, 2], vec![3.0, 4.0])]).unwrap();
//! assert_eq!(out[0].as_f32().unwrap(), &[11.0]);
//! ```
//!
//! Deploy files (`.shrink`) load into a [`Graph`] and compile through this same API.

pub mod conv;
pub mod conv_direct;
pub mod elementwise;
pub mod epilogue;
pub mod int4_linear;
pub mod int8;
pub mod int8_conv;
pub mod int8_linear;
pub mod layout;
pub mod linear;
pub mod memory;
pub mod panel;
pub mod passes;
mod session;
pub mod sparse_linear;

pub use conv::{ConvKernel, ConvStep};
pub use elementwise::ElementwiseStep;
pub use epilogue::Epilogue;
pub use int8_conv::{Int8ConvKernel, Int8ConvStep, Int8ConvWeights};
pub use int8_linear::Int8LinearStep;
pub use linear::{LinearKernel, LinearStep, LinearWeights};
pub use session::Session;

use crate::exec::EvalError;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::{Graph, Op, Tensor, ValueId};

/// Compilation choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Time every candidate kernel of each linear step when a session is created (for its
    /// batch size) and keep the fastest; otherwise a fixed rule picks by batch size.
    pub tune: bool,
}

/// What one step computes.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// A convolution kernel (reads the step's one input).
    Conv(ConvStep),
    /// A linear kernel (reads the step's one input).
    Linear(LinearStep),
    /// The reference evaluation of the operator.
    Reference(Op),
    /// An int8 linear layer compiled from a QDQ Gemm / MatMul (reads the f32 input of the
    /// activation's QuantizeLinear; see [`int8`]).
    Int8Linear(Int8LinearStep),
    /// An int8 convolution compiled from a QDQ Conv (reads the f32 input of the activation's
    /// QuantizeLinear; see [`int8`]).
    Int8Conv(Int8ConvStep),
    /// An f32 element-wise step (Add, ReLU, Clip) writing into the arena.
    Elementwise(ElementwiseStep),
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    /// The node's name (the first node's, when activations were fused into it).
    pub name: String,
    /// The operator's name, with fused epilogues (`Conv+relu`).
    pub op: String,
    /// Values read (kernels: only the data input; weights are packed into the step).
    pub inputs: Vec<ValueId>,
    /// Values written.
    pub outputs: Vec<ValueId>,
    pub kind: StepKind,
}

/// What the passes did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub batchnorms_folded: usize,
    pub identities_removed: usize,
    pub activations_fused: usize,
    /// `Add` nodes fused into the convolution producing one of their inputs (residuals).
    pub residuals_fused: usize,
}

/// A compiled graph.
#[derive(Debug, Clone)]
pub struct Plan {
    graph: Graph,
    steps: Vec<Step>,
    options: PlanOptions,
    stats: PassStats,
}

fn compile_err(e: impl std::fmt::Display) -> EvalError {
    EvalError::op(format!("compiling the plan: {e}"))
}

impl Plan {
    /// Compile `graph`: passes, then one step per remaining node (fused activations included in
    /// their producer's step).
    pub fn compile(graph: &Graph, options: &PlanOptions) -> Result<Plan, EvalError> {
        let mut g = graph.clone();
        let identities_removed = passes::remove_identity(&mut g);
        let batchnorms_folded = passes::fold_batchnorm(&mut g).map_err(compile_err)?;
        let consumers = g.consumers();
        // QDQ layers that run as int8 steps, and the nodes still needed once they read the
        // QuantizeLinear's input directly (their Quantize/Dequantize nodes usually are not).
        let mut int8: Vec<Option<(StepKind, ValueId)>> = g.nodes.iter().map(|n| int8::lower(&g, n)).collect();
        let live = live_nodes(&g, &int8);
        // Int4 weights: their Gemm / MatMul steps, and the DequantizeLinear nodes they absorb
        // (an int8 step, when one matches the same node, takes precedence).
        let (mut fused, mut int4_steps) = int4_linear::prepare(&g);
        // Steps with the graph position they run at (the last node they absorb): a conv that
        // absorbs a later `Add` moves there, after the residual's producer.
        let mut steps: Vec<(usize, Step)> = Vec::with_capacity(g.nodes.len());
        let (mut activations_fused, mut residuals_fused) = (0, 0);
        for (k, node) in g.nodes.iter().enumerate() {
            if fused[k] || !live[k] {
                continue;
            }
            let name = node.name.clone();
            let op_name = node.op.def().name();
            let (kernel, data_in) = match int8[k].take() {
                Some((s, x)) => (Some(s), x),
                None => (
                    int4_steps.remove(&k).or_else(|| lower(&g, &node.op, &node.inputs)).or_else(|| {
                        elementwise::lower(&g, &node.op, &node.inputs, &node.outputs)
                            .map(StepKind::Elementwise)
                    }),
                    node.inputs[0],
                ),
            };
            let Some(mut kernel) = kernel else {
                steps.push((
                    k,
                    Step {
                        name,
                        op: op_name.to_string(),
                        inputs: node.inputs.clone(),
                        outputs: node.outputs.clone(),
                        kind: StepKind::Reference(node.op.clone()),
                    },
                ));
                continue;
            };
            let mut inputs = match &kernel {
                StepKind::Elementwise(_) => node.inputs.clone(),
                _ => vec![data_in],
            };
            let mut outputs = node.outputs.clone();
            let mut at = k;
            let mut add_suffix = "";
            // A residual: `Add(conv, r)` where nothing else reads the conv's output, and which
            // no earlier step absorbed (when both operands are convs, the first one takes it).
            if let Some((add, r)) =
                residual_add(&g, &consumers, &kernel, outputs[0]).filter(|&(a, _)| !fused[a])
            {
                let residual_ok = match &mut kernel {
                    StepKind::Conv(s) => {
                        s.residual = true;
                        true
                    }
                    StepKind::Int8Conv(s) => {
                        s.residual = true;
                        true
                    }
                    _ => false,
                };
                if residual_ok {
                    fused[add] = true;
                    inputs.push(r);
                    outputs = g.nodes[add].outputs.clone();
                    at = add;
                    add_suffix = "+add";
                    residuals_fused += 1;
                }
            }
            let out = outputs[0];
            if let [c] = consumers[out].as_slice() {
                let act = &g.nodes[*c];
                if let (Some(ep), false, [_]) =
                    (Epilogue::of(&act.op), g.outputs.contains(&out), act.inputs.as_slice())
                {
                    let ok = match &mut kernel {
                        StepKind::Conv(s) => {
                            s.epilogue = ep;
                            true
                        }
                        StepKind::Linear(s) => {
                            s.epilogue = ep;
                            true
                        }
                        StepKind::Reference(_) => unreachable!("lower makes kernels only"),
                        StepKind::Int8Linear(s) => {
                            s.epilogue = ep;
                            true
                        }
                        // The int8 epilogue's Clip maps NaN to its lower bound; with a residual
                        // (which may be NaN) only ReLU is fused.
                        StepKind::Int8Conv(s) if !s.residual || !matches!(ep, Epilogue::Clip { .. }) => {
                            s.epilogue = ep;
                            true
                        }
                        StepKind::Int8Conv(_) => false,
                        StepKind::Elementwise(ElementwiseStep::Add { epilogue }) => {
                            *epilogue = ep;
                            true
                        }
                        StepKind::Elementwise(_) => false,
                    };
                    if ok {
                        fused[*c] = true;
                        outputs = act.outputs.clone();
                        at = *c;
                        activations_fused += 1;
                    }
                }
            }
            let suffix = match &kernel {
                StepKind::Conv(s) => s.epilogue.suffix(),
                StepKind::Linear(s) => s.epilogue.suffix(),
                StepKind::Reference(_) => "",
                StepKind::Int8Linear(s) => s.epilogue.suffix(),
                StepKind::Int8Conv(s) => s.epilogue.suffix(),
                StepKind::Elementwise(ElementwiseStep::Add { epilogue }) => epilogue.suffix(),
                StepKind::Elementwise(_) => "",
            };
            steps.push((
                at,
                Step { name, op: format!("{op_name}{add_suffix}{suffix}"), inputs, outputs, kind: kernel },
            ));
        }
        // Stable: steps at the same position keep their order. A step's inputs come from nodes
        // before the first node it absorbs, hence from steps placed before it.
        steps.sort_by_key(|(at, _)| *at);
        let steps: Vec<Step> = steps.into_iter().map(|(_, s)| s).collect();
        let stats = PassStats { batchnorms_folded, identities_removed, activations_fused, residuals_fused };
        Ok(Plan { graph: g, steps, options: *options, stats })
    }

    /// The steps, in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The graph after the passes (what the steps index into).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// What the passes did.
    pub fn stats(&self) -> PassStats {
        self.stats
    }

    /// The options it was compiled with.
    pub fn options(&self) -> PlanOptions {
        self.options
    }

    /// A session for `batch` examples: every input's first dimension, when symbolic, is bound
    /// to `batch` (other symbolic dimensions: use [`Plan::session_for_shapes`]).
    pub fn session(&self, batch: usize) -> Result<Session<'_>, EvalError> {
        let shapes = self
            .graph
            .inputs
            .iter()
            .map(|&i| {
                let v = &self.graph.values[i];
                v.fact
                    .shape
                    .iter()
                    .enumerate()
                    .map(|(a, d)| match d.fixed() {
                        Some(n) => Ok(n),
                        None if a == 0 => Ok(batch),
                        None => Err(EvalError::Input {
                            name: v.name.clone(),
                            msg: format!(
                                "{} has a symbolic dimension besides the batch; give its shape",
                                v.fact
                            ),
                        }),
                    })
                    .collect()
            })
            .collect::<Result<Vec<Vec<usize>>, _>>()?;
        self.session_for_shapes(&shapes)
    }

    /// A session for inputs of exactly these shapes (in the order of the graph's inputs).
    pub fn session_for_shapes(&self, shapes: &[Vec<usize>]) -> Result<Session<'_>, EvalError> {
        Session::new(self, shapes)
    }
}

/// The f32 data and shape of constant `v`.
fn const_f32(g: &Graph, v: ValueId) -> Option<(&[usize], &[f32])> {
    let t = g.const_value(v)?;
    Some((&t.shape, t.as_f32()?))
}

/// The kernel step of a node, when one applies.
fn lower(g: &Graph, op: &Op, ins: &[ValueId]) -> Option<StepKind> {
    let f32_data = |v: ValueId| g.values[v].fact.dtype == shrink_graph::DType::F32;
    match op {
        Op::Conv(c) if (2..=3).contains(&ins.len()) && f32_data(ins[0]) => {
            let (ws, w) = const_f32(g, ins[1])?;
            if ws.len() < 3 || ws.len() > 5 {
                return None;
            }
            let bias = match ins.get(2) {
                Some(&b) => Some(const_f32(g, b)?.1.to_vec()),
                None => None,
            };
            Some(StepKind::Conv(
                ConvStep {
                    op: c.clone(),
                    weight: w.to_vec(),
                    weight_shape: ws.to_vec(),
                    bias,
                    epilogue: Epilogue::None,
                    residual: false,
                    direct: None,
                }
                .with_direct(),
            ))
        }
        Op::Gemm(gm) if (2..=3).contains(&ins.len()) && !gm.trans_a && g.values[ins[0]].fact.rank() == 2 => {
            let (bs, b) = const_f32(g, ins[1])?;
            let c = match ins.get(2) {
                Some(&c) => Some(const_f32(g, c)?),
                None => None,
            };
            linear_step(gm, bs, b, c)
        }
        Op::MatMul(_) if ins.len() == 2 && f32_data(ins[0]) && g.values[ins[0]].fact.rank() >= 1 => {
            let (bs, b) = const_f32(g, ins[1])?;
            let gm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false };
            linear_step(&gm, bs, b, None)
        }
        _ => None,
    }
}

/// The `Add` node (and its other input) that a conv step producing `out` can absorb as a
/// residual: the conv's output is read by that `Add` only and is not a graph output, the
/// other operand is an f32 value of the same shape (not `out` itself).
fn residual_add(
    g: &Graph,
    consumers: &[Vec<usize>],
    kernel: &StepKind,
    out: ValueId,
) -> Option<(usize, ValueId)> {
    if !matches!(kernel, StepKind::Conv(_) | StepKind::Int8Conv(_)) || g.outputs.contains(&out) {
        return None;
    }
    let [add] = consumers[out].as_slice() else { return None };
    let node = &g.nodes[*add];
    let Op::Binary(b) = &node.op else { return None };
    if b.kind != shrink_graph::ops::binary::BinaryKind::Add
        || node.inputs.len() != 2
        || node.outputs.len() != 1
    {
        return None;
    }
    let r = match node.inputs.as_slice() {
        [a, r] | [r, a] if *a == out && *r != out => *r,
        _ => return None,
    };
    let (fo, fr, fy) = (&g.values[out].fact, &g.values[r].fact, &g.values[node.outputs[0]].fact);
    (fr.dtype == shrink_graph::DType::F32 && fr.shape == fo.shape && fy.shape == fo.shape)
        .then_some((*add, r))
}

/// Pack `alpha·op(B)` as `[N, K]` rows and `beta·C` as a per-output bias (C must be constant
/// along the rows: a scalar, `[N]` or `[1, N]`).
fn linear_step(gm: &Gemm, bs: &[usize], b: &[f32], c: Option<(&[usize], &[f32])>) -> Option<StepKind> {
    if bs.len() != 2 {
        return None;
    }
    let (k, n) = if gm.trans_b { (bs[1], bs[0]) } else { (bs[0], bs[1]) };
    let bias = match c {
        None => None,
        Some(_) if gm.beta == 0.0 => None,
        Some((cs, cv)) => {
            if cs.len() > 2 || cs.iter().rev().skip(1).any(|&d| d != 1) {
                return None;
            }
            match cv.len() {
                1 => Some(vec![gm.beta * cv[0]; n]),
                l if l == n => Some(cv.iter().map(|v| gm.beta * v).collect()),
                _ => return None,
            }
        }
    };
    let mut w = vec![0f32; n * k];
    for j in 0..n {
        for t in 0..k {
            let v = if gm.trans_b { b[j * k + t] } else { b[t * n + j] };
            w[j * k + t] = gm.alpha * v;
        }
    }
    Some(StepKind::Linear(LinearStep {
        k,
        n,
        weights: sparse_linear::weights_for(w, k, n),
        bias,
        epilogue: Epilogue::None,
    }))
}

/// Which nodes compute something the graph's outputs need, when node `k` reads only
/// `int8[k]`'s input (if it is an int8 layer) instead of its own inputs.
fn live_nodes(g: &Graph, int8: &[Option<(StepKind, ValueId)>]) -> Vec<bool> {
    let mut needed = vec![false; g.values.len()];
    for &o in &g.outputs {
        needed[o] = true;
    }
    let mut live = vec![false; g.nodes.len()];
    for (k, node) in g.nodes.iter().enumerate().rev() {
        if !node.outputs.iter().any(|&o| needed[o]) {
            continue;
        }
        live[k] = true;
        match &int8[k] {
            Some((_, x)) => needed[*x] = true,
            None => node.inputs.iter().for_each(|&i| needed[i] = true),
        }
    }
    live
}

/// Convenience: compile and run once on `inputs` (batch taken from the inputs' shapes).
pub fn run_once(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let plan = Plan::compile(graph, &PlanOptions::default())?;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
    plan.session_for_shapes(&shapes)?.run(inputs)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod int8_tests;

#[cfg(test)]
mod tests_sparse_int4;

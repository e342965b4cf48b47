//! Static post-training quantization of any open-IR graph into a standard QDQ graph.
//!
//! [`calibrate`] runs calibration batches through the reference executor and records the
//! min/max of every activation that feeds a Conv, Gemm or MatMul; [`quantize_graph`] then
//! rewrites the graph as ONNX QDQ models spell int8 inference:
//!
//! * each weight (an f32 constant input of Conv / Gemm / MatMul) becomes int8 codes +
//!   `DequantizeLinear`: symmetric per output channel (Conv axis 0, Gemm axis 0 with `transB`
//!   and 1 without, MatMul the last axis), narrow range `[-(2^(b-1)-1), 2^(b-1)-1]` (`[-127, 127]`
//!   at 8 bits), zero point 0, `scale = max|w_c| / (2^(b-1)-1)`;
//! * each activation input of those ops gets `QuantizeLinear → DequantizeLinear`: asymmetric
//!   per tensor, uint8 codes `[0, 2^b - 1]`, the range widened to include 0 (so 0 and padding are
//!   exact), `scale = (max - min) / (2^b - 1)`, `zero_point = round(-min / scale)` (onnxruntime's
//!   quantization tool's formulas);
//! * the f32 bias of a Conv / Gemm whose input and weight are both quantized becomes int32 codes
//!   `round(b_c / (s_x · s_w[c]))` + `DequantizeLinear` (per channel, zero point 0), as
//!   onnxruntime's quantizer writes it. onnxruntime rewrites an f32 bias that way itself (its
//!   `WeightBiasQuantization` pass, at every optimization level but "disable"), so a graph that
//!   kept f32 biases would run a slightly different model there: on ResNet-20 that moved 0.5 % of
//!   the CIFAR-10 test predictions. A bias whose codes would overflow i32 (a channel of near-zero
//!   weights) stays f32.
//!
//! Nodes named in [`QdqConfig::skip`] stay f32. Codes narrower than 8 bits are still stored as
//! int8/uint8 (the range is what narrows). `round` is half to even, as ONNX and `torch.round`.

pub mod calib;
pub mod int4;
pub mod qdq;

pub use calib::{calibrate, ActRanges};
pub use int4::quantize_weights_int4;
pub use qdq::{activation_params, quantize_graph, weight_params};

use shrink_graph::{Graph, Op, ValueDef, ValueId};
use thiserror::Error;

/// An error of calibration or QDQ rewriting; names the node, value or setting.
#[derive(Debug, Error)]
pub enum QdqError {
    /// A bit width outside 2..=8.
    #[error("{what} bits must be 2 to 8, got {bits}")]
    Bits { what: &'static str, bits: u32 },
    /// A skip-list entry names no node of the graph.
    #[error("--skip: the graph has no node named `{0}`")]
    UnknownSkip(String),
    /// Running a calibration batch failed.
    #[error("calibration batch {batch}: {msg}")]
    Run { batch: usize, msg: String },
    /// No calibration batch was given.
    #[error("calibration needs at least one batch")]
    NoBatches,
    /// An activation has no calibrated range (calibrated on another graph?).
    #[error("activation `{0}` has no calibrated range")]
    NoRange(String),
    /// The graph could not be rebuilt.
    #[error("{0}")]
    Graph(String),
}

/// What to quantize and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdqConfig {
    /// Weight bits (symmetric, narrow range, per output channel), 2..=8.
    pub weight_bits: u32,
    /// Activation bits (asymmetric uint8 codes, per tensor), 2..=8.
    pub act_bits: u32,
    /// Names of nodes to leave in f32.
    pub skip: Vec<String>,
}

impl Default for QdqConfig {
    fn default() -> Self {
        QdqConfig { weight_bits: 8, act_bits: 8, skip: vec![] }
    }
}

impl QdqConfig {
    /// Check bit widths and that every skipped name is a node of `graph`.
    pub fn check(&self, graph: &Graph) -> Result<(), QdqError> {
        for (what, bits) in [("weight", self.weight_bits), ("activation", self.act_bits)] {
            if !(2..=8).contains(&bits) {
                return Err(QdqError::Bits { what, bits });
            }
        }
        for s in &self.skip {
            if !graph.nodes.iter().any(|n| &n.name == s) {
                return Err(QdqError::UnknownSkip(s.clone()));
            }
        }
        Ok(())
    }
}

/// One node to quantize: its activation inputs and its weight input with the channel axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: usize,
    /// `(input index, value)` of inputs computed at run time.
    pub acts: Vec<(usize, ValueId)>,
    /// `(input index, value, output-channel axis)` of the f32 constant weight, if any.
    pub weight: Option<(usize, ValueId, usize)>,
}

/// The Conv, Gemm and MatMul nodes not skipped, with what to quantize in each.
pub fn targets(graph: &Graph, cfg: &QdqConfig) -> Vec<Target> {
    let is_f32_const = |v: ValueId| matches!(&graph.values[v].def, ValueDef::Const(t) if t.dtype() == shrink_graph::DType::F32);
    let is_f32 = |v: ValueId| graph.values[v].fact.dtype == shrink_graph::DType::F32;
    let mut out = Vec::new();
    for (k, n) in graph.nodes.iter().enumerate() {
        if cfg.skip.contains(&n.name) {
            continue;
        }
        // The data inputs (bias excluded) and the weight's output-channel axis.
        let (data, axis) = match &n.op {
            Op::Conv(_) => (2, 0),
            Op::Gemm(g) => (2, if g.trans_b { 0 } else { 1 }),
            Op::MatMul(_) => {
                let r = n.inputs.get(1).map_or(0, |&w| graph.values[w].fact.rank());
                (2, r.saturating_sub(1))
            }
            _ => continue,
        };
        let mut t = Target { node: k, acts: vec![], weight: None };
        for (i, &v) in n.inputs.iter().enumerate().take(data) {
            if !is_f32(v) {
                continue;
            }
            if i == 1 && is_f32_const(v) && graph.values[v].fact.rank() >= 2 {
                t.weight = Some((i, v, axis));
            } else if !is_f32_const(v) {
                t.acts.push((i, v));
            }
        }
        out.push(t);
    }
    out
}

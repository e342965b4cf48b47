//! One evaluation per operator, in family files mirroring `shrink_graph::ops`.

pub mod activation;
pub mod binary;
pub mod combine;
pub mod conv;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod shape;

use crate::exec::EvalError;
use shrink_graph::{Dim, Tensor};
use std::collections::HashMap;

/// What an evaluation may need besides its inputs.
#[derive(Debug, Clone, Default)]
pub struct EvalCtx {
    /// Sizes of the symbolic dimensions, bound from the graph inputs.
    pub syms: HashMap<String, usize>,
    /// Sum the products of Conv / Gemm / MatMul exactly (f64, one rounding to f32 at the end)
    /// instead of in f32: set for nodes whose operands are dequantized codes, so the reference
    /// gives the exact value of the fake-quantized model (as integer kernels compute it).
    pub exact_accumulation: bool,
}

impl EvalCtx {
    /// The size of a dimension.
    pub fn dim(&self, d: &Dim) -> Result<usize, EvalError> {
        d.resolve(&self.syms).map_err(EvalError::Op)
    }

    /// Sizes of several dimensions.
    pub fn dims(&self, ds: &[Dim]) -> Result<Vec<usize>, EvalError> {
        ds.iter().map(|d| self.dim(d)).collect()
    }
}

/// Evaluation of one operator on concrete tensors.
pub trait Eval {
    /// Outputs from inputs (in the node's input order).
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError>;
}

/// The f32 data of input `k`, or an error naming it.
pub fn f32_input<'a>(ins: &[&'a Tensor], k: usize) -> Result<&'a [f32], EvalError> {
    ins.get(k)
        .ok_or_else(|| EvalError::op(format!("missing input {k}")))?
        .as_f32()
        .ok_or_else(|| EvalError::op(format!("input {k} must be f32, got {:?}", ins[k].dtype())))
}

//! Evaluation of matrix products.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::matmul::*;
use shrink_graph::Tensor;

impl Eval for Gemm {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for MatMul {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

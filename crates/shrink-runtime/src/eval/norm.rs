//! Evaluation of normalizations.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::norm::*;
use shrink_graph::Tensor;

impl Eval for BatchNorm {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for LayerNorm {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for GroupNorm {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for InstanceNorm {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

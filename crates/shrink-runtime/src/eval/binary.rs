//! Evaluation of binary element-wise ops, Where and Cast.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::binary::*;
use shrink_graph::Tensor;

impl Eval for Binary {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Where {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Cast {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

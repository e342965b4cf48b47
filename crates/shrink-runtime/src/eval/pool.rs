//! Evaluation of pooling and resizing.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::pool::*;
use shrink_graph::Tensor;

impl Eval for Pool {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for GlobalPool {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for Resize {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

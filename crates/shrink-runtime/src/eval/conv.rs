//! Evaluation of convolutions.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::conv::*;
use shrink_graph::Tensor;

impl Eval for Conv {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

impl Eval for ConvTranspose {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

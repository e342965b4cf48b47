//! Evaluation of reductions.

use super::{Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::reduce::*;
use shrink_graph::Tensor;

impl Eval for Reduce {
    fn eval(&self, _ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        Err(EvalError::op("TODO(helper): eval"))
    }
}

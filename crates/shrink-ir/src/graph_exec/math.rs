//! Candle lowering of the `math` op family.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::Tensor;

impl Lower for shrink_graph::ops::activation::Unary {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::LeakyRelu {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::HardSigmoid {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::Elu {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::Gelu {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::Clip {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::Softmax {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::activation::LogSoftmax {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::binary::Binary {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::binary::Where {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::binary::Cast {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::reduce::Reduce {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

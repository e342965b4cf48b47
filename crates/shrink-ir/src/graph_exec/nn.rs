//! Candle lowering of the `nn` op family.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::Tensor;

impl Lower for shrink_graph::ops::conv::Conv {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::conv::ConvTranspose {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::matmul::Gemm {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::matmul::MatMul {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::norm::BatchNorm {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::norm::LayerNorm {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::norm::GroupNorm {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::norm::InstanceNorm {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::pool::Pool {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::pool::GlobalPool {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::pool::Resize {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

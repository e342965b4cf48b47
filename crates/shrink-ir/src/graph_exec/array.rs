//! Candle lowering of the `array` op family.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::Tensor;

impl Lower for shrink_graph::ops::shape::Reshape {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Flatten {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Transpose {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Squeeze {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Unsqueeze {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Expand {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::shape::Shape {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Concat {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Split {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Slice {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Pad {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Gather {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

impl Lower for shrink_graph::ops::combine::Identity {
    fn lower(&self, _ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Err(IrError::Invalid("TODO(helper): lower".into()))
    }
}

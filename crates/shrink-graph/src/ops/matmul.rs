//! Matrix products: Gemm and MatMul (N-D, batched, broadcast).

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// `alpha·op(A)·op(B) + beta·C`; inputs `[a, b, c?]`, 2-D.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

/// NumPy `matmul` (1-D promotion, batch broadcast); inputs `[a, b]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatMul {}

impl OpDef for Gemm {
    fn name(&self) -> &'static str {
        "Gemm"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for MatMul {
    fn name(&self) -> &'static str {
        "MatMul"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

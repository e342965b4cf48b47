//! Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd.

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Which reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
    Prod,
}

/// Reduce over `axes` (empty: all axes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reduce {
    pub kind: ReduceKind,
    pub axes: Vec<i64>,
    pub keepdims: bool,
}

impl OpDef for Reduce {
    fn name(&self) -> &'static str {
        "Reduce"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

//! Shape ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape.

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Reshape to an explicit output shape (ONNX `0`/`-1` are resolved at import).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reshape {
    pub shape: Vec<Dim>,
}

/// `[d0…d(axis-1), d(axis)…]` → 2-D.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flatten {
    pub axis: i64,
}

/// Permute axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transpose {
    pub perm: Vec<usize>,
}

/// Remove size-1 axes (`axes` empty: all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Squeeze {
    pub axes: Vec<i64>,
}

/// Insert size-1 axes at `axes` (positions in the output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsqueeze {
    pub axes: Vec<i64>,
}

/// Broadcast to `shape` (NumPy rules, both ways as ONNX Expand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expand {
    pub shape: Vec<Dim>,
}

/// The input's shape as a 1-D i64 tensor (axes `start..end`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    pub start: i64,
    pub end: Option<i64>,
}

impl OpDef for Reshape {
    fn name(&self) -> &'static str {
        "Reshape"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Flatten {
    fn name(&self) -> &'static str {
        "Flatten"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Transpose {
    fn name(&self) -> &'static str {
        "Transpose"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Squeeze {
    fn name(&self) -> &'static str {
        "Squeeze"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Unsqueeze {
    fn name(&self) -> &'static str {
        "Unsqueeze"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Expand {
    fn name(&self) -> &'static str {
        "Expand"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Shape {
    fn name(&self) -> &'static str {
        "Shape"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

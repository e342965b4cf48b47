//! Combining and indexing: Concat, Split, Slice, Pad, Gather, Identity.

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Concatenate the inputs along `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concat {
    pub axis: i64,
}

/// Split along `axis` into pieces of `sizes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub axis: i64,
    pub sizes: Vec<usize>,
}

/// ONNX Slice with constant starts/ends/axes/steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub axes: Vec<i64>,
    pub steps: Vec<i64>,
}

/// Padding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
}

/// Pad every axis: `pads` = begin of each axis, then end of each axis (may be negative: crop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    pub pads: Vec<i64>,
    pub mode: PadMode,
    pub value: f32,
}

/// Index `data` along `axis` with an i64 `indices` tensor; inputs `[data, indices]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gather {
    pub axis: i64,
}

/// Pass-through (also Dropout in inference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {}

impl OpDef for Identity {
    fn name(&self) -> &'static str {
        "Identity"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        Ok(vec![ins[0].fact.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for k in 0..ins[0].rank() {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
        m
    }
}

impl OpDef for Concat {
    fn name(&self) -> &'static str {
        "Concat"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Split {
    fn name(&self) -> &'static str {
        "Split"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Slice {
    fn name(&self) -> &'static str {
        "Slice"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Pad {
    fn name(&self) -> &'static str {
        "Pad"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Gather {
    fn name(&self) -> &'static str {
        "Gather"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

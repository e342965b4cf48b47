//! Pooling and resampling: MaxPool/AveragePool, GlobalAveragePool/GlobalMaxPool, Resize (nearest).

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Windowed pooling over the spatial axes of `x (N, C, spatial…)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

/// Pooling over all spatial axes (kept as size 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalPool {
    pub kind: PoolKind,
}

/// How output coordinates map to input coordinates (ONNX `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordMode {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

/// Rounding of the nearest-neighbour index (ONNX `nearest_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

/// Nearest-neighbour resize; `scales` per axis, output size `floor(in · scale)` unless `sizes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub scales: Vec<f32>,
    pub sizes: Option<Vec<usize>>,
    pub coord: CoordMode,
    pub nearest: NearestMode,
}

impl OpDef for Pool {
    fn name(&self) -> &'static str {
        "Pool"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for GlobalPool {
    fn name(&self) -> &'static str {
        "GlobalPool"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Resize {
    fn name(&self) -> &'static str {
        "Resize"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

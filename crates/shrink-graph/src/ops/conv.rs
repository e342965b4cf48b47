//! Convolutions: Conv (1-D/2-D/N-D, groups, dilation, asymmetric pads) and ConvTranspose.

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Convolution; inputs `[x (N,C,spatial…), weight (M, C/groups, kernel…), bias (M)?]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    pub strides: Vec<usize>,
    /// Begin pads of every spatial axis, then end pads.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub groups: usize,
}

/// Transposed convolution; inputs `[x (N,C,spatial…), weight (C, M/groups, kernel…), bias (M)?]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvTranspose {
    pub strides: Vec<usize>,
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub groups: usize,
    pub output_padding: Vec<usize>,
}

impl OpDef for Conv {
    fn name(&self) -> &'static str {
        "Conv"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for ConvTranspose {
    fn name(&self) -> &'static str {
        "ConvTranspose"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

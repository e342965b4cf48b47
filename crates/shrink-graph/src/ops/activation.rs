//! Activations and normalizing activations: Unary kinds, LeakyRelu, HardSigmoid, Elu, Gelu, Clip, Softmax, LogSoftmax.

use super::{check_arity, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Which element-wise function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryKind {
    Relu,
    Sigmoid,
    Tanh,
    Erf,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    Reciprocal,
    Floor,
    Ceil,
    /// Round half to even (as ONNX and torch).
    Round,
    HardSwish,
    /// `x · sigmoid(x)`.
    Silu,
    Softplus,
    Sin,
    Cos,
    /// Logical not (bool).
    Not,
}

/// One element-wise function of one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unary {
    pub kind: UnaryKind,
}

impl OpDef for Unary {
    fn name(&self) -> &'static str {
        "Unary"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        let want_bool = self.kind == UnaryKind::Not;
        if (f.dtype == DType::Bool) != want_bool {
            return Err(OpError::Shape(format!("{:?} does not apply to {:?} values", self.kind, f.dtype)));
        }
        Ok(vec![f.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for k in 0..ins[0].rank() {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
        m
    }
    fn cost(&self, _ins: &[&Fact], _outs: &[&Fact]) -> Cost {
        Cost::default()
    }
}

/// `x < 0 ? alpha·x : x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakyRelu {
    pub alpha: f32,
}

/// `clamp(alpha·x + beta, 0, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardSigmoid {
    pub alpha: f32,
    pub beta: f32,
}

/// `x < 0 ? alpha·(exp(x) − 1) : x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elu {
    pub alpha: f32,
}

/// GELU, exact (erf) or the tanh approximation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gelu {
    pub tanh: bool,
}

/// `clamp(x, min, max)`; a missing bound is unbounded (ReLU6 is `Clip(0, 6)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    pub min: Option<f32>,
    pub max: Option<f32>,
}

/// Softmax along `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    pub axis: i64,
}

/// Log-softmax along `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSoftmax {
    pub axis: i64,
}

impl OpDef for LeakyRelu {
    fn name(&self) -> &'static str {
        "LeakyRelu"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for HardSigmoid {
    fn name(&self) -> &'static str {
        "HardSigmoid"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Elu {
    fn name(&self) -> &'static str {
        "Elu"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Gelu {
    fn name(&self) -> &'static str {
        "Gelu"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Clip {
    fn name(&self) -> &'static str {
        "Clip"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for Softmax {
    fn name(&self) -> &'static str {
        "Softmax"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

impl OpDef for LogSoftmax {
    fn name(&self) -> &'static str {
        "LogSoftmax"
    }
    fn infer(&self, _ins: &[InFact]) -> OpResult<Vec<Fact>> {
        Err(OpError::Shape("TODO(helper): infer".into()))
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        AxesMapping::none()
    }
}

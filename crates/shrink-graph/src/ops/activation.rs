//! Activations and normalizing activations: Unary kinds, LeakyRelu, HardSigmoid, Elu, Gelu, Clip, Softmax, LogSoftmax.

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Fact};
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
        let ok = match f.dtype {
            DType::Bool => self.kind == UnaryKind::Not,
            DType::I64 => matches!(self.kind, UnaryKind::Neg | UnaryKind::Abs | UnaryKind::Relu),
            DType::F32 => self.kind != UnaryKind::Not,
            DType::I8 | DType::U8 | DType::I32 => false,
        };
        if !ok {
            return Err(OpError::Shape(format!("{:?} does not apply to {:?} values", self.kind, f.dtype)));
        }
        Ok(vec![f.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
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

/// Softmax along `axis`; with `flatten` (ONNX opset < 13) over every axis from `axis` on, as
/// if the input were flattened to 2-D at `axis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    pub axis: i64,
    #[serde(default)]
    pub flatten: bool,
}

/// Log-softmax along `axis`; `flatten` as in [`Softmax`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSoftmax {
    pub axis: i64,
    #[serde(default)]
    pub flatten: bool,
}

/// One f32 input, output of the same fact (the float-only element-wise activations).
fn infer_f32_elementwise(ins: &[InFact]) -> OpResult<Vec<Fact>> {
    check_arity(ins, 1, 1)?;
    let f = ins[0].fact;
    if f.dtype != DType::F32 {
        return Err(OpError::Shape(format!("needs f32 values, got {:?}", f.dtype)));
    }
    Ok(vec![f.clone()])
}

/// Every axis of input 0 is the same axis of output 0.
fn same_axes(ins: &[&Fact]) -> AxesMapping {
    let mut m = AxesMapping::none();
    for k in 0..ins.first().map_or(0, |f| f.rank()) {
        m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
    }
    m
}

/// A finite attribute value, or an error naming it.
fn finite(name: &'static str, v: f32) -> OpResult<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(OpError::Attr { name, msg: format!("must be finite, got {v}") })
    }
}

impl OpDef for LeakyRelu {
    fn name(&self) -> &'static str {
        "LeakyRelu"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        finite("alpha", self.alpha)?;
        infer_f32_elementwise(ins)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
    }
}

impl OpDef for HardSigmoid {
    fn name(&self) -> &'static str {
        "HardSigmoid"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        finite("alpha", self.alpha)?;
        finite("beta", self.beta)?;
        infer_f32_elementwise(ins)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
    }
}

impl OpDef for Elu {
    fn name(&self) -> &'static str {
        "Elu"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        finite("alpha", self.alpha)?;
        infer_f32_elementwise(ins)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
    }
}

impl OpDef for Gelu {
    fn name(&self) -> &'static str {
        "Gelu"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        infer_f32_elementwise(ins)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
    }
}

impl OpDef for Clip {
    fn name(&self) -> &'static str {
        "Clip"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        let f = ins[0].fact;
        if !matches!(f.dtype, DType::F32 | DType::I64) {
            return Err(OpError::Shape(format!("needs f32 or i64 values, got {:?}", f.dtype)));
        }
        for (name, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(f32::is_nan) {
                return Err(OpError::Attr { name, msg: "is NaN".into() });
            }
        }
        Ok(vec![f.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        same_axes(ins)
    }
}

/// Shared inference of Softmax and LogSoftmax.
fn infer_softmax(ins: &[InFact], axis: i64) -> OpResult<Vec<Fact>> {
    let out = infer_f32_elementwise(ins)?;
    if ins[0].fact.rank() == 0 {
        return Err(OpError::Shape("needs an input of rank 1 or more, got a scalar".into()));
    }
    ins[0].fact.axis(axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })?;
    Ok(out)
}

/// Softmax axes: the normalized axes (one, or all from `axis` on when flattened) are pinned,
/// the others pass through.
fn softmax_axes(ins: &[&Fact], axis: i64, flatten: bool) -> AxesMapping {
    let rank = ins[0].rank();
    let Ok(a) = crate::fact::normalize_axis(axis, rank) else { return AxesMapping::none() };
    let mut m = AxesMapping::none();
    for k in 0..rank {
        if k == a || (flatten && k > a) {
            m.rels.push(AxisRel::Pinned(Port::input(0, k)));
            m.rels.push(AxisRel::Pinned(Port::output(0, k)));
        } else {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
    }
    m
}

impl OpDef for Softmax {
    fn name(&self) -> &'static str {
        "Softmax"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        infer_softmax(ins, self.axis)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        softmax_axes(ins, self.axis, self.flatten)
    }
}

impl OpDef for LogSoftmax {
    fn name(&self) -> &'static str {
        "LogSoftmax"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        infer_softmax(ins, self.axis)
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        softmax_axes(ins, self.axis, self.flatten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dim;

    fn n_c(c: usize) -> Fact {
        Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(c)])
    }

    fn run(op: &dyn OpDef, f: &Fact) -> OpResult<Vec<Fact>> {
        op.infer(&[InFact { fact: f, value: None }])
    }

    #[test]
    fn activations_keep_symbolic_batch() {
        let f = n_c(4);
        let ops: Vec<Box<dyn OpDef>> = vec![
            Box::new(LeakyRelu { alpha: 0.1 }),
            Box::new(HardSigmoid { alpha: 0.2, beta: 0.5 }),
            Box::new(Elu { alpha: 1.0 }),
            Box::new(Gelu { tanh: true }),
            Box::new(Clip { min: Some(0.0), max: Some(6.0) }),
            Box::new(Softmax { axis: -1, flatten: false }),
            Box::new(LogSoftmax { axis: 1, flatten: true }),
            Box::new(Unary { kind: UnaryKind::Sqrt }),
        ];
        for op in ops {
            assert_eq!(run(op.as_ref(), &f).unwrap(), vec![f.clone()], "{}", op.name());
        }
    }

    #[test]
    fn activations_reject_wrong_dtypes_and_attributes() {
        let i = Fact::new(DType::I64, &[2, 3]);
        let e = run(&Gelu { tanh: false }, &i).unwrap_err();
        assert!(e.to_string().contains("f32"), "{e}");
        assert!(run(&Unary { kind: UnaryKind::Sqrt }, &i).is_err());
        assert!(run(&Unary { kind: UnaryKind::Abs }, &i).is_ok());
        assert!(run(&Clip { min: Some(0.0), max: None }, &i).is_ok());
        let e = run(&LeakyRelu { alpha: f32::NAN }, &n_c(2)).unwrap_err();
        assert!(e.to_string().contains("alpha"), "{e}");
        let e = run(&Softmax { axis: 2, flatten: false }, &n_c(2)).unwrap_err();
        assert!(e.to_string().contains("axis"), "{e}");
        let e = LeakyRelu { alpha: 0.1 }.infer(&[]).unwrap_err();
        assert!(matches!(e, OpError::Arity { .. }));
    }

    #[test]
    fn softmax_pins_its_axis() {
        let f = Fact::new(DType::F32, &[2, 3, 4]);
        let m = Softmax { axis: 1, flatten: false }.axes(&[&f], &[&f]);
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 1))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 2), Port::output(0, 2))));
        let m = Softmax { axis: 1, flatten: true }.axes(&[&f], &[&f]);
        assert!(m.rels.contains(&AxisRel::Pinned(Port::input(0, 2))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 0), Port::output(0, 0))));
    }
}

//! Binary element-wise ops with broadcasting (arithmetic, comparisons, logic), Where and Cast.

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{broadcast_shapes, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Which binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    /// Integer remainder with the divisor's sign (ONNX `Mod`, `fmod=0`; Python `%`).
    Mod,
    /// Remainder with the dividend's sign (ONNX `Mod`, `fmod=1`; C `fmod`).
    Fmod,
    Pow,
    Max,
    Min,
    Equal,
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    And,
    Or,
}

impl BinaryKind {
    /// True for the comparisons (their output is bool).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryKind::Equal
                | BinaryKind::Less
                | BinaryKind::Greater
                | BinaryKind::LessOrEqual
                | BinaryKind::GreaterOrEqual
        )
    }

    /// Whether the operation is defined on inputs of `dtype`.
    pub fn accepts(self, dtype: DType) -> bool {
        if matches!(dtype, DType::I8 | DType::U8 | DType::I32) {
            // Quantization codes and accumulators: only QuantizeLinear/DequantizeLinear read them.
            return false;
        }
        match self {
            BinaryKind::And | BinaryKind::Or => dtype == DType::Bool,
            BinaryKind::Equal => true,
            BinaryKind::Mod => dtype == DType::I64,
            _ => dtype != DType::Bool,
        }
    }
}

/// NumPy-broadcast binary operation; inputs `[a, b]` of one dtype. Arithmetic keeps the dtype
/// (integer `Div` truncates toward zero), comparisons give bool, `And`/`Or` take bool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    pub kind: BinaryKind,
}

/// `cond ? a : b` with broadcasting; inputs `[cond, a, b]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Where {}

/// Element type conversion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cast {
    pub to: DType,
}

impl OpDef for Binary {
    fn name(&self) -> &'static str {
        "Binary"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 2)?;
        let (a, b) = (ins[0].fact, ins[1].fact);
        if a.dtype != b.dtype {
            return Err(OpError::Shape(format!(
                "{:?} needs inputs of one dtype, got {:?} and {:?}",
                self.kind, a.dtype, b.dtype
            )));
        }
        if !self.kind.accepts(a.dtype) {
            return Err(OpError::Shape(format!("{:?} does not apply to {:?} values", self.kind, a.dtype)));
        }
        let shape = broadcast_shapes(&[&a.shape, &b.shape])?;
        let dtype = if self.kind.is_comparison() { DType::Bool } else { a.dtype };
        Ok(vec![Fact::dims(dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        elementwise_axes(ins, outs)
    }
}

/// [`AxesMapping::elementwise`] over the inputs' shapes and output 0's rank.
fn elementwise_axes(ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
    let shapes: Vec<&[Dim]> = ins.iter().map(|f| f.shape.as_slice()).collect();
    let out_rank = outs.first().map_or(0, |f| f.rank());
    AxesMapping::elementwise(&shapes, out_rank)
}

impl OpDef for Where {
    fn name(&self) -> &'static str {
        "Where"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 3, 3)?;
        let (c, a, b) = (ins[0].fact, ins[1].fact, ins[2].fact);
        if c.dtype != DType::Bool {
            return Err(OpError::Shape(format!("the condition must be Bool, got {:?}", c.dtype)));
        }
        if a.dtype != b.dtype {
            return Err(OpError::Shape(format!(
                "needs both branches of one dtype, got {:?} and {:?}",
                a.dtype, b.dtype
            )));
        }
        let shape = broadcast_shapes(&[&c.shape, &a.shape, &b.shape])?;
        Ok(vec![Fact::dims(a.dtype, shape)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        elementwise_axes(ins, outs)
    }
}

impl OpDef for Cast {
    fn name(&self) -> &'static str {
        "Cast"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 1, 1)?;
        Ok(vec![Fact::dims(self.to, ins[0].fact.shape.clone())])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for k in 0..ins.first().map_or(0, |f| f.rank()) {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }

    fn sym(dtype: DType, rest: &[usize]) -> Fact {
        let mut shape = vec![Dim::Sym("N".into())];
        shape.extend(rest.iter().map(|&d| Dim::Fixed(d)));
        Fact::dims(dtype, shape)
    }

    #[test]
    fn binary_broadcasts_with_symbolic_batch() {
        let x = sym(DType::F32, &[3, 4, 4]);
        let c = Fact::new(DType::F32, &[3, 1, 1]);
        let out = Binary { kind: BinaryKind::Mul }.infer(&[inf(&x), inf(&c)]).unwrap();
        assert_eq!(out, vec![x.clone()]);
        let out = Binary { kind: BinaryKind::Less }.infer(&[inf(&x), inf(&c)]).unwrap();
        assert_eq!(out[0].dtype, DType::Bool);
        assert_eq!(out[0].shape, x.shape);
        let m = Binary { kind: BinaryKind::Add }.axes(&[&x, &c], &[&x]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(1, 0), Port::output(0, 1))));
        assert!(!m.rels.iter().any(|r| matches!(r, AxisRel::Same(Port::In { input: 1, axis: 1 }, _))));
    }

    #[test]
    fn binary_rejects_mixed_or_wrong_dtypes_and_shapes() {
        let f = Fact::new(DType::F32, &[2, 3]);
        let i = Fact::new(DType::I64, &[2, 3]);
        let b = Fact::new(DType::Bool, &[2, 3]);
        let e = Binary { kind: BinaryKind::Add }.infer(&[inf(&f), inf(&i)]).unwrap_err();
        assert!(e.to_string().contains("one dtype"), "{e}");
        assert!(Binary { kind: BinaryKind::Add }.infer(&[inf(&b), inf(&b)]).is_err());
        assert!(Binary { kind: BinaryKind::And }.infer(&[inf(&f), inf(&f)]).is_err());
        assert!(Binary { kind: BinaryKind::And }.infer(&[inf(&b), inf(&b)]).is_ok());
        assert!(Binary { kind: BinaryKind::Equal }.infer(&[inf(&b), inf(&b)]).is_ok());
        let g = Fact::new(DType::F32, &[4, 3]);
        let e = Binary { kind: BinaryKind::Sub }.infer(&[inf(&f), inf(&g)]).unwrap_err();
        assert!(e.to_string().contains("cannot be broadcast"), "{e}");
        assert!(Binary { kind: BinaryKind::Sub }.infer(&[inf(&f)]).is_err());
    }

    #[test]
    fn where_and_cast_infer() {
        let c = sym(DType::Bool, &[1]);
        let a = Fact::new(DType::I64, &[5]);
        let out = Where {}.infer(&[inf(&c), inf(&a), inf(&a)]).unwrap();
        assert_eq!(out, vec![sym(DType::I64, &[5])]);
        let e = Where {}.infer(&[inf(&a), inf(&a), inf(&a)]).unwrap_err();
        assert!(e.to_string().contains("condition"), "{e}");
        let f = Fact::new(DType::F32, &[5]);
        assert!(Where {}.infer(&[inf(&c), inf(&a), inf(&f)]).is_err());
        let out = Cast { to: DType::F32 }.infer(&[inf(&c)]).unwrap();
        assert_eq!(out, vec![sym(DType::F32, &[1])]);
    }
}

//! Linear quantization: QuantizeLinear (f32 → 8-bit codes) and DequantizeLinear (codes → f32),
//! with ONNX semantics, per tensor (scalar scale) or per axis (a 1-D scale along `axis`).
//!
//! `QuantizeLinear`: `y = saturate(round_half_even(x / scale) + zero_point)`.
//! `DequantizeLinear`: `y = (x - zero_point) · scale`.
//! A missing zero point is 0. Structured pruning slices a per-axis scale and zero point with
//! the channels of that axis (their axis 0 is `Same` as the data's `axis`).

use super::{check_arity, per_example_volume, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// f32 → codes; inputs `[x, scale, zero_point?]`; output of dtype `dtype` (`U8` or `I8`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeLinear {
    /// The axis a 1-D scale runs along (ignored for a scalar scale); negative counts from the end.
    pub axis: i64,
    /// Code type: `U8` or `I8` (a zero point input must have it too).
    pub dtype: DType,
}

/// Codes → f32; inputs `[x, scale, zero_point?]` with `x` of dtype I8, U8 or I32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DequantizeLinear {
    /// The axis a 1-D scale runs along (ignored for a scalar scale).
    pub axis: i64,
}

/// The code range of an 8-bit dtype (`None` for others).
pub fn code_range(dtype: DType) -> Option<(i64, i64)> {
    match dtype {
        DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
        DType::U8 => Some((0, u8::MAX as i64)),
        DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
        _ => None,
    }
}

/// How the scale applies to `x`: per tensor, or per index of this axis of `x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    PerTensor,
    PerAxis(usize),
}

/// Check scale and zero point against `x` (codes of `code` dtype); returns the granularity.
fn check_params(x: &Fact, scale: &Fact, zp: Option<&Fact>, axis: i64, code: DType) -> OpResult<Granularity> {
    if scale.dtype != DType::F32 {
        return Err(OpError::Shape(format!("the scale must be f32, got {:?}", scale.dtype)));
    }
    let g = match scale.rank() {
        0 => Granularity::PerTensor,
        1 if scale.shape[0] == Dim::Fixed(1) => Granularity::PerTensor,
        1 => {
            let a = x.axis(axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })?;
            if scale.shape[0] != x.shape[a] {
                return Err(OpError::Shape(format!(
                    "a per-axis scale needs {} values (axis {a} of {x}), got {}",
                    x.shape[a], scale.shape[0]
                )));
            }
            Granularity::PerAxis(a)
        }
        r => return Err(OpError::Shape(format!("the scale must be a scalar or 1-D, got rank {r}"))),
    };
    if let Some(z) = zp {
        if z.dtype != code {
            return Err(OpError::Shape(format!("the zero point must be {code:?}, got {:?}", z.dtype)));
        }
        if z.shape != scale.shape && !(z.volume() == Some(1) && scale.volume() == Some(1)) {
            return Err(OpError::Shape(format!(
                "the zero point {z} and the scale {scale} must have one shape"
            )));
        }
    }
    Ok(g)
}

/// x's axes pass through; a per-axis scale (and zero point) follows the output's `axis`.
fn quant_axes(ins: &[&Fact], axis: i64) -> AxesMapping {
    let mut m = AxesMapping::none();
    let Some(x) = ins.first() else { return m };
    for k in 0..x.rank() {
        m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
    }
    if let (Some(s), Ok(a)) = (ins.get(1), x.axis(axis)) {
        if s.rank() == 1 && s.shape[0] == x.shape[a] {
            for k in 1..ins.len().min(3) {
                m.rels.push(AxisRel::Same(Port::input(k, 0), Port::output(0, a)));
            }
        }
    }
    m
}

impl OpDef for QuantizeLinear {
    fn name(&self) -> &'static str {
        "QuantizeLinear"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 3)?;
        if !self.dtype.is_quantized() {
            return Err(OpError::Attr {
                name: "dtype",
                msg: format!("must be U8 or I8, got {:?}", self.dtype),
            });
        }
        let x = ins[0].fact;
        if x.dtype != DType::F32 {
            return Err(OpError::Shape(format!("input 0 must be f32, got {:?}", x.dtype)));
        }
        check_params(x, ins[1].fact, ins.get(2).map(|z| z.fact), self.axis, self.dtype)?;
        Ok(vec![Fact::dims(self.dtype, x.shape.clone())])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        quant_axes(ins, self.axis)
    }
    /// One multiply-add per element.
    fn cost(&self, _ins: &[&Fact], outs: &[&Fact]) -> Cost {
        Cost { macs: outs.first().map_or(0, |f| per_example_volume(f)) }
    }
}

impl OpDef for DequantizeLinear {
    fn name(&self) -> &'static str {
        "DequantizeLinear"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 3)?;
        let x = ins[0].fact;
        if code_range(x.dtype).is_none() {
            return Err(OpError::Shape(format!("input 0 must be I8, U8 or I32, got {:?}", x.dtype)));
        }
        check_params(x, ins[1].fact, ins.get(2).map(|z| z.fact), self.axis, x.dtype)?;
        Ok(vec![Fact::dims(DType::F32, x.shape.clone())])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        quant_axes(ins, self.axis)
    }
    /// One multiply-add per element.
    fn cost(&self, _ins: &[&Fact], outs: &[&Fact]) -> Cost {
        Cost { macs: outs.first().map_or(0, |f| per_example_volume(f)) }
    }
}

/// The granularity of a quantization node's scale `scale` for data `x` (for the backends).
pub fn granularity(x: &Fact, scale: &Fact, axis: i64) -> OpResult<Granularity> {
    check_params(x, scale, None, axis, DType::U8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }

    fn nchw(c: usize) -> Fact {
        Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(c), Dim::Fixed(4), Dim::Fixed(4)])
    }

    #[test]
    fn quantize_and_dequantize_infer_dtypes() {
        let x = nchw(3);
        let s = Fact::new(DType::F32, &[]);
        let z = Fact::new(DType::U8, &[]);
        let q = QuantizeLinear { axis: 1, dtype: DType::U8 };
        let y = q.infer(&[inf(&x), inf(&s), inf(&z)]).unwrap();
        assert_eq!(y[0], Fact::dims(DType::U8, x.shape.clone()));
        let d = DequantizeLinear { axis: 1 }.infer(&[inf(&y[0]), inf(&s), inf(&z)]).unwrap();
        assert_eq!(d[0], x);
        // The zero point's dtype must be the code type.
        let zi = Fact::new(DType::I8, &[]);
        assert!(q.infer(&[inf(&x), inf(&s), inf(&zi)]).is_err());
        // QuantizeLinear only makes 8-bit codes; DequantizeLinear refuses f32 input.
        assert!(QuantizeLinear { axis: 1, dtype: DType::I64 }.infer(&[inf(&x), inf(&s)]).is_err());
        assert!(DequantizeLinear { axis: 1 }.infer(&[inf(&x), inf(&s)]).is_err());
    }

    #[test]
    fn per_axis_scales_must_match_and_follow_the_axis() {
        let w = Fact::new(DType::I8, &[8, 3, 3, 3]);
        let s = Fact::new(DType::F32, &[8]);
        let z = Fact::new(DType::I8, &[8]);
        let d = DequantizeLinear { axis: 0 };
        d.infer(&[inf(&w), inf(&s), inf(&z)]).unwrap();
        let e = DequantizeLinear { axis: 1 }.infer(&[inf(&w), inf(&s)]).unwrap_err();
        assert!(e.to_string().contains("per-axis"), "{e}");
        let out = Fact::new(DType::F32, &[8, 3, 3, 3]);
        let m = d.axes(&[&w, &s, &z], &[&out]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(1, 0), Port::output(0, 0))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(2, 0), Port::output(0, 0))));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(0, 3), Port::output(0, 3))));
        // A scalar scale relates to nothing.
        let scalar = Fact::new(DType::F32, &[]);
        let m = d.axes(&[&w, &scalar], &[&out]);
        assert_eq!(m.rels.len(), 4);
        assert_eq!(d.cost(&[&w, &s], &[&out]).macs, 8 * 27);
    }
}

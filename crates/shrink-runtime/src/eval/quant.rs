//! QuantizeLinear and DequantizeLinear with ONNX semantics (round half to even, saturation),
//! per tensor or per axis.

use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use shrink_graph::ops::quant::{code_range, DequantizeLinear, QuantizeLinear};
use shrink_graph::{DType, Tensor};

/// Per element, the index into the scale: 0 per tensor, the `axis` index per axis.
fn channel_of(shape: &[usize], scale_len: usize, axis: i64) -> Result<impl Fn(usize) -> usize, EvalError> {
    let per_axis = scale_len != 1;
    let (inner, size) = if per_axis {
        let a = shrink_graph::fact::normalize_axis(axis, shape.len())
            .map_err(|e| EvalError::op(e.to_string()))?;
        if shape[a] != scale_len {
            return Err(EvalError::op(format!(
                "a per-axis scale needs {} values (axis {a} of {shape:?}), got {scale_len}",
                shape[a]
            )));
        }
        (shape[a + 1..].iter().product::<usize>(), shape[a])
    } else {
        (1, 1)
    };
    Ok(move |i: usize| if per_axis { (i / inner) % size } else { 0 })
}

/// The scale (input 1, f32) and zero points (input 2 as integers, or zeros) of a node.
fn params(ins: &[&Tensor]) -> Result<(Vec<f32>, Vec<i64>), EvalError> {
    let scale = f32_input(ins, 1)?.to_vec();
    if scale.is_empty() {
        return Err(EvalError::op("the scale is empty"));
    }
    let zp = match ins.get(2) {
        Some(z) if z.dtype() == DType::F32 => return Err(EvalError::op("the zero point must be an integer")),
        Some(z) => z.to_i64_vec(),
        None => vec![0; scale.len()],
    };
    if zp.len() != scale.len() {
        return Err(EvalError::op(format!("{} zero points for {} scales", zp.len(), scale.len())));
    }
    Ok((scale, zp))
}

/// `saturate(round_half_even(x / scale) + zero_point)` in the code range `lo..=hi`, as onnxruntime
/// (f32 division, then rounding). NaN gives the zero point.
pub fn quantize_value(x: f32, scale: f32, zp: i64, lo: i64, hi: i64) -> i64 {
    let q = (x / scale).round_ties_even();
    let v = if q.is_nan() { 0.0 } else { q as f64 + zp as f64 };
    v.clamp(lo as f64, hi as f64) as i64
}

impl Eval for QuantizeLinear {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        if !(2..=3).contains(&ins.len()) {
            return Err(EvalError::op(format!("expects 2 or 3 inputs, got {}", ins.len())));
        }
        let x = f32_input(ins, 0)?;
        let (lo, hi) = code_range(self.dtype)
            .filter(|_| self.dtype.is_quantized())
            .ok_or_else(|| EvalError::op(format!("cannot quantize to {:?}", self.dtype)))?;
        if let Some(z) = ins.get(2) {
            if z.dtype() != self.dtype {
                return Err(EvalError::op(format!(
                    "the zero point must be {:?}, got {:?}",
                    self.dtype,
                    z.dtype()
                )));
            }
        }
        let (scale, zp) = params(ins)?;
        let ch = channel_of(&ins[0].shape, scale.len(), self.axis)?;
        let codes: Vec<i64> =
            x.iter().enumerate().map(|(i, &v)| quantize_value(v, scale[ch(i)], zp[ch(i)], lo, hi)).collect();
        Ok(vec![Tensor::from_i64s(self.dtype, ins[0].shape.clone(), &codes)])
    }
}

impl Eval for DequantizeLinear {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        if !(2..=3).contains(&ins.len()) {
            return Err(EvalError::op(format!("expects 2 or 3 inputs, got {}", ins.len())));
        }
        let x = ins[0];
        if code_range(x.dtype()).is_none() {
            return Err(EvalError::op(format!("input 0 must be I8, U8 or I32, got {:?}", x.dtype())));
        }
        if let Some(z) = ins.get(2) {
            if z.dtype() != x.dtype() {
                return Err(EvalError::op(format!(
                    "the zero point must be {:?}, got {:?}",
                    x.dtype(),
                    z.dtype()
                )));
            }
        }
        let (scale, zp) = params(ins)?;
        let ch = channel_of(&x.shape, scale.len(), self.axis)?;
        // Integer subtraction, then one f32 multiply (onnxruntime's order).
        let y =
            x.to_i64_vec().iter().enumerate().map(|(i, &q)| (q - zp[ch(i)]) as f32 * scale[ch(i)]).collect();
        Ok(vec![Tensor::f32(x.shape.clone(), y)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: &dyn Eval, ins: &[&Tensor]) -> Result<Tensor, EvalError> {
        op.eval(ins, &EvalCtx::default()).map(|mut v| v.remove(0))
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let x = Tensor::f32(vec![6], vec![0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0]);
        let s = Tensor::f32(vec![], vec![1.0]);
        let z = Tensor::u8(vec![], vec![10]);
        let q = run(&QuantizeLinear { axis: 1, dtype: DType::U8 }, &[&x, &s, &z]).unwrap();
        assert_eq!(q.as_u8().unwrap(), &[10, 12, 12, 10, 255, 0]);
        let q = run(&QuantizeLinear { axis: 1, dtype: DType::I8 }, &[&x, &s]).unwrap();
        assert_eq!(q.as_i8().unwrap(), &[0, 2, 2, 0, 127, -128]);
        let d = run(&DequantizeLinear { axis: 1 }, &[&q, &Tensor::f32(vec![], vec![0.5])]).unwrap();
        assert_eq!(d.as_f32().unwrap(), &[0.0, 1.0, 1.0, 0.0, 63.5, -64.0]);
    }

    #[test]
    fn per_axis_scales_index_the_axis() {
        // [2, 3] per axis 0: row 0 scale 1, row 1 scale 0.5 with zero point 1.
        let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
        let s = Tensor::f32(vec![2], vec![1.0, 0.5]);
        let z = Tensor::i8(vec![2], vec![0, 1]);
        let q = run(&QuantizeLinear { axis: 0, dtype: DType::I8 }, &[&x, &s, &z]).unwrap();
        assert_eq!(q.as_i8().unwrap(), &[1, 2, 3, 3, 5, 7]);
        let d = run(&DequantizeLinear { axis: 0 }, &[&q, &s, &z]).unwrap();
        assert_eq!(d.as_f32().unwrap(), x.as_f32().unwrap());
        // Along axis 1 the scale needs 3 values: a one-line error, no panic.
        let e = run(&DequantizeLinear { axis: 1 }, &[&q, &s, &z]).unwrap_err();
        assert!(e.to_string().contains("per-axis"), "{e}");
        let e = run(&DequantizeLinear { axis: 0 }, &[&x, &s]).unwrap_err();
        assert!(e.to_string().contains("I8, U8 or I32"), "{e}");
        let i32s = Tensor::i32(vec![2], vec![-4, 6]);
        let d = run(&DequantizeLinear { axis: 0 }, &[&i32s, &Tensor::f32(vec![2], vec![0.25, 2.0])]).unwrap();
        assert_eq!(d.as_f32().unwrap(), &[-1.0, 12.0]);
    }
}

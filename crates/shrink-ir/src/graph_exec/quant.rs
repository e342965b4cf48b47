//! Candle lowering of the `quant` op family: QuantizeLinear and DequantizeLinear.
//!
//! candle has no i8/u8-code tensors here: constant codes are i64 tensors (see
//! [`super::to_candle`]), and QuantizeLinear's codes are carried as **f32** tensors holding exact
//! integers, so a QuantizeLinear → DequantizeLinear pair on an activation is fake quantization
//! with a straight-through gradient: `d out / d x` is 1 where `x` falls inside the code range
//! and 0 where it saturates (round has a zero gradient; the STE passes the clamp's). A
//! DequantizeLinear of constant codes (a quantized weight) gives an f32 tensor with no
//! gradient: its scale is not a trained input, so it acts as the f32 constant it encodes.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::{DType as CDType, Tensor};
use shrink_graph::ops::quant::{code_range, DequantizeLinear, QuantizeLinear};

fn invalid(msg: impl Into<String>) -> IrError {
    IrError::Invalid(msg.into())
}

/// `[x, scale, zero_point?]`, with scale and zero point (as f32) shaped to broadcast against `x`:
/// a scalar per tensor, `[1, .., C, .., 1]` along `axis` per axis.
fn params(ins: &[&Tensor], axis: i64, op: &str) -> Result<(Tensor, Tensor, Tensor)> {
    if !(2..=3).contains(&ins.len()) {
        return Err(invalid(format!("{op} expects 2 or 3 inputs, got {}", ins.len())));
    }
    let x = ins[0].clone();
    let scale = ins[1].to_dtype(CDType::F32)?;
    let zp = match ins.get(2) {
        Some(z) => z.to_dtype(CDType::F32)?,
        None => scale.zeros_like()?,
    };
    let n = scale.elem_count();
    let shape: Vec<usize> = if n == 1 {
        vec![]
    } else {
        let a =
            shrink_graph::fact::normalize_axis(axis, x.rank()).map_err(|e| invalid(format!("{op}: {e}")))?;
        if x.dim(a)? != n {
            return Err(invalid(format!("{op}: a per-axis scale needs {} values, got {n}", x.dim(a)?)));
        }
        (0..x.rank()).map(|k| if k == a { n } else { 1 }).collect()
    };
    let scale = scale.reshape(shape.as_slice())?.broadcast_as(x.shape())?;
    let zp = zp.reshape(shape.as_slice())?.broadcast_as(x.shape())?;
    Ok((x, scale, zp))
}

impl Lower for QuantizeLinear {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (lo, hi) = code_range(self.dtype)
            .filter(|_| self.dtype.is_quantized())
            .ok_or_else(|| invalid(format!("QuantizeLinear cannot make {:?} codes", self.dtype)))?;
        let (x, scale, zp) = params(ins, self.axis, "QuantizeLinear")?;
        if x.dtype() != CDType::F32 {
            return Err(invalid(format!("QuantizeLinear needs f32 input, got {:?}", x.dtype())));
        }
        let v = (x / scale)?;
        // ONNX rounds before adding the zero point (an odd zero point moves ties' parity).
        let q = (super::math::round_half_even(&v)? + &zp)?.clamp(lo as f32, hi as f32)?;
        // Straight-through: the value of q, the gradient of clamp(v + zero_point).
        let c = (v + zp)?.clamp(lo as f32, hi as f32)?;
        Ok(vec![(&c + (q - &c)?.detach())?])
    }
}

impl Lower for DequantizeLinear {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (x, scale, zp) = params(ins, self.axis, "DequantizeLinear")?;
        let x = x.to_dtype(CDType::F32)?;
        Ok(vec![((x - zp)? * scale)?])
    }
}

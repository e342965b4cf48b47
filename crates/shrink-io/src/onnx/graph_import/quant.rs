//! ONNX ops of the `quant` family → IR ops: QuantizeLinear and DequantizeLinear (opsets 10–21;
//! per tensor, or per axis from opset 13). Codes are int8 or uint8 (DequantizeLinear also reads
//! int32, as quantized biases); blocked quantization (`block_size`, opset 21) is refused.
//!
//! A DequantizeLinear of constant codes is kept as a node (not folded to f32 at import), so a
//! QDQ model keeps its int8 weights through import and export.

use super::ctx::attr_i;
use super::{Ctx, ImportFn, R};
use crate::onnx::decode::NodeProto;
use shrink_graph::ops::quant::{DequantizeLinear, QuantizeLinear};
use shrink_graph::DType;

/// The mapping of `op_type`, if this family has it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    Some(match op_type {
        "QuantizeLinear" => quantize_linear,
        "DequantizeLinear" => dequantize_linear,
        _ => return None,
    })
}

/// The inputs `[x, scale, zero_point?]` and the `axis` attribute (1 by default; opset 10 has
/// per-tensor scales only).
fn common(ctx: &Ctx, node: &NodeProto) -> R<(Vec<shrink_graph::ValueId>, i64)> {
    if !(2..=3).contains(&node.inputs.len()) {
        return Err(format!("expects 2 or 3 inputs, got {}", node.inputs.len()));
    }
    if let Some(b) = attr_i(node, "block_size").filter(|&b| b != 0) {
        return Err(format!("attribute `block_size` {b}: blocked quantization is not supported"));
    }
    let mut ins = vec![ctx.req(node, 0)?, ctx.req(node, 1)?];
    ins.extend(ctx.input(node, 2)?);
    let scale = ctx.fact(ins[1]);
    if ctx.opset < 13 && scale.rank() > 0 && scale.volume() != Some(1) {
        return Err(format!("opset {} has per-tensor scales only, got {scale}", ctx.opset));
    }
    Ok((ins, attr_i(node, "axis").unwrap_or(1)))
}

fn quantize_linear(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let (ins, axis) = common(ctx, node)?;
    let dtype = match ins.get(2) {
        Some(&z) => ctx.fact(z).dtype,
        None => match attr_i(node, "output_dtype").unwrap_or(0) {
            0 | 2 => DType::U8,
            3 => DType::I8,
            t => {
                return Err(format!("attribute `output_dtype` {t}: only int8 and uint8 codes are supported"))
            }
        },
    };
    if !dtype.is_quantized() {
        return Err(format!("the zero point is {dtype:?}: only int8 and uint8 codes are supported"));
    }
    ctx.add(node, QuantizeLinear { axis, dtype }, &ins)?;
    Ok(())
}

fn dequantize_linear(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let (ins, axis) = common(ctx, node)?;
    ctx.add(node, DequantizeLinear { axis }, &ins)?;
    Ok(())
}

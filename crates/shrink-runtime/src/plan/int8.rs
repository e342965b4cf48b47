//! Recognition of int8 layers in QDQ graphs, for [`Plan::compile`](super::Plan::compile).
//!
//! A QDQ graph (shrink's `quantize_graph`, onnxruntime's quantization tool) spells an int8
//! layer as
//!
//! ```text
//! x ─ QuantizeLinear(sx, zx) ─ DequantizeLinear(sx, zx) ─┐
//! W_int8 (const) ─ DequantizeLinear(sw, zw = 0) ─────────┴─ Conv / Gemm / MatMul (+ bias)
//! ```
//!
//! [`lower`] matches that pattern (per-tensor activation scale with u8 or i8 codes, symmetric
//! i8 weights with a per-tensor or per-output-channel scale, an f32 or dequantized-constant
//! bias) and compiles it into one int8 step reading `x` directly: [`Int8LinearStep`] or
//! [`Int8ConvStep`]. The step quantizes `x` exactly as the reference QuantizeLinear does, so its
//! integer sums equal the reference's products of dequantized values; only the order of the f32
//! scaling differs. Anything else (asymmetric or u8 weights, per-channel activation scales,
//! grouped but not depthwise convolutions, 1-D / 3-D convolutions, K above the kernels' exact
//! range) returns `None` and keeps the reference path: never an error.
//!
//! Outputs stay f32 in the session's arena, so int8 steps mix freely with every other step
//! (residual additions, pooling, reference-evaluated operators). Fusing the next layer's
//! requantization into a u8 output (`shrink_kernels::gemm_u8i8_u8`) is a possible follow-up
//! that would halve the traffic between consecutive int8 layers.

use super::epilogue::Epilogue;
use super::int8_conv::{Int8ConvStep, Int8ConvWeights};
use super::int8_linear::Int8LinearStep;
use super::StepKind;
use crate::exec::eval_op;
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::{DType, Graph, Node, Op, Tensor, ValueDef, ValueId};
use shrink_kernels::{Activation, PackedDirectI8, PackedI8, QuantParams, MAX_K};

/// How a matched layer's f32 input becomes u8 codes: the parameters of its QuantizeLinear →
/// DequantizeLinear pair (i8 codes are shifted to u8: zero point + 128) and the code of NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputQuant {
    pub q: QuantParams,
    /// The u8 code the reference gives NaN (its code 0: 0 for u8, 128 for shifted i8 codes).
    pub nan: u8,
}

/// The activation quantization of a matched layer: the f32 value `x` it reads and how.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActQuant {
    pub x: ValueId,
    pub q: InputQuant,
}

/// `v / scale` rounded half to even, plus the zero point, saturated to `0..=255` (NaN gives
/// `q.nan`): the reference QuantizeLinear's arithmetic (f32 division, then rounding), so the
/// codes are identical.
#[inline(always)]
// `max`/`min` on purpose: unlike `clamp`, they turn NaN into a number.
#[allow(clippy::manual_clamp)]
pub fn quantize_u8(v: f32, q: InputQuant) -> u8 {
    // Outside ±512 the result saturates either way; inside, adding and subtracting 1.5·2²³
    // rounds half to even in the default rounding mode (no SSE4.1 needed). `max`/`min` map NaN
    // to a number, selected away at the end: the loop stays branch-free and vectorizes.
    const MAGIC: f32 = 12_582_912.0;
    let t = v / q.q.scale;
    let r = (t.max(-512.0).min(512.0) + MAGIC) - MAGIC;
    let c = (r + q.q.zero_point as f32).clamp(0.0, 255.0);
    // SAFETY: `c` is finite and in 0..=255.
    let code = unsafe { c.to_int_unchecked::<i32>() } as u8;
    if t.is_nan() {
        q.nan
    } else {
        code
    }
}

/// Quantize `x` into `out` (same length).
pub fn quantize_slice(x: &[f32], q: InputQuant, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512 F and BW (checked just above).
            return unsafe { quantize_avx512(x, q, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { quantize_avx2(x, q, out) };
        }
    }
    quantize_plain(x, q, out)
}

#[inline(always)]
fn quantize_plain(x: &[f32], q: InputQuant, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_u8(v, q);
    }
}

/// The same loop compiled for AVX2 (8 lanes per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(x: &[f32], q: InputQuant, out: &mut [u8]) {
    quantize_plain(x, q, out)
}

/// The same loop compiled for AVX-512 (16 lanes per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_avx512(x: &[f32], q: InputQuant, out: &mut [u8]) {
    quantize_plain(x, q, out)
}

/// The kernels' activation of a plan epilogue.
pub fn activation(ep: Epilogue) -> Activation {
    match ep {
        Epilogue::None => Activation::None,
        Epilogue::Relu => Activation::Relu,
        Epilogue::Clip { lo, hi } => Activation::Clip { lo, hi },
    }
}

/// The node producing `v` (first output only).
fn producer(g: &Graph, v: ValueId) -> Option<&Node> {
    match g.values[v].def {
        ValueDef::Node { node, slot: 0 } => g.nodes.get(node),
        _ => None,
    }
}

/// A constant holding exactly one finite, positive f32.
fn scalar_scale(g: &Graph, v: ValueId) -> Option<f32> {
    match g.const_value(v)?.as_f32()? {
        [s] if s.is_finite() && *s > 0.0 => Some(*s),
        _ => None,
    }
}

/// The single zero point of a quantization node (input 2; absent is 0), as an integer.
fn scalar_zero_point(g: &Graph, ins: &[ValueId], dtype: DType) -> Option<i64> {
    match ins.get(2) {
        None => Some(0),
        Some(&z) => {
            let t = g.const_value(z)?;
            if t.dtype() != dtype || t.len() != 1 {
                return None;
            }
            Some(t.to_i64_vec()[0])
        }
    }
}

/// `v` is `DequantizeLinear(QuantizeLinear(x, s, z), s, z)` with one scale and zero point.
pub fn act_quant(g: &Graph, v: ValueId) -> Option<ActQuant> {
    let dq = producer(g, v)?;
    let Op::DequantizeLinear(_) = &dq.op else { return None };
    let qv = *dq.inputs.first()?;
    let qn = producer(g, qv)?;
    let Op::QuantizeLinear(q) = &qn.op else { return None };
    let x = *qn.inputs.first()?;
    if g.values[x].fact.dtype != DType::F32 || !matches!(q.dtype, DType::U8 | DType::I8) {
        return None;
    }
    let s = scalar_scale(g, *dq.inputs.get(1)?)?;
    if scalar_scale(g, *qn.inputs.get(1)?)?.to_bits() != s.to_bits() {
        return None;
    }
    let z = scalar_zero_point(g, &dq.inputs, q.dtype)?;
    if scalar_zero_point(g, &qn.inputs, q.dtype)? != z {
        return None;
    }
    // i8 codes c ∈ [-128, 127] are u8 codes c + 128 with zero point z + 128: same real values,
    // same saturation.
    let (zero_point, nan) = if q.dtype == DType::I8 { (z + 128, 128) } else { (z, 0) };
    let q = QuantParams { scale: s, zero_point: u8::try_from(zero_point).ok()? };
    Some(ActQuant { x, q: InputQuant { q, nan } })
}

/// Symmetric int8 weight codes with a scale per output channel.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightQuant {
    pub codes: Vec<i8>,
    pub shape: Vec<usize>,
    /// One per index of the output-channel axis (a per-tensor scale is repeated).
    pub scales: Vec<f32>,
}

/// `v` is `DequantizeLinear(W)` of a constant i8 `W` with zero point 0 and a scale per tensor or
/// along `axis` (the output channels).
pub fn weight_quant(g: &Graph, v: ValueId, axis: usize) -> Option<WeightQuant> {
    let dq = producer(g, v)?;
    let Op::DequantizeLinear(d) = &dq.op else { return None };
    let w = g.const_value(*dq.inputs.first()?)?;
    let codes = w.as_i8()?;
    let channels = *w.shape.get(axis)?;
    let s = g.const_value(*dq.inputs.get(1)?)?.as_f32()?;
    if s.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let scales = match s.len() {
        1 => vec![s[0]; channels],
        l if l == channels => {
            let a = shrink_graph::fact::normalize_axis(d.axis, w.shape.len()).ok()?;
            if a != axis {
                return None;
            }
            s.to_vec()
        }
        _ => return None,
    };
    if let Some(&z) = dq.inputs.get(2) {
        let z = g.const_value(z)?;
        if z.dtype() != DType::I8 || z.to_i64_vec().iter().any(|&v| v != 0) {
            return None;
        }
    }
    Some(WeightQuant { codes: codes.to_vec(), shape: w.shape.clone(), scales })
}

/// An f32 constant, or the f32 value of a DequantizeLinear of constants (an int32 bias).
fn const_f32(g: &Graph, v: ValueId) -> Option<Tensor> {
    if let Some(t) = g.const_value(v) {
        return t.as_f32().is_some().then(|| t.clone());
    }
    let dq = producer(g, v)?;
    if !matches!(dq.op, Op::DequantizeLinear(_)) {
        return None;
    }
    let ins: Vec<&Tensor> = dq.inputs.iter().map(|&i| g.const_value(i)).collect::<Option<_>>()?;
    let out = eval_op(&dq.op, &ins, &Default::default()).ok()?;
    out.into_iter().next().filter(|t| t.as_f32().is_some())
}

/// The int8 step of node `node` and the f32 value it reads, when the node is an int8 layer.
pub fn lower(g: &Graph, node: &Node) -> Option<(StepKind, ValueId)> {
    let ins = &node.inputs;
    match &node.op {
        Op::Conv(c) if (2..=3).contains(&ins.len()) => lower_conv(g, c, ins),
        Op::Gemm(gm) if (2..=3).contains(&ins.len()) && !gm.trans_a => {
            let a = act_quant(g, ins[0])?;
            if g.values[a.x].fact.rank() != 2 {
                return None;
            }
            let w = weight_quant(g, ins[1], if gm.trans_b { 0 } else { 1 })?;
            let c = match ins.get(2) {
                Some(&c) => Some(const_f32(g, c)?),
                None => None,
            };
            lower_linear(a, w, gm, c.as_ref())
        }
        Op::MatMul(_) if ins.len() == 2 => {
            let a = act_quant(g, ins[0])?;
            if g.values[a.x].fact.rank() == 0 {
                return None;
            }
            let w = weight_quant(g, ins[1], 1)?;
            let gm = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false };
            lower_linear(a, w, &gm, None)
        }
        _ => None,
    }
}

/// `alpha·x·op(W) + beta·C` with `op(W)` `[K, N]`: the codes as `[N, K]` rows, alpha folded into
/// the scales, `beta·C` a per-output bias (C constant along the rows).
fn lower_linear(a: ActQuant, w: WeightQuant, gm: &Gemm, c: Option<&Tensor>) -> Option<(StepKind, ValueId)> {
    if w.shape.len() != 2 || !gm.alpha.is_finite() {
        return None;
    }
    let (k, n) = if gm.trans_b { (w.shape[1], w.shape[0]) } else { (w.shape[0], w.shape[1]) };
    if k == 0 || n == 0 || k > MAX_K {
        return None;
    }
    let rows: Vec<i8> =
        if gm.trans_b { w.codes } else { (0..n * k).map(|i| w.codes[(i % k) * n + i / k]).collect() };
    let bias = match c {
        None => None,
        Some(_) if gm.beta == 0.0 => None,
        Some(t) => {
            let cv = t.as_f32()?;
            if t.shape.len() > 2 || t.shape.iter().rev().skip(1).any(|&d| d != 1) {
                return None;
            }
            match cv.len() {
                1 => Some(vec![gm.beta * cv[0]; n]),
                l if l == n => Some(cv.iter().map(|v| gm.beta * v).collect()),
                _ => return None,
            }
        }
    };
    let weight_scales = w.scales.iter().map(|s| s * gm.alpha).collect();
    let step = Int8LinearStep {
        k,
        n,
        xq: a.q,
        weights: PackedI8::pack(&rows, n, k).ok()?,
        weight_scales,
        bias,
        epilogue: Epilogue::None,
    };
    Some((StepKind::Int8Linear(step), a.x))
}

/// A 2-D convolution with one group (im2col + GEMM) or one input channel per group and as many
/// outputs as inputs (depthwise).
fn lower_conv(g: &Graph, c: &Conv, ins: &[ValueId]) -> Option<(StepKind, ValueId)> {
    let a = act_quant(g, ins[0])?;
    let w = weight_quant(g, ins[1], 0)?;
    let xf = &g.values[a.x].fact;
    if w.shape.len() != 4 || xf.rank() != 4 || c.strides.len() != 2 || c.pads.len() != 4 {
        return None;
    }
    if c.dilations.len() != 2 || c.strides.contains(&0) || c.dilations.contains(&0) {
        return None;
    }
    let channels = xf.shape[1].fixed()?;
    let (m, cg) = (w.shape[0], w.shape[1]);
    let taps = w.shape[2] * w.shape[3];
    if m == 0 || taps == 0 {
        return None;
    }
    // The direct kernel: one group, stride 1, a CPU with VNNI (elsewhere its portable path
    // would be slower than the im2col GEMM).
    let direct = (c.groups == 1
        && cg == channels
        && c.strides == [1, 1]
        && shrink_kernels::Isa::detect() == shrink_kernels::Isa::Avx512Vnni)
        .then(|| PackedDirectI8::pack(&w.codes, m, cg, w.shape[2], w.shape[3]).ok())
        .flatten();
    let weights = if c.groups == 1 && cg == channels {
        let k = cg * taps;
        if k > MAX_K {
            return None;
        }
        // Columns in (ky, kx, c) order: an NHWC im2col row is kh·kw runs of C bytes.
        let mut rows = vec![0i8; m * k];
        for o in 0..m {
            for ci in 0..cg {
                for t in 0..taps {
                    rows[o * k + t * cg + ci] = w.codes[(o * cg + ci) * taps + t];
                }
            }
        }
        Int8ConvWeights::Gemm(PackedI8::pack(&rows, m, k).ok()?)
    } else if c.groups == channels && cg == 1 && m == channels {
        Int8ConvWeights::Depthwise(w.codes)
    } else {
        return None;
    };
    let bias = match ins.get(2) {
        Some(&b) => {
            let t = const_f32(g, b)?;
            let b = t.as_f32()?;
            if b.len() != m {
                return None;
            }
            Some(b.to_vec())
        }
        None => None,
    };
    let step = Int8ConvStep {
        op: c.clone(),
        weight_shape: w.shape,
        xq: a.q,
        weights,
        direct,
        weight_scales: w.scales,
        bias,
        epilogue: Epilogue::None,
        residual: false,
    };
    Some((StepKind::Int8Conv(step), a.x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::quant::quantize_value;

    #[test]
    fn quantization_equals_the_reference_quantize_linear() {
        let q = QuantParams { scale: 0.1, zero_point: 7 };
        let (lo, hi) = (0, 255);
        let mut xs = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 0.0, -0.0];
        // Ties in both directions, values near ties and a sweep over the code range.
        xs.extend([0.05, 0.15, 0.25, -0.05, -0.15, 0.35, 12.75, -0.75, 24.85, 25.05]);
        xs.extend((0..4000).map(|i| (i as f32 - 2000.0) * 0.0137));
        xs.extend((0..200).map(|i| (i as f32 - 100.0) * 0.05));
        // u8 codes, and i8 codes (shifted by 128) with zero point zp − 128.
        for (shift, nan) in [(0i64, 0u8), (128, 128)] {
            for zp in [0u8, 7, 128, 255] {
                let q = InputQuant { q: QuantParams { zero_point: zp, ..q }, nan };
                let mut got = vec![0u8; xs.len()];
                quantize_slice(&xs, q, &mut got);
                for (&x, &g) in xs.iter().zip(&got) {
                    let want =
                        quantize_value(x, q.q.scale, zp as i64 - shift, lo - shift, hi - shift) + shift;
                    assert_eq!(g as i64, want, "x = {x}, zero point {zp}, shift {shift}");
                    assert_eq!(quantize_u8(x, q) as i64, want);
                }
            }
        }
    }
}

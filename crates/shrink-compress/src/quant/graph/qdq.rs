//! The QDQ rewrite: int8 weight codes + DequantizeLinear, QuantizeLinear → DequantizeLinear on
//! activations (see the module docs of `quant::graph` for the formulas).

use super::{targets, ActRanges, QdqConfig, QdqError};
use crate::quant::formula::round_ties_even;
use shrink_graph::ops::quant::{DequantizeLinear, QuantizeLinear};
use shrink_graph::{DType, Graph, Tensor, ValueDef, ValueId};
use std::collections::HashMap;

/// Per-channel symmetric narrow-range quantization of weight `w` along `axis` at `bits`:
/// one scale per channel (`max|w_c| / (2^(b-1) - 1)`, 1 for an all-zero channel) and the int8
/// codes `clamp(round(w / scale), -(2^(b-1) - 1), 2^(b-1) - 1)`, in `w`'s layout.
pub fn weight_params(w: &[f32], shape: &[usize], axis: usize, bits: u32) -> (Vec<f32>, Vec<i8>) {
    let qmax = ((1i32 << (bits - 1)) - 1) as f32;
    let c = shape.get(axis).copied().unwrap_or(1);
    let inner: usize = shape.get(axis + 1..).map_or(1, |s| s.iter().product());
    let ch = |i: usize| (i / inner.max(1)) % c.max(1);
    let mut amax = vec![0f32; c];
    for (i, &x) in w.iter().enumerate() {
        if x.is_finite() {
            amax[ch(i)] = amax[ch(i)].max(x.abs());
        }
    }
    let scales: Vec<f32> =
        amax.iter().map(|&a| a / qmax).map(|s| if s >= f32::MIN_POSITIVE { s } else { 1.0 }).collect();
    let codes = w
        .iter()
        .enumerate()
        .map(|(i, &x)| round_ties_even(x / scales[ch(i)]).clamp(-qmax, qmax) as i8)
        .collect();
    (scales, codes)
}

/// Per-tensor asymmetric uint8 parameters of an activation observed in `[min, max]` at `bits`:
/// the range widened to include 0, `scale = (max - min) / (2^b - 1)` (1 when the range is
/// empty), `zero_point = clamp(round(-min / scale), 0, 2^b - 1)`.
pub fn activation_params(min: f32, max: f32, bits: u32) -> (f32, u8) {
    let qmax = ((1u32 << bits) - 1) as f32;
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = (hi - lo) / qmax;
    // NaN, zero or a subnormal width: no usable scale.
    if scale.is_nan() || scale < f32::MIN_POSITIVE || !scale.is_finite() {
        return (1.0, 0);
    }
    let zp = round_ties_even(0.0 - lo / scale).clamp(0.0, qmax);
    (scale, zp as u8)
}

/// Rebuild `graph` as a QDQ graph (see the module docs): weights of the Conv/Gemm/MatMul nodes
/// `cfg` selects become int8 codes + DequantizeLinear, their activation inputs pass through
/// QuantizeLinear → DequantizeLinear with the calibrated `ranges`. A weight or activation read
/// by several quantized nodes is quantized once. Names: `{v}_quantized`, `{v}_scale`,
/// `{v}_zero_point`, `{v}_dequantized` (onnxruntime's tool's spelling).
pub fn quantize_graph(graph: &Graph, ranges: &ActRanges, cfg: &QdqConfig) -> Result<Graph, QdqError> {
    cfg.check(graph)?;
    let by_node: HashMap<usize, super::Target> =
        targets(graph, cfg).into_iter().map(|t| (t.node, t)).collect();
    let gerr = |e: shrink_graph::GraphError| QdqError::Graph(e.to_string());
    let mut out = Graph::new();
    // Old value id → new value id.
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    for &i in &graph.inputs {
        let v = &graph.values[i];
        map.insert(i, out.add_input(&v.name, v.fact.clone()).map_err(gerr)?);
    }
    // Dequantized replacements, so a shared weight or activation is quantized once, with the
    // weight's per-channel scales and the activation's scale (what an int32 bias needs).
    let mut dq: HashMap<ValueId, ValueId> = HashMap::new();
    let mut weight_scales: HashMap<ValueId, Vec<f32>> = HashMap::new();
    let mut act_scale: HashMap<ValueId, f32> = HashMap::new();
    let mut bias_dq: HashMap<(ValueId, u32, Vec<u32>), ValueId> = HashMap::new();
    for (k, node) in graph.nodes.iter().enumerate() {
        let mut inputs = Vec::with_capacity(node.inputs.len());
        for &v in &node.inputs {
            inputs.push(value(graph, &mut out, &mut map, v)?);
        }
        if let Some(t) = by_node.get(&k) {
            if let Some((i, w, axis)) = t.weight {
                if let Some(&d) = dq.get(&w) {
                    inputs[i] = d;
                } else {
                    let (d, scales) =
                        quantize_weight_scales(graph, &mut out, w, axis, cfg.weight_bits, "_quantized")?;
                    dq.insert(w, d);
                    weight_scales.insert(w, scales);
                    inputs[i] = d;
                }
            }
            for &(i, a) in &t.acts {
                if let Some(&d) = dq.get(&a) {
                    inputs[i] = d;
                    continue;
                }
                let name = &graph.values[a].name;
                let (lo, hi) = ranges.get(name).ok_or_else(|| QdqError::NoRange(name.clone()))?;
                let (d, scale) = fake_quantize(&mut out, inputs[i], name, lo, hi, cfg.act_bits)?;
                act_scale.insert(a, scale);
                dq.insert(a, d);
                inputs[i] = d;
            }
            // The bias (input 2 of Conv / Gemm) of a node whose data input and weight are both
            // quantized becomes int32 codes at scale s_x · s_w[c], as onnxruntime's quantizer
            // writes it (and as onnxruntime rewrites an f32 bias itself otherwise).
            let x_scale = node.inputs.first().and_then(|x| act_scale.get(x));
            let w_scales = t.weight.and_then(|(_, w, _)| weight_scales.get(&w));
            if let (Some(&sx), Some(sw), Some(&b)) = (x_scale, w_scales, node.inputs.get(2)) {
                let key = (b, sx.to_bits(), sw.iter().map(|s| s.to_bits()).collect::<Vec<_>>());
                if let Some(&d) = bias_dq.get(&key) {
                    inputs[2] = d;
                } else if matches!(node.op, shrink_graph::Op::Conv(_) | shrink_graph::Op::Gemm(_))
                    && !bias_dq.keys().any(|(v, _, _)| *v == b)
                {
                    // (A bias shared by nodes of other scales stays f32 after its first use.)
                    if let Some(d) = quantize_bias(graph, &mut out, b, sx, sw)? {
                        bias_dq.insert(key, d);
                        inputs[2] = d;
                    }
                }
            }
        }
        let names: Vec<String> = node.outputs.iter().map(|&o| graph.values[o].name.clone()).collect();
        let outs = out.add_node(&node.name, node.op.clone(), &inputs, &names).map_err(gerr)?;
        for (&o, n) in node.outputs.iter().zip(outs) {
            map.insert(o, n);
        }
    }
    let outputs =
        graph.outputs.iter().map(|&o| value(graph, &mut out, &mut map, o)).collect::<Result<Vec<_>, _>>()?;
    out.set_outputs(outputs);
    // The f32 weights now read only through their codes are dropped.
    out.remove_dead();
    out.check().map_err(gerr)?;
    Ok(out)
}

/// The new id of old value `v`, adding it first when it is a constant not yet copied.
fn value(
    graph: &Graph,
    out: &mut Graph,
    map: &mut HashMap<ValueId, ValueId>,
    v: ValueId,
) -> Result<ValueId, QdqError> {
    if let Some(&n) = map.get(&v) {
        return Ok(n);
    }
    let val = &graph.values[v];
    match &val.def {
        ValueDef::Const(t) => {
            let n =
                out.add_const(&val.name, t.as_ref().clone()).map_err(|e| QdqError::Graph(e.to_string()))?;
            map.insert(v, n);
            Ok(n)
        }
        _ => Err(QdqError::Graph(format!("value `{}` is read before it is defined", val.name))),
    }
}

/// int8 codes (`bits` wide, named `{w}{codes_suffix}`) + scale + zero point of weight `w`, and
/// their DequantizeLinear; returns its output.
pub(super) fn quantize_weight(
    graph: &Graph,
    out: &mut Graph,
    w: ValueId,
    axis: usize,
    bits: u32,
    codes_suffix: &str,
) -> Result<ValueId, QdqError> {
    Ok(quantize_weight_scales(graph, out, w, axis, bits, codes_suffix)?.0)
}

/// Int32 codes `round(b[c] / (sx · sw[c]))` of the f32 constant bias `b` (one per output channel;
/// `sw` per channel or one for all) and their DequantizeLinear; `None` (the bias stays f32) when
/// `b` is not such a constant or a code would not fit in i32 (a channel of near-zero weights).
fn quantize_bias(
    graph: &Graph,
    out: &mut Graph,
    b: ValueId,
    sx: f32,
    sw: &[f32],
) -> Result<Option<ValueId>, QdqError> {
    let gerr = |e: shrink_graph::GraphError| QdqError::Graph(e.to_string());
    let Some(t) = graph.const_value(b) else { return Ok(None) };
    let Some(data) = t.as_f32() else { return Ok(None) };
    if t.shape.len() != 1 || !(sw.len() == data.len() || sw.len() == 1) {
        return Ok(None);
    }
    let scales: Vec<f32> = (0..data.len()).map(|c| sx * sw[if sw.len() == 1 { 0 } else { c }]).collect();
    let mut codes = Vec::with_capacity(data.len());
    for (&v, &s) in data.iter().zip(&scales) {
        let q = round_ties_even(v / s);
        if !(s.is_normal() && q.is_finite() && q.abs() < i32::MAX as f32) {
            return Ok(None);
        }
        codes.push(q as i32);
    }
    let name = &graph.values[b].name;
    let c = data.len();
    let q = out.add_const(&format!("{name}_quantized"), Tensor::i32(vec![c], codes)).map_err(gerr)?;
    let s = out.add_const(&format!("{name}_scale"), Tensor::f32(vec![c], scales)).map_err(gerr)?;
    // No zero point input: 0, its default.
    let d = out
        .add_node(
            &format!("{name}_DequantizeLinear"),
            DequantizeLinear { axis: 0 },
            &[q, s],
            &[format!("{name}_dequantized")],
        )
        .map_err(gerr)?;
    Ok(Some(d[0]))
}

/// [`quantize_weight`], also returning the per-channel scales.
fn quantize_weight_scales(
    graph: &Graph,
    out: &mut Graph,
    w: ValueId,
    axis: usize,
    bits: u32,
    codes_suffix: &str,
) -> Result<(ValueId, Vec<f32>), QdqError> {
    let gerr = |e: shrink_graph::GraphError| QdqError::Graph(e.to_string());
    let name = &graph.values[w].name;
    let t =
        graph.const_value(w).ok_or_else(|| QdqError::Graph(format!("weight `{name}` is not a constant")))?;
    let data = t.as_f32().ok_or_else(|| QdqError::Graph(format!("weight `{name}` is not f32")))?;
    let (scales, codes) = weight_params(data, &t.shape, axis, bits);
    let c = scales.len();
    let q =
        out.add_const(&format!("{name}{codes_suffix}"), Tensor::i8(t.shape.clone(), codes)).map_err(gerr)?;
    let s = out.add_const(&format!("{name}_scale"), Tensor::f32(vec![c], scales.clone())).map_err(gerr)?;
    let z = out.add_const(&format!("{name}_zero_point"), Tensor::i8(vec![c], vec![0; c])).map_err(gerr)?;
    let d = out
        .add_node(
            &format!("{name}_DequantizeLinear"),
            DequantizeLinear { axis: axis as i64 },
            &[q, s, z],
            &[format!("{name}_dequantized")],
        )
        .map_err(gerr)?;
    Ok((d[0], scales))
}

/// QuantizeLinear → DequantizeLinear of activation `x` (new id) named `name`; returns the output
/// and the scale.
fn fake_quantize(
    out: &mut Graph,
    x: ValueId,
    name: &str,
    lo: f32,
    hi: f32,
    bits: u32,
) -> Result<(ValueId, f32), QdqError> {
    let gerr = |e: shrink_graph::GraphError| QdqError::Graph(e.to_string());
    let (scale, zp) = activation_params(lo, hi, bits);
    let s = out.add_const(&format!("{name}_scale"), Tensor::f32(vec![], vec![scale])).map_err(gerr)?;
    let z = out.add_const(&format!("{name}_zero_point"), Tensor::u8(vec![], vec![zp])).map_err(gerr)?;
    let q = out
        .add_node(
            &format!("{name}_QuantizeLinear"),
            QuantizeLinear { axis: 1, dtype: DType::U8 },
            &[x, s, z],
            &[format!("{name}_quantized")],
        )
        .map_err(gerr)?;
    let d = out
        .add_node(
            &format!("{name}_DequantizeLinear"),
            DequantizeLinear { axis: 1 },
            &[q[0], s, z],
            &[format!("{name}_dequantized")],
        )
        .map_err(gerr)?;
    Ok((d[0], scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_codes_are_symmetric_narrow_range_per_channel() {
        // Two channels along axis 0: max |w| 2.54 and 0 (all zero: scale 1, codes 0).
        let w = [2.54, -1.27, 0.01, 0.0, 0.0, 0.0];
        let (s, q) = weight_params(&w, &[2, 3], 0, 8);
        assert_eq!(s, vec![2.54 / 127.0, 1.0]);
        assert_eq!(q, vec![127, -64, 0, 0, 0, 0]);
        // 2 bits: codes -1..=1; a [1, 3] weight along axis 0 is one channel (scale max|w| = 1).
        let (s, q) = weight_params(&[-1.0, 0.5, 0.25], &[1, 3], 0, 2);
        assert_eq!(s, vec![1.0]);
        assert_eq!(q, vec![-1, 0, 0]);
    }

    #[test]
    fn bias_codes_are_int32_at_the_product_of_scales_or_stay_f32_when_they_overflow() {
        let mut g = Graph::new();
        let b = g.add_const("b", Tensor::f32(vec![3], vec![1.0, -0.25, 2.5])).unwrap();
        let mut out = Graph::new();
        let d = quantize_bias(&g, &mut out, b, 0.5, &[0.01, 0.1, 1.0]).unwrap().unwrap();
        let ValueDef::Node { node, .. } = out.values[d].def else { panic!("not a node") };
        let codes = out.const_value(out.nodes[node].inputs[0]).unwrap();
        // 1 / 0.005 = 200, -0.25 / 0.05 = -5, 2.5 / 0.5 = 5 (ties to even elsewhere).
        assert_eq!(codes.as_i32().unwrap(), &[200, -5, 5]);
        // A channel scale of 1e-12 puts the code past i32: the bias stays f32.
        let mut out = Graph::new();
        assert!(quantize_bias(&g, &mut out, b, 0.5, &[0.01, 1e-12, 1.0]).unwrap().is_none());
        assert!(out.nodes.is_empty());
    }

    #[test]
    fn activation_range_includes_zero() {
        let (s, z) = activation_params(0.5, 2.55, 8);
        assert_eq!((s, z), (2.55 / 255.0, 0));
        let (s, z) = activation_params(-1.0, 1.0, 8);
        assert_eq!(s, 2.0 / 255.0);
        assert!((127..=128).contains(&z), "{z}");
        assert_eq!(activation_params(0.0, 0.0, 8), (1.0, 0));
    }
}

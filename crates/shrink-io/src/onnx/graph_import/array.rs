//! ONNX ops of the `array` family → IR ops: shape ops (Reshape, Flatten, Transpose, Squeeze,
//! Unsqueeze, Expand, Shape), combining and indexing (Concat, Split, Slice, Pad, Gather),
//! pass-throughs (Identity, Dropout) and constant producers folded at import (Constant,
//! ConstantOfShape, Range), plus Cast.
//!
//! Shape computations (`x.view(x.size(0), -1)` exports Shape → Gather → Unsqueeze → Concat →
//! Reshape) are followed through [`Ctx::sym_ints`]: every op here that moves the elements of a
//! 1-D integer value records the moved elements, so a symbolic batch `N` reaches Reshape and
//! Expand as `Dim::Sym("N")`. The real nodes are added too (they are dropped when unused).

use super::ctx::{attr, attr_f, attr_i, attr_ints, attr_s, attr_t};
use super::{Ctx, ImportFn, SymInt, R};
use crate::onnx::decode::NodeProto;
use shrink_graph::ops::binary::Cast;
use shrink_graph::ops::combine::{slice_axis, Concat, Gather, Pad, PadMode, Slice, Split};
use shrink_graph::ops::shape::{
    resolve_reshape, Expand, Flatten, Reshape, Shape, ShapeSpec, Squeeze, Transpose, Unsqueeze,
};
use shrink_graph::{DType, Dim, Tensor, ValueId};

/// The mapping of `op_type`, if this family has it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    Some(match op_type {
        "Reshape" => reshape,
        "Flatten" => flatten,
        "Transpose" => transpose,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Expand" => expand,
        "Shape" => shape,
        "Concat" => concat,
        "Split" => split,
        "Slice" => slice,
        "Pad" => pad,
        "Gather" => gather,
        "Identity" => identity,
        "Dropout" => dropout,
        "Constant" => constant,
        "ConstantOfShape" => constant_of_shape,
        "Range" => range,
        "Cast" => cast,
        _ => return None,
    })
}

/// The first output's name (a node without one is malformed).
fn out0<'n>(node: &'n NodeProto) -> R<&'n str> {
    match node.outputs.first() {
        Some(o) if !o.is_empty() => Ok(o),
        _ => Err("the node has no output".into()),
    }
}

/// Most elements a constant made at import (ConstantOfShape, Range, a Dropout mask) may have.
const MAX_CONST_ELEMS: usize = 1 << 28;

/// Element count of a constant made at import, checked against [`MAX_CONST_ELEMS`].
fn const_len(shape: &[usize]) -> R<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_CONST_ELEMS)
        .ok_or_else(|| format!("a constant of shape {shape:?} is too large"))
}

/// Input `k` as shape elements: a constant, or a value computed from shapes.
fn shape_input(ctx: &Ctx, node: &NodeProto, k: usize) -> R<Option<(ValueId, Vec<SymInt>)>> {
    let Some(id) = ctx.input(node, k)? else { return Ok(None) };
    match ctx.sym_ints(id) {
        Some(v) => Ok(Some((id, v))),
        None => Err(format!(
            "input {k} (`{}`) must be a constant or computed from shapes",
            ctx.graph.values[id].name
        )),
    }
}

/// Record the elements of a 1-D integer output computed from an input's elements (no-op for a
/// folded constant, whose elements are known anyway).
fn propagate(ctx: &mut Ctx, out: ValueId, v: Option<Vec<SymInt>>) {
    if let Some(v) = v {
        if ctx.const_of(out).is_none() && ctx.fact(out).rank() <= 1 {
            ctx.set_sym_ints(out, v);
        }
    }
}

/// The symbolic elements of input `k` when it has some recorded (not a constant).
fn sym_of(ctx: &Ctx, node: &NodeProto, k: usize) -> Option<Vec<SymInt>> {
    let id = ctx.input(node, k).ok()??;
    if ctx.const_of(id).is_some() {
        return None;
    }
    ctx.sym_ints(id)
}

/// Axes from the `axes` attribute before opset 13, from input 1 from 13 on.
fn axes_attr_or_input(ctx: &Ctx, node: &NodeProto) -> R<Option<Vec<i64>>> {
    if ctx.opset < 13 {
        Ok(attr_ints(node, "axes"))
    } else {
        ctx.const_ints(node, 1)
    }
}

fn reshape(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let (_, target) = shape_input(ctx, node, 1)?.ok_or("input 1 (shape) is missing")?;
    let allowzero = attr_i(node, "allowzero").unwrap_or(0) != 0;
    let spec = target
        .iter()
        .map(|e| match e {
            SymInt::Int(0) if !allowzero => Ok(ShapeSpec::Copy),
            SymInt::Int(-1) => Ok(ShapeSpec::Infer),
            SymInt::Int(v) if *v >= 0 => Ok(ShapeSpec::Dim(Dim::Fixed(*v as usize))),
            SymInt::Int(v) => Err(format!("shape element {v} is invalid")),
            SymInt::Sym(s) => Ok(ShapeSpec::Dim(Dim::Sym(s.clone()))),
        })
        .collect::<R<Vec<_>>>()?;
    let shape = resolve_reshape(&ctx.fact(x).shape, &spec).map_err(|e| e.to_string())?;
    let sym = sym_of(ctx, node, 0);
    let out = ctx.add(node, Reshape { shape }, &[x])?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn flatten(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    ctx.add(node, Flatten { axis: attr_i(node, "axis").unwrap_or(1) }, &[x])?;
    Ok(())
}

fn transpose(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let rank = ctx.fact(x).rank();
    let perm = match attr_ints(node, "perm") {
        Some(p) => p
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| format!("attribute `perm`: {v} is negative")))
            .collect::<R<Vec<_>>>()?,
        None => (0..rank).rev().collect(),
    };
    ctx.add(node, Transpose { perm }, &[x])?;
    Ok(())
}

fn squeeze(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let axes = match axes_attr_or_input(ctx, node)? {
        Some(a) if !a.is_empty() => a,
        // No axes: every axis of size 1, listed explicitly so a batch that happens to be 1 at
        // run time is not squeezed.
        _ => {
            let ones: Vec<i64> = (0..ctx.fact(x).rank())
                .filter(|&k| ctx.fact(x).shape[k] == Dim::Fixed(1))
                .map(|k| k as i64)
                .collect();
            if ones.is_empty() {
                ctx.alias(out0(node)?, x);
                return Ok(());
            }
            ones
        }
    };
    let sym = sym_of(ctx, node, 0);
    let out = ctx.add(node, Squeeze { axes }, &[x])?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn unsqueeze(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let axes = axes_attr_or_input(ctx, node)?.ok_or("the axes are missing")?;
    let sym = sym_of(ctx, node, 0);
    let out = ctx.add(node, Unsqueeze { axes }, &[x])?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn expand(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let (sid, target) = shape_input(ctx, node, 1)?.ok_or("input 1 (shape) is missing")?;
    let shape = target
        .iter()
        .map(|e| match e {
            SymInt::Int(v) if *v >= 0 => Ok(Dim::Fixed(*v as usize)),
            SymInt::Int(v) => Err(format!("shape element {v} is negative")),
            SymInt::Sym(s) => Ok(Dim::Sym(s.clone())),
        })
        .collect::<R<Vec<_>>>()?;
    // A symbolic target keeps its runtime shape value as an input, so a constant `x` is not
    // folded before the symbols are known.
    if shape.iter().all(|d| d.fixed().is_some()) {
        ctx.add(node, Expand { shape }, &[x])?;
    } else {
        ctx.add(node, Expand { shape }, &[x, sid])?;
    }
    Ok(())
}

fn shape(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let op = Shape { start: attr_i(node, "start").unwrap_or(0), end: attr_i(node, "end") };
    let dims = ctx.fact(x).shape[op.range(ctx.fact(x).rank())].to_vec();
    if dims.iter().all(|d| d.fixed().is_some()) {
        let v: Vec<i64> = dims.iter().map(|d| d.fixed().unwrap_or(0) as i64).collect();
        let id = ctx.add_const(out0(node)?, Tensor::i64(vec![v.len()], v))?;
        ctx.alias(out0(node)?, id);
        return Ok(());
    }
    let out = ctx.add(node, op, &[x])?;
    let sym = dims
        .into_iter()
        .map(|d| match d {
            Dim::Fixed(n) => SymInt::Int(n as i64),
            Dim::Sym(s) => SymInt::Sym(s),
        })
        .collect();
    ctx.set_sym_ints(out[0], sym);
    Ok(())
}

fn concat(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let axis = attr_i(node, "axis").ok_or("attribute `axis` is missing")?;
    let mut ins = Vec::new();
    for k in 0..node.inputs.len() {
        if let Some(id) = ctx.input(node, k)? {
            ins.push(id);
        }
    }
    let sym: Option<Vec<SymInt>> = if ins.iter().any(|&v| ctx.const_of(v).is_none()) {
        ins.iter().map(|&v| ctx.sym_ints(v)).collect::<Option<Vec<_>>>().map(|v| v.concat())
    } else {
        None
    };
    let out = ctx.add(node, Concat { axis }, &ins)?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn split(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let axis = attr_i(node, "axis").unwrap_or(0);
    let f = ctx.fact(x).clone();
    let a = f.axis(axis).map_err(|e| format!("attribute `axis`: {e}"))?;
    let given = if ctx.opset < 13 { attr_ints(node, "split") } else { ctx.const_ints(node, 1)? };
    let n_out = node.outputs.len();
    let sizes: Vec<usize> = match given {
        Some(s) if !s.is_empty() => s
            .into_iter()
            .map(|v| usize::try_from(v).map_err(|_| format!("split size {v} is negative")))
            .collect::<R<_>>()?,
        _ => {
            let d = f.shape[a].to_usize().map_err(|e| e.to_string())?;
            match attr_i(node, "num_outputs") {
                Some(n) if n < 1 => return Err(format!("attribute `num_outputs`: {n} is not positive")),
                Some(n) => {
                    // Opset 18: chunks of ceil(d / n), the last one smaller.
                    let n = n as usize;
                    let chunk = d.div_ceil(n);
                    (0..n).map(|k| chunk.min(d.saturating_sub(k * chunk))).collect()
                }
                None => {
                    if n_out == 0 || d % n_out != 0 {
                        return Err(format!("axis {a} of size {d} cannot be split into {n_out} equal parts"));
                    }
                    vec![d / n_out; n_out]
                }
            }
        }
    };
    if sizes.len() != n_out {
        return Err(format!("{} split sizes for {n_out} outputs", sizes.len()));
    }
    ctx.add(node, Split { axis, sizes }, &[x])?;
    Ok(())
}

fn slice(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        (
            attr_ints(node, "starts").ok_or("attribute `starts` is missing")?,
            attr_ints(node, "ends").ok_or("attribute `ends` is missing")?,
            attr_ints(node, "axes").unwrap_or_default(),
            Vec::new(),
        )
    } else {
        (
            ctx.const_ints(node, 1)?.ok_or("input 1 (starts) is missing")?,
            ctx.const_ints(node, 2)?.ok_or("input 2 (ends) is missing")?,
            ctx.const_ints(node, 3)?.unwrap_or_default(),
            ctx.const_ints(node, 4)?.unwrap_or_default(),
        )
    };
    // A 1-D shape value sliced along its only axis keeps its symbolic elements.
    let sym = sym_of(ctx, node, 0).and_then(|v| {
        let one_axis = starts.len() == 1 && axes.iter().all(|&a| a == 0 || a == -1);
        let step = steps.first().copied().unwrap_or(1);
        (one_axis && step != 0 && ctx.fact(x).rank() == 1).then(|| {
            let (s, n) = slice_axis(v.len(), starts[0], ends[0], step);
            (0..n as i64).map(|i| v[(s as i64 + i * step) as usize].clone()).collect()
        })
    });
    let out = ctx.add(node, Slice { starts, ends, axes, steps }, &[x])?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn pad(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let rank = ctx.fact(x).rank();
    let mode = match attr_s(node, "mode").as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        m => {
            return Err(format!("attribute `mode`: `{m}` is not supported (constant, reflect and edge are)"))
        }
    };
    let (pads, value) = if ctx.opset < 11 {
        (attr_ints(node, "pads").ok_or("attribute `pads` is missing")?, attr_f(node, "value").unwrap_or(0.0))
    } else {
        let pads = ctx.const_ints(node, 1)?.ok_or("input 1 (pads) is missing")?;
        let value = match ctx.const_floats(node, 2)? {
            None => 0.0,
            Some(v) if v.len() == 1 => v[0],
            Some(v) => return Err(format!("constant_value has {} elements, expected 1", v.len())),
        };
        let pads = match ctx.const_ints(node, 3)? {
            None => pads,
            Some(axes) => {
                // Opset 18: pads for the listed axes only.
                if pads.len() != 2 * axes.len() {
                    return Err(format!("{} pads for {} axes", pads.len(), axes.len()));
                }
                let mut full = vec![0; 2 * rank];
                for (k, &a) in axes.iter().enumerate() {
                    let a = ctx.fact(x).axis(a).map_err(|e| format!("input 3 (axes): {e}"))?;
                    full[a] = pads[k];
                    full[a + rank] = pads[k + axes.len()];
                }
                full
            }
        };
        (pads, value)
    };
    ctx.add(node, Pad { pads, mode, value }, &[x])?;
    Ok(())
}

fn gather(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let data = ctx.req(node, 0)?;
    let idx = ctx.req(node, 1)?;
    let axis = attr_i(node, "axis").unwrap_or(0);
    let sym = sym_of(ctx, node, 0).and_then(|v| {
        let ids = ctx.const_of(idx)?.to_i64_vec();
        let n = v.len() as i64;
        ids.iter()
            .map(|&i| v.get((if i < 0 { i + n } else { i }) as usize).cloned())
            .collect::<Option<Vec<_>>>()
    });
    let out = ctx.add(node, Gather { axis }, &[data, idx])?;
    propagate(ctx, out[0], sym);
    Ok(())
}

fn identity(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    ctx.alias(out0(node)?, x);
    Ok(())
}

fn dropout(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    if ctx.opset >= 12 {
        if let Some(id) = ctx.input(node, 2)? {
            let training = ctx
                .const_of(id)
                .ok_or("input 2 (training_mode) must be a constant")?
                .to_i64_vec()
                .iter()
                .any(|&v| v != 0);
            if training {
                return Err("training_mode is true: only inference Dropout is supported".into());
            }
        }
    }
    ctx.alias(out0(node)?, x);
    if let Some(mask) = node.outputs.get(1).filter(|m| !m.is_empty()) {
        let shape = ctx.fact(x).fixed_shape().map_err(|e| format!("the mask output: {e}"))?;
        let n = const_len(&shape)?;
        let id = ctx.add_const(mask, Tensor::bool(shape, vec![true; n]))?;
        ctx.alias(mask, id);
    }
    Ok(())
}

fn constant(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let t = if let Some(t) = attr_t(node, "value")? {
        t
    } else if let Some(v) = attr_f(node, "value_float") {
        Tensor::f32(vec![], vec![v])
    } else if let Some(a) = attr(node, "value_floats") {
        Tensor::f32(vec![a.floats.len()], a.floats.clone())
    } else if let Some(v) = attr_i(node, "value_int") {
        Tensor::i64(vec![], vec![v])
    } else if let Some(a) = attr(node, "value_ints") {
        Tensor::i64(vec![a.ints.len()], a.ints.clone())
    } else {
        let name = node.attributes.first().map(|a| a.name.as_str()).unwrap_or("(none)");
        return Err(format!("attribute `{name}` is not supported (value, value_float(s), value_int(s) are)"));
    };
    let id = ctx.add_const(out0(node)?, t)?;
    ctx.alias(out0(node)?, id);
    Ok(())
}

fn constant_of_shape(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let (_, dims) = shape_input(ctx, node, 0)?.ok_or("input 0 (shape) is missing")?;
    let shape = dims
        .iter()
        .map(|d| match d {
            SymInt::Int(v) if *v >= 0 => Ok(*v as usize),
            SymInt::Int(v) => Err(format!("shape element {v} is negative")),
            SymInt::Sym(s) => {
                Err(format!("the shape depends on symbolic dimension `{s}`: it must be constant"))
            }
        })
        .collect::<R<Vec<usize>>>()?;
    let n = const_len(&shape)?;
    let value = attr_t(node, "value")?.unwrap_or_else(|| Tensor::f32(vec![1], vec![0.0]));
    if value.len() != 1 {
        return Err(format!("attribute `value` has {} elements, expected 1", value.len()));
    }
    let t = match value.dtype() {
        DType::F32 => Tensor::f32(shape, vec![value.to_f32_vec()[0]; n]),
        DType::I64 => Tensor::i64(shape, vec![value.to_i64_vec()[0]; n]),
        d => Tensor::from_i64s(d, shape, &vec![value.to_i64_vec()[0]; n]),
    };
    let id = ctx.add_const(out0(node)?, t)?;
    ctx.alias(out0(node)?, id);
    Ok(())
}

fn range(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let mut vals = Vec::new();
    for k in 0..3 {
        let id = ctx.req(node, k)?;
        let t = ctx.const_of(id).ok_or_else(|| format!("input {k} must be a constant"))?;
        if t.len() != 1 {
            return Err(format!("input {k} must be a scalar, got shape {:?}", t.shape));
        }
        vals.push(t.clone());
    }
    let t = if vals[0].dtype() == DType::F32 {
        let [s, l, d] = [0, 1, 2].map(|k| vals[k].to_f32_vec()[0]);
        if d == 0.0 || !(s.is_finite() && l.is_finite() && d.is_finite()) {
            return Err("start, limit and delta must be finite and delta non-zero".into());
        }
        // As onnxruntime: the count in f32, the values by repeated addition.
        let n = ((l - s) / d).ceil().clamp(0.0, MAX_CONST_ELEMS as f32 + 1.0) as usize;
        const_len(&[n])?;
        Tensor::f32(vec![n], std::iter::successors(Some(s), |v| Some(v + d)).take(n).collect())
    } else {
        let [s, l, d] = [0, 1, 2].map(|k| vals[k].to_i64_vec()[0]);
        if d == 0 {
            return Err("delta is 0".into());
        }
        let (s, l, d) = (s as i128, l as i128, d as i128);
        let n =
            if (d > 0 && l > s) || (d < 0 && l < s) { ((l - s).abs() + d.abs() - 1) / d.abs() } else { 0 };
        let n = const_len(&[usize::try_from(n).unwrap_or(usize::MAX)])?;
        Tensor::i64(vec![n], (0..n as i128).map(|i| (s + i * d) as i64).collect())
    };
    let id = ctx.add_const(out0(node)?, t)?;
    ctx.alias(out0(node)?, id);
    Ok(())
}

/// ONNX `TensorProto.DataType` → IR dtype.
fn onnx_dtype(to: i64) -> R<DType> {
    match to {
        1 | 10 | 11 | 16 => Ok(DType::F32),
        2..=7 | 12 | 13 => Ok(DType::I64),
        9 => Ok(DType::Bool),
        t => Err(format!("attribute `to`: element type {t} is not supported")),
    }
}

fn cast(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let code = attr_i(node, "to").ok_or("attribute `to` is missing")?;
    let to = onnx_dtype(code)?;
    let from = ctx.fact(x).dtype;
    // Casts that change nothing in the IR: f32 to float/double, i64 to int64, bool to bool,
    // and shape values (small integers) to any integer type.
    let shape_value = from == DType::I64 && to == DType::I64 && ctx.sym_ints(x).is_some();
    let lossless = matches!((from, code), (DType::F32, 1 | 11) | (DType::I64, 7) | (DType::Bool, 9));
    if lossless || shape_value {
        ctx.alias(out0(node)?, x);
        return Ok(());
    }
    ctx.add(node, Cast { to }, &[x])?;
    Ok(())
}

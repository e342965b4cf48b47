//! ONNX ops of the `nn` family → IR ops: Conv, ConvTranspose, Gemm, MatMul,
//! BatchNormalization, LayerNormalization, GroupNormalization, InstanceNormalization, MaxPool,
//! AveragePool, GlobalAveragePool, GlobalMaxPool, Resize (nearest) and Upsample (nearest).
//!
//! Outputs beyond the first that only training uses (BatchNormalization's running statistics,
//! LayerNormalization's mean and inverse deviation, MaxPool's indices) are not defined: a model
//! that reads one fails on the reader with "input `…` is not defined".

use super::ctx::{attr_f, attr_floats, attr_i, attr_ints, attr_s};
use super::{Ctx, ImportFn, R};
use crate::onnx::decode::NodeProto;
use shrink_graph::ops::conv::{Conv, ConvTranspose};
use shrink_graph::ops::matmul::{Gemm, MatMul};
use shrink_graph::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use shrink_graph::ops::pool::{CoordMode, GlobalPool, NearestMode, Pool, PoolKind, Resize};
use shrink_graph::{Dim, Tensor, ValueId};

/// The mapping of `op_type`, if this family has it.
pub fn lookup(op_type: &str) -> Option<ImportFn> {
    Some(match op_type {
        "Conv" => conv,
        "ConvTranspose" => conv_transpose,
        "Gemm" => gemm,
        "MatMul" => matmul,
        "BatchNormalization" => batch_norm,
        "LayerNormalization" => layer_norm,
        "GroupNormalization" => group_norm,
        "InstanceNormalization" => instance_norm,
        "MaxPool" => max_pool,
        "AveragePool" => average_pool,
        "GlobalAveragePool" => global_average_pool,
        "GlobalMaxPool" => global_max_pool,
        "Resize" => resize,
        "Upsample" => upsample,
        _ => return None,
    })
}

/// A per-spatial-axis integer attribute (`n` entries, `default` each when absent), ≥ `min`.
fn spatial(node: &NodeProto, name: &str, n: usize, default: usize, min: i64) -> R<Vec<usize>> {
    match attr_ints(node, name) {
        None => Ok(vec![default; n]),
        Some(v) if v.len() != n => Err(format!("attribute `{name}` {v:?} needs {n} entries")),
        Some(v) if v.iter().any(|&x| x < min || x > 1 << 24) => {
            Err(format!("attribute `{name}` {v:?} must be at least {min}"))
        }
        Some(v) => Ok(v.into_iter().map(|x| x as usize).collect()),
    }
}

/// The fixed spatial sizes of input `x` (axes 2..).
fn spatial_sizes(ctx: &Ctx, x: ValueId) -> R<Vec<usize>> {
    let f = ctx.fact(x);
    if f.rank() < 3 {
        return Err(format!("input x {f} must be (N, C, spatial…)"));
    }
    f.shape[2..]
        .iter()
        .map(|d| d.fixed().ok_or_else(|| format!("auto_pad needs fixed spatial sizes, x is {f}")))
        .collect()
}

/// Explicit pads from `pads`/`auto_pad` for a windowed op over the spatial axes of `x`
/// (`kernel` undilated sizes). SAME_UPPER/SAME_LOWER keep `ceil(in / stride)` outputs and put
/// the odd pad at the end/beginning.
fn window_pads(
    ctx: &Ctx,
    node: &NodeProto,
    x: ValueId,
    kernel: &[usize],
    strides: &[usize],
    dil: &[usize],
) -> R<Vec<usize>> {
    let n = kernel.len();
    let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    match auto.as_str() {
        "NOTSET" => spatial(node, "pads", 2 * n, 0, 0),
        "VALID" => Ok(vec![0; 2 * n]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let sizes = spatial_sizes(ctx, x)?;
            let mut pads = vec![0; 2 * n];
            for a in 0..n {
                let out = sizes[a].div_ceil(strides[a]);
                let span = dil[a] * (kernel[a].max(1) - 1) + 1;
                let total = ((out.max(1) - 1) * strides[a] + span).saturating_sub(sizes[a]);
                let small = total / 2;
                let (b, e) =
                    if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[a] = b;
                pads[n + a] = e;
            }
            Ok(pads)
        }
        other => {
            Err(format!("auto_pad `{other}` is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER are)"))
        }
    }
}

/// Inputs `from..` of `node` that are present.
fn present(ctx: &Ctx, node: &NodeProto, from: usize, to: usize) -> R<Vec<ValueId>> {
    let mut v = Vec::new();
    for k in from..to {
        if let Some(id) = ctx.input(node, k)? {
            v.push(id);
        }
    }
    Ok(v)
}

/// The weight's fixed shape (input 1).
fn weight_shape(ctx: &Ctx, node: &NodeProto, rank: usize) -> R<(ValueId, Vec<usize>)> {
    let w = ctx.req(node, 1)?;
    let f = ctx.fact(w);
    let shape = f.fixed_shape().map_err(|e| format!("weight {f}: {e}"))?;
    if shape.len() != rank || rank < 3 {
        return Err(format!("weight {f} must have the rank of x ({rank}), at least 3"));
    }
    Ok((w, shape))
}

/// `kernel_shape` when given must match the weight's spatial sizes.
fn check_kernel_attr(node: &NodeProto, kernel: &[usize]) -> R<()> {
    if let Some(k) = attr_ints(node, "kernel_shape") {
        if k.iter().map(|&v| v as usize).ne(kernel.iter().copied()) {
            return Err(format!("attribute `kernel_shape` {k:?} differs from the weight's {kernel:?}"));
        }
    }
    Ok(())
}

fn group(node: &NodeProto) -> R<usize> {
    match attr_i(node, "group").unwrap_or(1) {
        g if (1..=1 << 24).contains(&g) => Ok(g as usize),
        g => Err(format!("attribute `group` {g} must be at least 1")),
    }
}

fn conv(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let rank = ctx.fact(x).rank();
    let (w, ws) = weight_shape(ctx, node, rank)?;
    let n = rank - 2;
    let kernel = &ws[2..];
    check_kernel_attr(node, kernel)?;
    let strides = spatial(node, "strides", n, 1, 1)?;
    let dilations = spatial(node, "dilations", n, 1, 1)?;
    let pads = window_pads(ctx, node, x, kernel, &strides, &dilations)?;
    let op = Conv { strides, pads, dilations, groups: group(node)? };
    let mut inputs = vec![x, w];
    inputs.extend(present(ctx, node, 2, 3)?);
    ctx.add(node, op, &inputs)?;
    Ok(())
}

fn conv_transpose(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let rank = ctx.fact(x).rank();
    let (w, ws) = weight_shape(ctx, node, rank)?;
    let n = rank - 2;
    let kernel = ws[2..].to_vec();
    check_kernel_attr(node, &kernel)?;
    let strides = spatial(node, "strides", n, 1, 1)?;
    let dilations = spatial(node, "dilations", n, 1, 1)?;
    let output_padding = spatial(node, "output_padding", n, 0, 0)?;
    let auto = attr_s(node, "auto_pad").unwrap_or_else(|| "NOTSET".into());
    let target: Option<Vec<usize>> = match attr_ints(node, "output_shape") {
        Some(s) => {
            // Either the spatial sizes or the whole shape.
            let s = if s.len() == rank { s[2..].to_vec() } else { s };
            if s.len() != n || s.iter().any(|&v| v < 1) {
                return Err(format!("attribute `output_shape` {s:?} needs {n} positive spatial sizes"));
            }
            Some(s.into_iter().map(|v| v as usize).collect())
        }
        None if auto == "SAME_UPPER" || auto == "SAME_LOWER" => {
            Some(spatial_sizes(ctx, x)?.iter().zip(&strides).map(|(i, s)| i * s).collect())
        }
        None => None,
    };
    let pads = match target {
        None => match auto.as_str() {
            "NOTSET" => spatial(node, "pads", 2 * n, 0, 0)?,
            "VALID" => vec![0; 2 * n],
            other => {
                return Err(format!(
                    "auto_pad `{other}` is not supported (NOTSET, VALID, SAME_UPPER, SAME_LOWER are)"
                ))
            }
        },
        Some(target) => {
            let sizes = spatial_sizes(ctx, x)?;
            let mut pads = vec![0; 2 * n];
            for a in 0..n {
                let full = strides[a] * (sizes[a].max(1) - 1)
                    + output_padding[a]
                    + dilations[a] * (kernel[a].max(1) - 1)
                    + 1;
                if target[a] > full {
                    return Err(format!(
                        "output_shape {target:?} is larger than the transposed convolution reaches ({full} on spatial axis {a}); use output_padding"
                    ));
                }
                let total = full - target[a];
                let small = total / 2;
                // The odd pad goes at the end for SAME_UPPER, else at the beginning (ONNX spec,
                // and what onnxruntime does).
                let (b, e) =
                    if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                pads[a] = b;
                pads[n + a] = e;
            }
            pads
        }
    };
    let op = ConvTranspose { strides, pads, dilations, groups: group(node)?, output_padding };
    let mut inputs = vec![x, w];
    inputs.extend(present(ctx, node, 2, 3)?);
    ctx.add(node, op, &inputs)?;
    Ok(())
}

fn gemm(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let op = Gemm {
        alpha: attr_f(node, "alpha").unwrap_or(1.0),
        beta: attr_f(node, "beta").unwrap_or(1.0),
        trans_a: attr_i(node, "transA").unwrap_or(0) != 0,
        trans_b: attr_i(node, "transB").unwrap_or(0) != 0,
    };
    let mut inputs = vec![ctx.req(node, 0)?, ctx.req(node, 1)?];
    inputs.extend(present(ctx, node, 2, 3)?);
    ctx.add(node, op, &inputs)?;
    Ok(())
}

fn matmul(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let inputs = [ctx.req(node, 0)?, ctx.req(node, 1)?];
    ctx.add(node, MatMul {}, &inputs)?;
    Ok(())
}

fn epsilon(node: &NodeProto) -> f32 {
    attr_f(node, "epsilon").unwrap_or(1e-5)
}

fn batch_norm(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    if attr_i(node, "training_mode").unwrap_or(0) != 0 {
        return Err("training_mode=1 is not supported (inference only)".into());
    }
    if attr_i(node, "spatial").unwrap_or(1) == 0 {
        return Err("spatial=0 (per-activation statistics) is not supported".into());
    }
    let inputs: Vec<ValueId> = (0..5).map(|k| ctx.req(node, k)).collect::<R<_>>()?;
    // Only Y is defined; the training outputs (running and saved statistics) stay undefined.
    ctx.add(node, BatchNorm { epsilon: epsilon(node) }, &inputs)?;
    Ok(())
}

fn layer_norm(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let op = LayerNorm { axis: attr_i(node, "axis").unwrap_or(-1), epsilon: epsilon(node) };
    let mut inputs = vec![ctx.req(node, 0)?, ctx.req(node, 1)?];
    inputs.extend(present(ctx, node, 2, 3)?);
    ctx.add(node, op, &inputs)?;
    Ok(())
}

fn group_norm(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let groups = attr_i(node, "num_groups").ok_or("attribute `num_groups` is missing")?;
    if !(1..=1 << 24).contains(&groups) {
        return Err(format!("attribute `num_groups` {groups} must be at least 1"));
    }
    let groups = groups as usize;
    let x = ctx.req(node, 0)?;
    let c = ctx
        .fact(x)
        .shape
        .get(1)
        .and_then(Dim::fixed)
        .ok_or_else(|| format!("x {} needs a fixed channel axis 1", ctx.fact(x)))?;
    let mut inputs = vec![x];
    for k in 1..3 {
        let id = ctx.req(node, k)?;
        let f = ctx.fact(id).clone();
        // Opset 18 has one scale and bias per group; the IR stores one per channel.
        if f.shape == [Dim::Fixed(groups)] && groups != c {
            if ctx.opset >= 21 {
                return Err(format!(
                    "input {k} {f} must have one entry per channel ({c}) at opset {}",
                    ctx.opset
                ));
            }
            let v = ctx.const_floats(node, k)?.ok_or("missing")?;
            let per = c / groups.max(1);
            let expanded: Vec<f32> = v.iter().flat_map(|&s| std::iter::repeat_n(s, per)).collect();
            if expanded.len() != c {
                return Err(format!("num_groups {groups} does not divide the {c} channels"));
            }
            let base = format!("{}.per_channel", ctx.graph.values[id].name);
            inputs.push(ctx.add_const(&base, Tensor::f32(vec![c], expanded))?);
        } else {
            inputs.push(id);
        }
    }
    ctx.add(node, GroupNorm { groups, epsilon: epsilon(node) }, &inputs)?;
    Ok(())
}

fn instance_norm(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let inputs: Vec<ValueId> = (0..3).map(|k| ctx.req(node, k)).collect::<R<_>>()?;
    ctx.add(node, InstanceNorm { epsilon: epsilon(node) }, &inputs)?;
    Ok(())
}

fn pool(ctx: &mut Ctx, node: &NodeProto, kind: PoolKind) -> R<()> {
    let x = ctx.req(node, 0)?;
    let rank = ctx.fact(x).rank();
    if rank < 3 {
        return Err(format!("input x {} must be (N, C, spatial…)", ctx.fact(x)));
    }
    let n = rank - 2;
    let kernel = attr_ints(node, "kernel_shape").ok_or("attribute `kernel_shape` is missing")?;
    if kernel.len() != n {
        return Err(format!("attribute `kernel_shape` {kernel:?} needs {n} entries"));
    }
    let kernel = spatial(node, "kernel_shape", n, 1, 1)?;
    let strides = spatial(node, "strides", n, 1, 1)?;
    let dilations = spatial(node, "dilations", n, 1, 1)?;
    if kind == PoolKind::Max && attr_i(node, "storage_order").unwrap_or(0) != 0 {
        return Err("attribute `storage_order` 1 (column-major indices) is not supported".into());
    }
    let pads = window_pads(ctx, node, x, &kernel, &strides, &dilations)?;
    let op = Pool {
        kind,
        kernel,
        strides,
        pads,
        dilations,
        ceil_mode: attr_i(node, "ceil_mode").unwrap_or(0) != 0,
        count_include_pad: attr_i(node, "count_include_pad").unwrap_or(0) != 0,
    };
    // MaxPool's second output (indices) stays undefined.
    ctx.add(node, op, &[x])?;
    Ok(())
}

fn max_pool(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    pool(ctx, node, PoolKind::Max)
}

fn average_pool(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    pool(ctx, node, PoolKind::Avg)
}

fn global_average_pool(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    ctx.add(node, GlobalPool { kind: PoolKind::Avg }, &[x])?;
    Ok(())
}

fn global_max_pool(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    ctx.add(node, GlobalPool { kind: PoolKind::Max }, &[x])?;
    Ok(())
}

/// Only nearest-neighbour resampling is supported.
fn check_mode(node: &NodeProto) -> R<()> {
    match attr_s(node, "mode").unwrap_or_else(|| "nearest".into()).as_str() {
        "nearest" => Ok(()),
        other => Err(format!("mode `{other}` is not supported (only `nearest` is)")),
    }
}

fn coord_mode(node: &NodeProto) -> R<CoordMode> {
    Ok(match attr_s(node, "coordinate_transformation_mode").unwrap_or_else(|| "half_pixel".into()).as_str() {
        "half_pixel" => CoordMode::HalfPixel,
        "half_pixel_symmetric" => CoordMode::HalfPixelSymmetric,
        "pytorch_half_pixel" => CoordMode::PytorchHalfPixel,
        "align_corners" => CoordMode::AlignCorners,
        "asymmetric" => CoordMode::Asymmetric,
        "tf_half_pixel_for_nn" => CoordMode::TfHalfPixelForNn,
        other => return Err(format!("coordinate_transformation_mode `{other}` is not supported")),
    })
}

fn nearest_mode(node: &NodeProto) -> R<NearestMode> {
    Ok(match attr_s(node, "nearest_mode").unwrap_or_else(|| "round_prefer_floor".into()).as_str() {
        "round_prefer_floor" => NearestMode::RoundPreferFloor,
        "round_prefer_ceil" => NearestMode::RoundPreferCeil,
        "floor" => NearestMode::Floor,
        "ceil" => NearestMode::Ceil,
        other => return Err(format!("nearest_mode `{other}` is not supported")),
    })
}

/// Scales of a legacy Upsample / Resize-10: one positive float per axis.
fn legacy_resize(ctx: &mut Ctx, node: &NodeProto, x: ValueId, scales: Vec<f32>) -> R<()> {
    check_mode(node)?;
    let rank = ctx.fact(x).rank();
    if scales.len() != rank {
        return Err(format!("scales {scales:?} need {rank} entries (the rank of x)"));
    }
    let op = Resize { scales, sizes: None, coord: CoordMode::Asymmetric, nearest: NearestMode::Legacy };
    ctx.add(node, op, &[x])?;
    Ok(())
}

fn upsample(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    let scales = if ctx.opset >= 9 {
        ctx.const_floats(node, 1)?.ok_or("input 1 (scales) is missing")?
    } else {
        attr_floats(node, "scales").ok_or("attribute `scales` is missing")?
    };
    legacy_resize(ctx, node, x, scales)
}

/// Spread per-`axes` values over every axis of a rank-`rank` tensor (others get `fill`).
fn spread<T: Clone>(vals: Vec<T>, axes: &Option<Vec<usize>>, rank: usize, fill: T, what: &str) -> R<Vec<T>> {
    match axes {
        None if vals.len() == rank => Ok(vals),
        None => Err(format!("{what} has {} entries, x has rank {rank}", vals.len())),
        Some(ax) if ax.len() != vals.len() => {
            Err(format!("{what} has {} entries for {} axes", vals.len(), ax.len()))
        }
        Some(ax) => {
            let mut out = vec![fill; rank];
            for (&a, v) in ax.iter().zip(vals) {
                out[a] = v;
            }
            Ok(out)
        }
    }
}

fn resize(ctx: &mut Ctx, node: &NodeProto) -> R<()> {
    let x = ctx.req(node, 0)?;
    if ctx.opset < 11 {
        let scales = ctx.const_floats(node, 1)?.ok_or("input 1 (scales) is missing")?;
        return legacy_resize(ctx, node, x, scales);
    }
    check_mode(node)?;
    let coord = coord_mode(node)?;
    let nearest = nearest_mode(node)?;
    let xf = ctx.fact(x).clone();
    let rank = xf.rank();
    let axes = match attr_ints(node, "axes") {
        None => None,
        Some(a) => Some(
            a.iter()
                .map(|&v| {
                    shrink_graph::fact::normalize_axis(v, rank).map_err(|e| format!("attribute `axes`: {e}"))
                })
                .collect::<R<Vec<usize>>>()?,
        ),
    };
    let scales = ctx.const_floats(node, 2)?.filter(|s| !s.is_empty());
    let sizes = match ctx.input(node, 3)? {
        None => None,
        Some(id) => {
            let v = ctx.sym_ints(id).ok_or_else(|| {
                format!("input 3 (sizes `{}`) must be a constant", ctx.graph.values[id].name)
            })?;
            if v.is_empty() {
                None
            } else {
                Some(v)
            }
        }
    };
    let op = match (scales, sizes) {
        (Some(_), Some(_)) => return Err("scales and sizes are both given".into()),
        (None, None) => return Err("neither scales nor sizes is given".into()),
        (Some(s), None) => {
            Resize { scales: spread(s, &axes, rank, 1.0, "scales")?, sizes: None, coord, nearest }
        }
        (None, Some(s)) => {
            let dims: Vec<Dim> = s
                .iter()
                .map(|v| v.to_dim().ok_or_else(|| format!("sizes {s:?} must be positive")))
                .collect::<R<_>>()?;
            let full = spread(dims.into_iter().map(Some).collect(), &axes, rank, None, "sizes")?;
            let full: Vec<Dim> =
                full.into_iter().zip(&xf.shape).map(|(s, d)| s.unwrap_or_else(|| d.clone())).collect();
            let sized: Vec<usize> =
                (0..rank).filter(|&a| axes.as_ref().is_none_or(|ax| ax.contains(&a))).collect();
            resize_to_sizes(node, &xf.shape, full, &sized, coord, nearest)?
        }
    };
    ctx.add(node, op, &[x])?;
    Ok(())
}

/// Resize to `sizes`: each sized axis scales by `size / in` (`keep_aspect_ratio_policy` other
/// than `stretch` is refused: onnxruntime ignores it when `axes` is given, so no reference).
fn resize_to_sizes(
    node: &NodeProto,
    x: &[Dim],
    sizes: Vec<Dim>,
    sized: &[usize],
    coord: CoordMode,
    nearest: NearestMode,
) -> R<Resize> {
    let policy = attr_s(node, "keep_aspect_ratio_policy").unwrap_or_else(|| "stretch".into());
    if policy != "stretch" {
        return Err(format!("keep_aspect_ratio_policy `{policy}` is not supported (only `stretch` is)"));
    }
    let mut scales = vec![1f32; x.len()];
    for &a in sized {
        scales[a] = match (&sizes[a], &x[a]) {
            (Dim::Fixed(s), Dim::Fixed(i)) => *s as f32 / *i as f32,
            (s, i) if s == i => 1.0,
            (s, i) => return Err(format!("sizes entry {s} of axis {a} needs a fixed input size, x has {i}")),
        };
    }
    Ok(Resize { scales, sizes: Some(sizes), coord, nearest })
}

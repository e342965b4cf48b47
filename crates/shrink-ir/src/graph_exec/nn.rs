//! Candle lowering of the `nn` op family: convolutions, matrix products, normalizations,
//! pooling and nearest-neighbour resizing, all differentiable by candle's autograd.
//!
//! Every convolution (1-D to 3-D, groups, dilation, asymmetric pads, transposed) runs on
//! shrink's 2-D conv op [`crate::ops::conv2d`]: 1-D convolutions get a unit height, 3-D ones
//! sum one 2-D convolution per kernel depth, asymmetric pads are explicit zero pads, dilated
//! kernels get zeros inserted, and a transposed convolution is the convolution of the
//! zero-spread input with the flipped, regrouped kernel. Pools use shrink's 2-D pools where
//! their geometry fits and separable `index_select` windows otherwise.

use super::{Lower, LowerCtx};
use crate::error::{IrError, Result};
use candle_core::{Tensor, D};
use shrink_graph::ops::conv::{window_out, Conv, ConvTranspose};
use shrink_graph::ops::matmul::{Gemm, MatMul};
use shrink_graph::ops::norm::{BatchNorm, GroupNorm, InstanceNorm, LayerNorm};
use shrink_graph::ops::pool::{GlobalPool, Pool, PoolKind, Resize};
use shrink_graph::{Dim, OpDef};

fn invalid(msg: impl Into<String>) -> IrError {
    IrError::Invalid(msg.into())
}

/// Input `k`, or an error naming the op.
fn input<'a>(ins: &[&'a Tensor], k: usize, op: &str) -> Result<&'a Tensor> {
    ins.get(k).copied().ok_or_else(|| invalid(format!("{op}: input {k} is missing")))
}

/// Check that a per-spatial-axis attribute of `op` has `n` entries, none zero unless it is
/// a list of pads.
fn check_len(op: &str, name: &str, v: &[usize], n: usize) -> Result<()> {
    if v.len() != n {
        return Err(invalid(format!("{op}: {name} {v:?} needs {n} entries for this input")));
    }
    if !name.contains("pad") && v.contains(&0) {
        return Err(invalid(format!("{op}: {name} {v:?} has a zero entry")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Shape helpers

/// Insert `d − 1` zeros between consecutive entries of `axis` (dilating a kernel, spreading
/// the input of a strided transposed convolution).
fn spread(t: &Tensor, axis: usize, d: usize) -> Result<Tensor> {
    let n = t.dim(axis)?;
    if d <= 1 || n <= 1 {
        return Ok(t.clone());
    }
    let mut shape = t.dims().to_vec();
    shape[axis] = n * d;
    let u = t.unsqueeze(axis + 1)?.pad_with_zeros(axis + 1, 0, d - 1)?.reshape(shape)?;
    Ok(u.narrow(axis, 0, (n - 1) * d + 1)?)
}

/// Pad `axis` with `begin` and `end` entries of `value`.
fn pad_axis(t: &Tensor, axis: usize, begin: usize, end: usize, value: f32) -> Result<Tensor> {
    if begin == 0 && end == 0 {
        return Ok(t.clone());
    }
    if value == 0.0 {
        return Ok(t.pad_with_zeros(axis, begin, end)?);
    }
    let mut parts = Vec::with_capacity(3);
    let mut shape = t.dims().to_vec();
    if begin > 0 {
        shape[axis] = begin;
        parts.push(Tensor::full(value, shape.clone(), t.device())?.to_dtype(t.dtype())?);
    }
    parts.push(t.clone());
    if end > 0 {
        shape[axis] = end;
        parts.push(Tensor::full(value, shape, t.device())?.to_dtype(t.dtype())?);
    }
    Ok(Tensor::cat(&parts, axis)?)
}

/// Pad (positive) or crop (negative) `axis` at both ends with zeros.
fn pad_or_crop(t: &Tensor, axis: usize, begin: isize, end: isize) -> Result<Tensor> {
    let n = t.dim(axis)? as isize;
    let (cb, ce) = ((-begin).max(0), (-end).max(0));
    if cb + ce >= n {
        return Err(invalid(format!("pads crop all {n} positions of axis {axis}")));
    }
    let t = if cb + ce > 0 { t.narrow(axis, cb as usize, (n - cb - ce) as usize)? } else { t.clone() };
    pad_axis(&t, axis, begin.max(0) as usize, end.max(0) as usize, 0.0)
}

/// A u32 index vector on `t`'s device.
fn indices(v: Vec<u32>, t: &Tensor) -> Result<Tensor> {
    let n = v.len();
    Ok(Tensor::from_vec(v, n, t.device())?)
}

/// Shape `[1, c, 1, …]` of rank `rank` (a per-channel parameter broadcast over N and space).
fn channel_shape(c: usize, rank: usize) -> Vec<usize> {
    let mut s = vec![1; rank];
    s[1] = c;
    s
}

// ---------------------------------------------------------------------------------------------
// Convolutions

/// One 2-D convolution with any pads and dilation on shrink's conv op (NCHW, weight
/// `[M, C/groups, kh, kw]`).
fn conv2d_any(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    begin: [usize; 2],
    end: [usize; 2],
    dil: [usize; 2],
    groups: usize,
) -> Result<Tensor> {
    let mut w = w.clone();
    for (a, &d) in dil.iter().enumerate() {
        w = spread(&w, 2 + a, d)?;
    }
    let sym = [begin[0].min(end[0]), begin[1].min(end[1])];
    let mut x = x.clone();
    for a in 0..2 {
        x = pad_axis(&x, 2 + a, begin[a] - sym[a], end[a] - sym[a], 0.0)?;
    }
    Ok(crate::ops::conv2d(&x, &w, stride, sym, groups)?)
}

/// Convolution of `x (N, C, spatial…)` with `w (M, C/groups, kernel…)` for 1 to 3 spatial
/// axes; `pads` holds the begin pads then the end pads.
fn conv_nd(
    x: &Tensor,
    w: &Tensor,
    strides: &[usize],
    pads: &[usize],
    dil: &[usize],
    groups: usize,
    op: &str,
) -> Result<Tensor> {
    if x.rank() < 3 || w.rank() != x.rank() {
        return Err(invalid(format!(
            "{op}: x {:?} and weight {:?} must be (N, C, spatial…)",
            x.dims(),
            w.dims()
        )));
    }
    let n = x.rank() - 2;
    check_len(op, "strides", strides, n)?;
    check_len(op, "pads", pads, 2 * n)?;
    check_len(op, "dilations", dil, n)?;
    match n {
        1 => {
            let y = conv2d_any(
                &x.unsqueeze(2)?,
                &w.unsqueeze(2)?,
                [1, strides[0]],
                [0, pads[0]],
                [0, pads[1]],
                [1, dil[0]],
                groups,
            )?;
            Ok(y.squeeze(2)?)
        }
        2 => conv2d_any(
            x,
            w,
            [strides[0], strides[1]],
            [pads[0], pads[1]],
            [pads[2], pads[3]],
            [dil[0], dil[1]],
            groups,
        ),
        3 => {
            // One 2-D convolution per kernel depth over the (batch × output depth) planes.
            let x = pad_axis(x, 2, pads[0], pads[3], 0.0)?;
            let (nb, c, dp, h, wd) = x.dims5()?;
            let kd = w.dim(2)?;
            let span = dil[0] * (kd.max(1) - 1) + 1;
            if dp < span {
                return Err(invalid(format!(
                    "{op}: kernel depth {kd} is larger than the padded input ({dp})"
                )));
            }
            let od = (dp - span) / strides[0] + 1;
            let mut acc: Option<Tensor> = None;
            for k in 0..kd {
                let idx = indices((0..od).map(|o| (o * strides[0] + k * dil[0]) as u32).collect(), &x)?;
                let xs = x.index_select(&idx, 2)?.permute((0, 2, 1, 3, 4))?.reshape((nb * od, c, h, wd))?;
                let wk = w.narrow(2, k, 1)?.squeeze(2)?;
                let y = conv2d_any(
                    &xs,
                    &wk,
                    [strides[1], strides[2]],
                    [pads[1], pads[2]],
                    [pads[4], pads[5]],
                    [dil[1], dil[2]],
                    groups,
                )?;
                acc = Some(match acc {
                    None => y,
                    Some(a) => (a + y)?,
                });
            }
            let y = acc.ok_or_else(|| invalid(format!("{op}: empty kernel")))?;
            let (_, m, oh, ow) = y.dims4()?;
            Ok(y.reshape((nb, od, m, oh, ow))?.permute((0, 2, 1, 3, 4))?.contiguous()?)
        }
        _ => Err(invalid(format!("{op} with {n} spatial axes is not supported (at most 3)"))),
    }
}

fn add_bias(y: Tensor, bias: Option<&&Tensor>) -> Result<Tensor> {
    Ok(match bias {
        Some(b) => crate::ops::add_channel_bias(&y, b)?,
        None => y,
    })
}

impl Lower for Conv {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (x, w) = (input(ins, 0, "Conv")?, input(ins, 1, "Conv")?);
        let y = conv_nd(x, w, &self.strides, &self.pads, &self.dilations, self.groups, "Conv")?;
        Ok(vec![add_bias(y, ins.get(2))?])
    }
}

impl Lower for ConvTranspose {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let op = "ConvTranspose";
        let (x, w) = (input(ins, 0, op)?, input(ins, 1, op)?);
        if x.rank() < 3 || w.rank() != x.rank() {
            return Err(invalid(format!(
                "{op}: x {:?} and weight {:?} must be (N, C, spatial…)",
                x.dims(),
                w.dims()
            )));
        }
        let n = x.rank() - 2;
        check_len(op, "strides", &self.strides, n)?;
        check_len(op, "pads", &self.pads, 2 * n)?;
        check_len(op, "dilations", &self.dilations, n)?;
        check_len(op, "output_padding", &self.output_padding, n)?;
        let g = self.groups;
        let (c, mg) = (w.dim(0)?, w.dim(1)?);
        if g == 0 || c % g != 0 {
            return Err(invalid(format!("{op}: group {g} does not divide the {c} input channels")));
        }
        // Weight (C, M/g, k…) → (M, C/g, k…), spatially flipped: the equivalent convolution.
        let ks = w.dims()[2..].to_vec();
        let mut grouped = vec![g, c / g, mg];
        grouped.extend(&ks);
        let mut conv_shape = vec![g * mg, c / g];
        conv_shape.extend(&ks);
        let wc = w.reshape(grouped)?.transpose(1, 2)?.reshape(conv_shape)?;
        let flip: Vec<usize> = (2..2 + n).collect();
        let wc = wc.flip(&flip)?;
        // Input spread by the strides, padded by the dilated kernel span less the pads.
        let mut xs = x.clone();
        let mut pads = vec![0usize; 2 * n];
        for a in 0..n {
            xs = spread(&xs, 2 + a, self.strides[a])?;
            let full = (self.dilations[a] * (ks[a].max(1) - 1)) as isize;
            let begin = full - self.pads[a] as isize;
            let end = full - self.pads[n + a] as isize + self.output_padding[a] as isize;
            xs = pad_or_crop(&xs, 2 + a, begin.min(0), end.min(0))?;
            pads[a] = begin.max(0) as usize;
            pads[n + a] = end.max(0) as usize;
        }
        let y = conv_nd(&xs, &wc, &vec![1; n], &pads, &self.dilations, g, op)?;
        Ok(vec![add_bias(y, ins.get(2))?])
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix products

impl Lower for Gemm {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (a, b) = (input(ins, 0, "Gemm")?, input(ins, 1, "Gemm")?);
        if a.rank() != 2 || b.rank() != 2 {
            return Err(invalid(format!("Gemm: A {:?} and B {:?} must be 2-D", a.dims(), b.dims())));
        }
        let c = ins.get(2).filter(|_| self.beta != 0.0);
        // A fully-connected layer: shrink's fused linear op.
        if !self.trans_a && self.trans_b && self.alpha == 1.0 {
            match c {
                None => return Ok(vec![crate::ops::linear(a, b, None, false)?]),
                Some(c) if self.beta == 1.0 && c.dims() == [b.dim(0)?] => {
                    return Ok(vec![crate::ops::linear(a, b, Some(*c), false)?])
                }
                _ => {}
            }
        }
        let a = if self.trans_a { a.t()? } else { a.clone() };
        let b = if self.trans_b { b.t()? } else { b.clone() };
        let mut y = a.matmul(&b)?;
        if self.alpha != 1.0 {
            y = y.affine(self.alpha as f64, 0.0)?;
        }
        if let Some(c) = c {
            let c = if self.beta != 1.0 { c.affine(self.beta as f64, 0.0)? } else { (*c).clone() };
            y = y.broadcast_add(&c)?;
        }
        Ok(vec![y])
    }
}

impl Lower for MatMul {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let (a, b) = (input(ins, 0, "MatMul")?, input(ins, 1, "MatMul")?);
        if a.rank() == 0 || b.rank() == 0 {
            return Err(invalid(format!("MatMul of scalars ({:?} and {:?})", a.dims(), b.dims())));
        }
        // NumPy promotion of 1-D operands: a row for a, a column for b.
        let pa = if a.rank() == 1 { a.unsqueeze(0)? } else { a.clone() };
        let pb = if b.rank() == 1 { b.unsqueeze(1)? } else { b.clone() };
        let mut y = if pa.rank() == 2 && pb.rank() == 2 {
            pa.matmul(&pb)?
        } else {
            pa.contiguous()?.broadcast_matmul(&pb.contiguous()?)?
        };
        if b.rank() == 1 {
            y = y.squeeze(y.rank() - 1)?;
        }
        if a.rank() == 1 {
            y = y.squeeze(y.rank() - if b.rank() == 1 { 1 } else { 2 })?;
        }
        Ok(vec![y])
    }
}

// ---------------------------------------------------------------------------------------------
// Normalizations

/// Normalize `t` over its last axis: `(t − mean) / sqrt(var + eps)` (biased variance).
fn normalize_last(t: &Tensor, eps: f32) -> Result<Tensor> {
    let mean = t.mean_keepdim(D::Minus1)?;
    let centered = t.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(centered.broadcast_mul(&(var + eps as f64)?.sqrt()?.recip()?)?)
}

impl Lower for BatchNorm {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let op = "BatchNormalization";
        let x = input(ins, 0, op)?;
        let (scale, bias, mean, var) =
            (input(ins, 1, op)?, input(ins, 2, op)?, input(ins, 3, op)?, input(ins, 4, op)?);
        if x.rank() < 2 {
            return Err(invalid(format!("{op}: x {:?} must be (N, C, …)", x.dims())));
        }
        let eps = self.epsilon as f64;
        if !ctx.train {
            return Ok(vec![crate::ops::batch_norm_eval(x, scale, bias, mean, var, eps)?]);
        }
        let (y, stats) = crate::ops::batch_norm_train(x, scale, bias, eps)?;
        if stats.count < 2 {
            return Err(invalid(format!(
                "{op} in train mode needs more than one value per channel, x is {:?}",
                x.dims()
            )));
        }
        // PyTorch: running = (1 − m)·running + m·batch, with the unbiased batch variance.
        let m = ctx.bn_momentum;
        let n = stats.count as f64;
        let new_mean = (mean.detach().affine(1.0 - m, 0.0)? + stats.mean.affine(m, 0.0)?)?;
        let new_var = (var.detach().affine(1.0 - m, 0.0)? + stats.var.affine(m * n / (n - 1.0), 0.0)?)?;
        ctx.update_input(3, new_mean);
        ctx.update_input(4, new_var);
        Ok(vec![y])
    }
}

impl Lower for LayerNorm {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0, "LayerNormalization")?;
        let scale = input(ins, 1, "LayerNormalization")?;
        let r = x.rank() as i64;
        let axis = if self.axis < 0 { self.axis + r } else { self.axis };
        if !(0..r).contains(&axis) {
            return Err(invalid(format!(
                "LayerNormalization: axis {} is out of range for rank {r}",
                self.axis
            )));
        }
        let dims = x.dims();
        let outer: usize = dims[..axis as usize].iter().product();
        let inner: usize = dims[axis as usize..].iter().product();
        let y = normalize_last(&x.reshape((outer, inner))?, self.epsilon)?.reshape(dims)?;
        let y = y.broadcast_mul(scale)?;
        Ok(vec![match ins.get(2) {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        }])
    }
}

/// Normalize each of `groups` channel groups of every example, then the per-channel affine.
fn group_norm(ins: &[&Tensor], groups: usize, eps: f32, op: &str) -> Result<Tensor> {
    let x = input(ins, 0, op)?;
    let (scale, bias) = (input(ins, 1, op)?, input(ins, 2, op)?);
    if x.rank() < 2 {
        return Err(invalid(format!("{op}: x {:?} must be (N, C, …)", x.dims())));
    }
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    if groups == 0 || c % groups != 0 {
        return Err(invalid(format!("{op}: {groups} groups do not divide the {c} channels")));
    }
    let block = x.elem_count() / (n * groups).max(1);
    let y = normalize_last(&x.reshape((n, groups, block))?, eps)?.reshape(x.dims())?;
    let cs = channel_shape(c, x.rank());
    Ok(y.broadcast_mul(&scale.reshape(cs.as_slice())?)?.broadcast_add(&bias.reshape(cs.as_slice())?)?)
}

impl Lower for GroupNorm {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        Ok(vec![group_norm(ins, self.groups, self.epsilon, "GroupNormalization")?])
    }
}

impl Lower for InstanceNorm {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let c = input(ins, 0, "InstanceNormalization")?.dim(1)?;
        Ok(vec![group_norm(ins, c, self.epsilon, "InstanceNormalization")?])
    }
}

// ---------------------------------------------------------------------------------------------
// Pooling

/// shrink's 2-D pools fit: symmetric pads, no dilation, no extra ceil-mode window; max on the
/// CPU (elsewhere it is candle's op, whose backward needs windows that do not overlap);
/// average with a divisor that counts the pads and windows that tile the padded input exactly
/// (candle's backward upsamples the gradient to the input size).
fn fast_2d_pool(p: &Pool, x: &Tensor, outs: &[usize]) -> Option<([usize; 2], [usize; 2], [usize; 2])> {
    if x.rank() != 4 || (p.kind == PoolKind::Max && !x.device().is_cpu()) {
        return None;
    }
    if p.kind == PoolKind::Avg
        && (p.kernel != p.strides
            || (0..2).any(|a| x.dim(2 + a).ok() != Some(outs[a] * p.kernel[a] - 2 * p.pads[a])))
    {
        return None;
    }
    let pads = &p.pads;
    let floor_outs = (0..2).map(|a| {
        window_out(x.dim(2 + a).ok()?, p.kernel[a], p.strides[a], pads[a], pads[2 + a], 1, false).ok()
    });
    let fits = p.dilations == [1, 1]
        && pads[0] == pads[2]
        && pads[1] == pads[3]
        && floor_outs.zip(outs).all(|(f, &o)| f == Some(o))
        && (p.kind == PoolKind::Max || p.count_include_pad || pads.iter().all(|&v| v == 0));
    fits.then(|| ([p.kernel[0], p.kernel[1]], [p.strides[0], p.strides[1]], [pads[0], pads[1]]))
}

impl Lower for Pool {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let op = self.name();
        let x = input(ins, 0, op)?;
        if x.rank() < 3 {
            return Err(invalid(format!("{op}: x {:?} must be (N, C, spatial…)", x.dims())));
        }
        let n = x.rank() - 2;
        check_len(op, "kernel_shape", &self.kernel, n)?;
        check_len(op, "strides", &self.strides, n)?;
        check_len(op, "pads", &self.pads, 2 * n)?;
        check_len(op, "dilations", &self.dilations, n)?;
        let mut outs = Vec::with_capacity(n);
        for a in 0..n {
            let (k, s, d) = (self.kernel[a], self.strides[a], self.dilations[a]);
            let o = window_out(x.dim(2 + a)?, k, s, self.pads[a], self.pads[n + a], d, self.ceil_mode)
                .map_err(|e| invalid(format!("{op}: {e}")))?;
            outs.push(o);
        }
        if let Some((k, s, p)) = fast_2d_pool(self, x, &outs) {
            return Ok(vec![match self.kind {
                PoolKind::Max => crate::ops::max_pool2d(x, k, s, p)?,
                PoolKind::Avg => crate::ops::avg_pool2d(x, k, s, p)?,
            }]);
        }
        // Separable windows: along each spatial axis, reduce the kernel taps picked by
        // `index_select` from the padded input (−∞ pads for max, zeros for average).
        let fill = if self.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 };
        let mut y = x.clone();
        let mut counts: Vec<Vec<f32>> = Vec::with_capacity(n);
        for (a, &out) in outs.iter().enumerate() {
            let (k, s, d) = (self.kernel[a], self.strides[a], self.dilations[a]);
            let (pb, pe, size) = (self.pads[a], self.pads[n + a], x.dim(2 + a)?);
            let need = (out - 1) * s + (k - 1) * d + 1;
            let t = pad_axis(&y, 2 + a, pb, need.saturating_sub(pb + size), fill)?;
            let mut acc: Option<Tensor> = None;
            for j in 0..k {
                let idx = indices((0..out).map(|o| (o * s + j * d) as u32).collect(), &t)?;
                let sel = t.index_select(&idx, 2 + a)?;
                acc = Some(match (acc, self.kind) {
                    (None, _) => sel,
                    (Some(p), PoolKind::Max) => p.maximum(&sel)?,
                    (Some(p), PoolKind::Avg) => (p + sel)?,
                });
            }
            y = acc.ok_or_else(|| invalid(format!("{op}: empty kernel")))?;
            // Taps of each window inside the input (or inside the padded range).
            let limit = if self.count_include_pad { size + pe } else { size };
            let lo = if self.count_include_pad { 0 } else { pb };
            counts.push(
                (0..out)
                    .map(|o| (0..k).filter(|j| (lo..pb + limit).contains(&(o * s + j * d))).count() as f32)
                    .collect(),
            );
        }
        if self.kind == PoolKind::Avg {
            // The divisor is the product of the per-axis counts.
            let mut div = vec![1f32];
            for c in &counts {
                div = div.iter().flat_map(|&p| c.iter().map(move |&q| (p * q).max(1.0))).collect();
            }
            let div = Tensor::from_vec(div, outs.as_slice(), y.device())?.to_dtype(y.dtype())?;
            y = y.broadcast_div(&div)?;
        }
        Ok(vec![y])
    }
}

impl Lower for GlobalPool {
    fn lower(&self, ins: &[&Tensor], _ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0, "GlobalPool")?;
        if x.rank() < 3 {
            return Err(invalid(format!("GlobalPool: x {:?} must be (N, C, spatial…)", x.dims())));
        }
        let f = x.flatten_from(2)?;
        let r = match self.kind {
            PoolKind::Avg => f.mean_keepdim(2)?,
            PoolKind::Max => f.max_keepdim(2)?,
        };
        let mut shape = x.dims()[..2].to_vec();
        shape.resize(x.rank(), 1);
        Ok(vec![r.reshape(shape)?])
    }
}

// ---------------------------------------------------------------------------------------------
// Resize (nearest)

impl Lower for Resize {
    fn lower(&self, ins: &[&Tensor], ctx: &LowerCtx) -> Result<Vec<Tensor>> {
        let x = input(ins, 0, "Resize")?;
        // Symbolic sizes (an unchanged batch) become the input's own sizes.
        let sizes = match &self.sizes {
            None => None,
            Some(s) => Some(s.iter().map(|d| ctx.dim(d).map(Dim::Fixed)).collect::<Result<Vec<_>>>()?),
        };
        let op = Resize { sizes, ..self.clone() };
        let in_dims: Vec<Dim> = x.dims().iter().map(|&d| Dim::Fixed(d)).collect();
        let out: Vec<usize> = op
            .out_shape(&in_dims)
            .map_err(|e| invalid(format!("Resize: {e}")))?
            .iter()
            .map(|d| d.fixed().ok_or_else(|| invalid(format!("Resize: output size {d} is not fixed"))))
            .collect::<Result<_>>()?;
        if x.elem_count() == 0 {
            return Ok(vec![Tensor::zeros(out, x.dtype(), x.device())?]);
        }
        let mut y = x.clone();
        for (a, (&li, &lo)) in x.dims().iter().zip(&out).enumerate() {
            let scale = op.scales[a];
            let map: Vec<u32> = (0..lo)
                .map(|o| {
                    shrink_graph::ops::pool::nearest_source(op.coord, op.nearest, o, scale, li, lo) as u32
                })
                .collect();
            if lo == li && map.iter().enumerate().all(|(i, &s)| i as u32 == s) {
                continue;
            }
            y = y.index_select(&indices(map, &y)?, a)?;
        }
        Ok(vec![y])
    }
}

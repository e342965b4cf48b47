//! Evaluation of convolutions: im2col + gemm per group, a direct loop for depthwise
//! convolutions (one input channel per group), gemm + col2im for transposed convolutions.
//! Spatial ranks 1 to 3 share one code path (missing leading spatial axes have size 1).

use super::{f32_input, Eval, EvalCtx};
use crate::exec::EvalError;
use rayon::prelude::*;
use shrink_graph::ops::conv::*;
use shrink_graph::{Fact, InFact, OpDef, Tensor};

/// Run `op`'s shape inference on the concrete input shapes (the same checks as at graph build
/// time, so bad runtime shapes are errors, never panics); returns the output shapes.
pub(crate) fn infer_fixed(op: &dyn OpDef, ins: &[&Tensor]) -> Result<Vec<Vec<usize>>, EvalError> {
    let facts: Vec<Fact> = ins.iter().map(|t| t.fact()).collect();
    let infs: Vec<InFact> = facts.iter().map(|f| InFact { fact: f, value: None }).collect();
    let outs = op.infer(&infs).map_err(|e| EvalError::op(e.to_string()))?;
    outs.iter().map(|f| f.fixed_shape().map_err(|e| EvalError::op(e.to_string()))).collect()
}

/// `dst[m×n] (+)= lhs · rhs` with explicit strides (row stride, column stride) of each operand;
/// `accumulate` adds to `dst` instead of overwriting it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    alpha: f32,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= m * n, "gemm: destination too small");
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(last(lhs_rs, lhs_cs, m, k) < lhs.len(), "gemm: lhs out of bounds");
    assert!(last(rhs_rs, rhs_cs, k, n) < rhs.len(), "gemm: rhs out of bounds");
    let par = if m * n * k >= 1 << 20 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above keep every element the strides address inside the slices, and
    // `dst` holds `m * n` row-major outputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// [`gemm_strided`] with every product summed exactly: in f64 (a product of two f32 is exact
/// there, and sums of up to millions of them keep ~1e-16 relative error), `alpha` and the value
/// already in `dst` added in f64 too, one rounding to f32 per output.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_strided_exact(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    alpha: f32,
    accumulate: bool,
) {
    let mut sum = vec![0f64; n];
    for (i, row) in dst.chunks_mut(n.max(1)).take(m).enumerate() {
        sum.fill(0.0);
        for p in 0..k {
            let a = lhs[i * lhs_rs + p * lhs_cs] as f64;
            if a == 0.0 {
                continue;
            }
            let r = &rhs[p * rhs_rs..];
            if rhs_cs == 1 {
                sum.iter_mut().zip(&r[..n]).for_each(|(s, &b)| *s += a * b as f64);
            } else {
                sum.iter_mut().enumerate().for_each(|(j, s)| *s += a * r[j * rhs_cs] as f64);
            }
        }
        for (d, &s) in row.iter_mut().zip(&sum) {
            let init = if accumulate { *d as f64 } else { 0.0 };
            *d = (init + alpha as f64 * s) as f32;
        }
    }
}

/// The product [`Eval`]s use: exact when the context asks for it.
pub(crate) type GemmFn =
    fn(usize, usize, usize, &mut [f32], &[f32], (usize, usize), &[f32], (usize, usize), f32, bool);

/// [`gemm_strided_exact`] or [`gemm_strided`], as `ctx` says.
pub(crate) fn gemm_for(ctx: &EvalCtx) -> GemmFn {
    if ctx.exact_accumulation {
        gemm_strided_exact
    } else {
        gemm_strided
    }
}

/// Geometry of one convolution with its spatial axes padded to three.
pub(crate) struct Geo {
    pub(crate) batch: usize,
    pub(crate) c: usize,
    pub(crate) m: usize,
    pub(crate) groups: usize,
    /// Input, kernel and output spatial sizes (D, H, W).
    pub(crate) inp: [usize; 3],
    pub(crate) k: [usize; 3],
    pub(crate) out: [usize; 3],
    pub(crate) stride: [usize; 3],
    pub(crate) dil: [usize; 3],
    pub(crate) pad: [usize; 3],
}

/// Pad a per-spatial-axis list to three entries by prepending `fill`.
fn three(v: &[usize], fill: usize) -> Result<[usize; 3], EvalError> {
    if v.len() > 3 {
        return Err(EvalError::op(format!("{} spatial axes; at most 3 are supported", v.len())));
    }
    let mut r = [fill; 3];
    r[3 - v.len()..].copy_from_slice(v);
    Ok(r)
}

impl Geo {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        x: &[usize],
        w: &[usize],
        out: &[usize],
        m: usize,
        strides: &[usize],
        pads: &[usize],
        dil: &[usize],
        groups: usize,
    ) -> Result<Geo, EvalError> {
        let n = x.len() - 2;
        Ok(Geo {
            batch: x[0],
            c: x[1],
            m,
            groups,
            inp: three(&x[2..], 1)?,
            k: three(&w[2..], 1)?,
            out: three(&out[2..], 1)?,
            stride: three(strides, 1)?,
            dil: three(dil, 1)?,
            pad: three(&pads[..n], 0)?,
        })
    }
    pub(crate) fn in_size(&self) -> usize {
        self.inp.iter().product()
    }
    pub(crate) fn out_size(&self) -> usize {
        self.out.iter().product()
    }
    pub(crate) fn k_size(&self) -> usize {
        self.k.iter().product()
    }
    /// Input coordinate of output coordinate `o` and kernel offset `k` along axis `a`, if inside.
    #[inline]
    fn src(&self, a: usize, o: usize, k: usize) -> Option<usize> {
        (o * self.stride[a] + k * self.dil[a]).checked_sub(self.pad[a]).filter(|&i| i < self.inp[a])
    }
    /// True when the convolution reads its input as is (1×1 kernel, stride 1, no padding).
    pub(crate) fn is_pointwise(&self) -> bool {
        self.k == [1; 3] && self.stride == [1; 3] && self.pad == [0; 3] && self.out == self.inp
    }
}

/// im2col of `cg` channels starting at `x` (each `in_size` long) into `col[cg·K, P]`.
pub(crate) fn im2col(g: &Geo, x: &[f32], cg: usize, col: &mut [f32]) {
    let (p, isz) = (g.out_size(), g.in_size());
    let [_, ih, iw] = g.inp;
    let mut row = 0;
    for ci in 0..cg {
        let xc = &x[ci * isz..(ci + 1) * isz];
        for kd in 0..g.k[0] {
            for kh in 0..g.k[1] {
                for kw in 0..g.k[2] {
                    let dst = &mut col[row * p..(row + 1) * p];
                    let mut q = 0;
                    for od in 0..g.out[0] {
                        let sd = g.src(0, od, kd);
                        for oh in 0..g.out[1] {
                            let sh = g.src(1, oh, kh);
                            match (sd, sh) {
                                (Some(d), Some(h)) => {
                                    let base = (d * ih + h) * iw;
                                    for ow in 0..g.out[2] {
                                        dst[q] = g.src(2, ow, kw).map_or(0.0, |w| xc[base + w]);
                                        q += 1;
                                    }
                                }
                                _ => {
                                    dst[q..q + g.out[2]].fill(0.0);
                                    q += g.out[2];
                                }
                            }
                        }
                    }
                    row += 1;
                }
            }
        }
    }
}

/// Depthwise-style convolution (one input channel per group): a direct loop per output plane
/// (planes in parallel).
pub(crate) fn conv_direct(g: &Geo, x: &[f32], w: &[f32], out: &mut [f32]) {
    let (isz, osz, ksz) = (g.in_size(), g.out_size(), g.k_size());
    let mg = g.m / g.groups;
    let [_, ih, iw] = g.inp;
    let [_, oh_n, ow_n] = g.out;
    if osz == 0 {
        return;
    }
    out.par_chunks_mut(osz).enumerate().for_each(|(plane, dst)| {
        let (n, oc) = (plane / g.m, plane % g.m);
        let ic = oc / mg;
        let xc = &x[(n * g.c + ic) * isz..][..isz];
        let wc = &w[oc * ksz..][..ksz];
        let mut kidx = 0;
        for kd in 0..g.k[0] {
            for kh in 0..g.k[1] {
                for kw in 0..g.k[2] {
                    let wv = wc[kidx];
                    kidx += 1;
                    // Output columns whose input column is inside: a contiguous range.
                    let off = kw * g.dil[2];
                    let lo = g.pad[2].saturating_sub(off).div_ceil(g.stride[2]);
                    let hi = if iw + g.pad[2] <= off {
                        0
                    } else {
                        ow_n.min((iw + g.pad[2] - off).div_ceil(g.stride[2]))
                    };
                    for od in 0..g.out[0] {
                        let Some(d) = g.src(0, od, kd) else { continue };
                        for oh in 0..oh_n {
                            let Some(h) = g.src(1, oh, kh) else { continue };
                            let row = &xc[(d * ih + h) * iw..][..iw];
                            let o = &mut dst[(od * oh_n + oh) * ow_n..][..ow_n];
                            if lo >= hi {
                                continue;
                            }
                            let (s, start) = (g.stride[2], lo * g.stride[2] + off - g.pad[2]);
                            if s == 1 {
                                for (ov, &xv) in o[lo..hi].iter_mut().zip(&row[start..]) {
                                    *ov += wv * xv;
                                }
                            } else {
                                for (ov, &xv) in o[lo..hi].iter_mut().zip(row[start..].iter().step_by(s)) {
                                    *ov += wv * xv;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Fill each channel plane of `out` (`[batch, m, plane]`) with its bias, or zero.
pub(crate) fn init_bias(out: &mut [f32], bias: Option<&[f32]>, m: usize, plane: usize) {
    match bias {
        None => out.fill(0.0),
        Some(b) => {
            for (k, chunk) in out.chunks_mut(plane.max(1)).enumerate() {
                chunk.fill(b[k % m]);
            }
        }
    }
}

impl Eval for Conv {
    fn eval(&self, ins: &[&Tensor], ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let gemm_strided = gemm_for(ctx);
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let (x, w) = (f32_input(ins, 0)?, f32_input(ins, 1)?);
        let bias = if ins.len() > 2 { Some(f32_input(ins, 2)?) } else { None };
        let g = Geo::new(
            &ins[0].shape,
            &ins[1].shape,
            &out_shape,
            out_shape[1],
            &self.strides,
            &self.pads,
            &self.dilations,
            self.groups,
        )?;
        let (osz, isz) = (g.out_size(), g.in_size());
        let mut out = vec![0f32; out_shape.iter().product()];
        init_bias(&mut out, bias, g.m, osz);
        let (cg, mg) = (g.c / g.groups, g.m / g.groups);
        if cg == 1 && g.groups > 1 {
            conv_direct(&g, x, w, &mut out);
            return Ok(vec![Tensor::f32(out_shape, out)]);
        }
        let kk = cg * g.k_size();
        let pointwise = g.is_pointwise();
        // One example: im2col then one product per group.
        let example = |n: usize, dst: &mut [f32], col: &mut Vec<f32>| {
            for gi in 0..g.groups {
                let xg = &x[(n * g.c + gi * cg) * isz..][..cg * isz];
                let rhs: &[f32] = if pointwise {
                    xg
                } else {
                    im2col(&g, xg, cg, col);
                    col
                };
                let wg = &w[gi * mg * kk..][..mg * kk];
                let d = &mut dst[gi * mg * osz..][..mg * osz];
                gemm_strided(mg, osz, kk, d, wg, (kk, 1), rhs, (osz, 1), 1.0, true);
            }
        };
        let col_len = if pointwise { 0 } else { kk * osz };
        let per_example = g.m * osz;
        if g.batch > 1 && per_example > 0 {
            out.par_chunks_mut(per_example)
                .enumerate()
                .for_each_init(|| vec![0f32; col_len], |col, (n, dst)| example(n, dst, col));
        } else if per_example > 0 {
            example(0, &mut out, &mut vec![0f32; col_len]);
        }
        Ok(vec![Tensor::f32(out_shape, out)])
    }
}

impl Eval for ConvTranspose {
    fn eval(&self, ins: &[&Tensor], _ctx: &EvalCtx) -> Result<Vec<Tensor>, EvalError> {
        let out_shape = infer_fixed(self, ins)?.remove(0);
        let (x, w) = (f32_input(ins, 0)?, f32_input(ins, 1)?);
        let bias = if ins.len() > 2 { Some(f32_input(ins, 2)?) } else { None };
        // Geometry seen from the output: `inp` is the output, `out` the input (the conv whose
        // gradient this is); `src` then maps an input position and kernel offset to the output.
        let g = Geo::new(
            &out_shape,
            &ins[1].shape,
            &ins[0].shape,
            ins[0].shape[1],
            &self.strides,
            &self.pads,
            &self.dilations,
            self.groups,
        )?;
        let (c, m) = (ins[0].shape[1], out_shape[1]);
        let (cg, mg) = (c / self.groups, m / self.groups);
        let (psz, osz, ksz) = (g.out_size(), g.in_size(), g.k_size());
        let mut out = vec![0f32; out_shape.iter().product()];
        init_bias(&mut out, bias, m, osz);
        let rows = mg * ksz;
        let mut col = vec![0f32; rows * psz];
        let [_, oh_n, ow_n] = g.inp;
        for n in 0..g.batch {
            for gi in 0..self.groups {
                let xg = &x[(n * c + gi * cg) * psz..][..cg * psz];
                let wg = &w[gi * cg * rows..][..cg * rows];
                // col[mg·K, P] = wgᵀ · xg.
                gemm_strided(rows, psz, cg, &mut col, wg, (1, rows), xg, (psz, 1), 1.0, false);
                for oc in 0..mg {
                    let dst = &mut out[(n * m + gi * mg + oc) * osz..][..osz];
                    let mut r = oc * ksz;
                    for kd in 0..g.k[0] {
                        for kh in 0..g.k[1] {
                            for kw in 0..g.k[2] {
                                let src = &col[r * psz..][..psz];
                                r += 1;
                                let mut q = 0;
                                for id in 0..g.out[0] {
                                    let od = g.src(0, id, kd);
                                    for ih in 0..g.out[1] {
                                        let oh = g.src(1, ih, kh);
                                        if let (Some(d), Some(h)) = (od, oh) {
                                            let base = (d * oh_n + h) * ow_n;
                                            for iw in 0..g.out[2] {
                                                if let Some(wo) = g.src(2, iw, kw) {
                                                    dst[base + wo] += src[q + iw];
                                                }
                                            }
                                        }
                                        q += g.out[2];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(vec![Tensor::f32(out_shape, out)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_gemm_rounds_once_where_f32_sums_lose_the_small_term() {
        // 2^25 + 1 - 2^25: in f32 (left to right) the 1 is lost; exactly it is 1.
        let big = 33_554_432f32;
        assert_eq!(big + 1.0 - big, 0.0);
        let lhs = [big, 1.0, -big];
        let mut out = [0.5f32];
        gemm_strided_exact(1, 1, 3, &mut out, &lhs, (3, 1), &[1.0, 1.0, 1.0], (1, 1), 2.0, true);
        assert_eq!(out, [2.5]);
        // Strided operands (lhs transposed, rhs with a column stride) against an f64 loop.
        let (m, n, k) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.91).cos()).collect();
        let mut got = vec![0f32; m * n];
        gemm_strided_exact(m, n, k, &mut got, &a, (1, m), &b, (1, k), 1.0, false);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|p| a[p * m + i] as f64 * b[j * k + p] as f64).sum();
                assert_eq!(got[i * n + j], want as f32, "({i}, {j})");
            }
        }
    }

    /// Direct N-D (≤ 2 spatial) reference convolution.
    fn reference(x: &Tensor, w: &Tensor, b: Option<&[f32]>, op: &Conv) -> Vec<f32> {
        let out = infer_fixed(op, &[x, w]).unwrap().remove(0);
        let (xs, ws) = (&x.shape, &w.shape);
        let (xv, wv) = (x.as_f32().unwrap(), w.as_f32().unwrap());
        let (cg, mg) = (xs[1] / op.groups, ws[0] / op.groups);
        let mut y = vec![0f32; out.iter().product()];
        let (oh, ow) = (out[2], out[3]);
        for n in 0..xs[0] {
            for m in 0..ws[0] {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[m]);
                        for c in 0..cg {
                            let ic = (m / mg) * cg + c;
                            for ki in 0..ws[2] {
                                for kj in 0..ws[3] {
                                    let hi = (i * op.strides[0] + ki * op.dilations[0]) as isize
                                        - op.pads[0] as isize;
                                    let wj = (j * op.strides[1] + kj * op.dilations[1]) as isize
                                        - op.pads[1] as isize;
                                    if hi < 0 || wj < 0 || hi >= xs[2] as isize || wj >= xs[3] as isize {
                                        continue;
                                    }
                                    acc += xv[((n * xs[1] + ic) * xs[2] + hi as usize) * xs[3] + wj as usize]
                                        * wv[((m * cg + c) * ws[2] + ki) * ws[3] + kj];
                                }
                            }
                        }
                        y[((n * ws[0] + m) * oh + i) * ow + j] = acc;
                    }
                }
            }
        }
        y
    }

    fn seq(shape: Vec<usize>, k: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::f32(shape, (0..n).map(|i| ((i as f32 * k).sin() * 2.0).round() / 2.0).collect())
    }

    #[test]
    fn conv_paths_match_a_direct_loop() {
        let x = seq(vec![2, 4, 7, 6], 0.37);
        for (groups, wshape) in
            [(1, vec![6, 4, 3, 2]), (2, vec![6, 2, 3, 3]), (4, vec![8, 1, 3, 3]), (1, vec![5, 4, 1, 1])]
        {
            let w = seq(wshape.clone(), 0.11);
            let b: Vec<f32> = (0..wshape[0]).map(|i| i as f32 * 0.5).collect();
            let bt = Tensor::f32(vec![wshape[0]], b.clone());
            for (strides, pads, dil) in
                [(vec![1, 1], vec![0, 0, 0, 0], vec![1, 1]), (vec![2, 1], vec![1, 2, 0, 1], vec![1, 2])]
            {
                if wshape[2] == 1 && dil[1] == 2 {
                    continue;
                }
                let op = Conv { strides, pads, dilations: dil, groups };
                let got = op.eval(&[&x, &w, &bt], &EvalCtx::default()).unwrap().remove(0);
                let want = reference(&x, &w, Some(&b), &op);
                for (a, e) in got.as_f32().unwrap().iter().zip(&want) {
                    assert!((a - e).abs() < 1e-4, "groups {groups} {op:?}: {a} vs {e}");
                }
            }
        }
    }

    #[test]
    fn conv_transpose_is_the_adjoint_of_conv() {
        // <conv(x), y> == <x, convT(y)> for the same weight (no bias).
        let x = seq(vec![1, 4, 6, 5], 0.23);
        let w = seq(vec![6, 2, 3, 2], 0.41);
        let conv = Conv { strides: vec![2, 1], pads: vec![1, 0, 0, 1], dilations: vec![1, 2], groups: 2 };
        let cx = conv.eval(&[&x, &w], &EvalCtx::default()).unwrap().remove(0);
        let y = seq(cx.shape.clone(), 0.7);
        // ConvTranspose weight is (C_in_of_transpose = 6, 4/2 = 2, k…): the same tensor.
        let t = ConvTranspose {
            strides: vec![2, 1],
            pads: vec![1, 0, 0, 1],
            dilations: vec![1, 2],
            groups: 2,
            output_padding: vec![0, 0],
        };
        let ty = t.eval(&[&y, &w], &EvalCtx::default()).unwrap().remove(0);
        assert_eq!(ty.shape, x.shape);
        let dot = |a: &Tensor, b: &Tensor| {
            a.as_f32().unwrap().iter().zip(b.as_f32().unwrap()).map(|(p, q)| p * q).sum::<f32>()
        };
        let (l, r) = (dot(&cx, &y), dot(&x, &ty));
        assert!((l - r).abs() < 1e-3 * l.abs().max(1.0), "{l} vs {r}");
    }

    #[test]
    fn bad_runtime_shapes_are_errors() {
        let x = seq(vec![1, 3, 5, 5], 0.1);
        let w = seq(vec![2, 4, 3, 3], 0.1);
        let op = Conv { strides: vec![1, 1], pads: vec![0; 4], dilations: vec![1, 1], groups: 1 };
        assert!(op.eval(&[&x, &w], &EvalCtx::default()).is_err());
    }
}

//! Conv steps: the weight and bias kept once per plan, the geometry fixed at session time, and
//! one of three fp32 kernels chosen from the geometry: a direct loop for depthwise
//! convolutions, a plain product for pointwise (1×1, stride 1, unpadded) ones, im2col + gemm
//! for the rest. The epilogue is applied per example while its output is in cache.

use super::conv_direct::{self, DirectF32Geo};
use super::epilogue::Epilogue;
use crate::eval::conv::{conv_direct, gemm_strided, im2col, init_bias, Geo};
use crate::exec::EvalError;
use rayon::prelude::*;
use shrink_graph::ops::conv::Conv;

/// The implementations of a conv step (int8 / sparse ones from shrink-kernels are more variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvKernel {
    /// im2col then gemm per group.
    DenseF32Im2col,
    /// 1×1, stride 1, no padding, one group: the input already is the gemm operand.
    DenseF32Pointwise,
    /// One input channel per group: a direct loop per output plane.
    DenseF32Depthwise,
    /// One group, stride 1, AVX-512: output pixels in the lanes, no im2col
    /// ([`super::conv_direct`]).
    DenseF32Direct,
}

impl ConvKernel {
    /// The name shown in per-layer tables.
    pub fn name(self) -> &'static str {
        match self {
            ConvKernel::DenseF32Im2col => "dense-f32-im2col",
            ConvKernel::DenseF32Pointwise => "dense-f32-pointwise",
            ConvKernel::DenseF32Depthwise => "dense-f32-depthwise",
            ConvKernel::DenseF32Direct => "dense-f32-direct",
        }
    }
}

/// A compiled convolution.
#[derive(Debug, Clone)]
pub struct ConvStep {
    pub op: Conv,
    /// Weight `(M, C/groups, kernel…)` as in the graph, and its shape.
    pub weight: Vec<f32>,
    pub weight_shape: Vec<usize>,
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
    /// The step reads a second input of the output's shape, added before the epilogue (a
    /// residual `Add` fused into the conv).
    pub residual: bool,
    /// The weight packed for the direct kernel ([`ConvStep::with_direct`]), when it applies.
    pub direct: Option<Vec<f32>>,
}

/// The geometry of a conv step for concrete shapes, with its kernel and scratch size.
pub(crate) struct ConvGeo {
    pub geo: Geo,
    pub kernel: ConvKernel,
    /// im2col floats one example needs (the direct kernel: its padded image).
    pub col_len: usize,
    /// The direct kernel's geometry.
    pub direct: Option<DirectF32Geo>,
}

impl ConvStep {
    /// Pack the weight for the direct kernel when it can run this conv: 2-D, one group, stride
    /// 1, not pointwise-unpadded (the plain product serves those), a CPU with AVX-512.
    pub fn with_direct(mut self) -> ConvStep {
        let o = &self.op;
        let ws = &self.weight_shape;
        let avx512 = {
            #[cfg(target_arch = "x86_64")]
            {
                std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        };
        let pointwise = ws.len() == 4 && ws[2] == 1 && ws[3] == 1 && o.pads.iter().all(|&p| p == 0);
        if avx512 && ws.len() == 4 && o.groups == 1 && o.strides == [1, 1] && !pointwise && o.pads.len() == 4
        {
            let k = ws[1] * ws[2] * ws[3];
            self.direct = Some(conv_direct::pack(&self.weight, ws[0], k));
        }
        self
    }

    /// The geometry for input shape `x` and output shape `out`.
    pub(crate) fn geometry(&self, x: &[usize], out: &[usize]) -> Result<ConvGeo, EvalError> {
        let o = &self.op;
        let geo = Geo::new(x, &self.weight_shape, out, out[1], &o.strides, &o.pads, &o.dilations, o.groups)?;
        let cg = geo.c / geo.groups;
        let kernel = if cg == 1 && geo.groups > 1 {
            ConvKernel::DenseF32Depthwise
        } else if geo.is_pointwise() && geo.groups == 1 {
            ConvKernel::DenseF32Pointwise
        } else {
            ConvKernel::DenseF32Im2col
        };
        let direct = match (&self.direct, x) {
            (Some(_), [_, c, h, w]) if kernel == ConvKernel::DenseF32Im2col => {
                let (ws, p, d) = (&self.weight_shape, &o.pads, &o.dilations);
                let dg = DirectF32Geo {
                    c: *c,
                    h: *h,
                    w: *w,
                    kh: ws[2],
                    kw: ws[3],
                    pad: [p[0], p[1], p[2], p[3]],
                    dilation: [d[0], d[1]],
                    m: ws[0],
                };
                (dg.out_hw() == (out[2], out[3])).then_some(dg)
            }
            _ => None,
        };
        if let Some(dg) = direct {
            return Ok(ConvGeo { geo, kernel: ConvKernel::DenseF32Direct, col_len: dg.padded_len(), direct });
        }
        let col_len =
            if kernel == ConvKernel::DenseF32Im2col { cg * geo.k_size() * geo.out_size() } else { 0 };
        Ok(ConvGeo { geo, kernel, col_len, direct: None })
    }

    /// Run on `x` into `out` (plus `residual`, of `out`'s length, before the epilogue);
    /// `scratch` holds at least `col_len` floats per parallel worker.
    pub(crate) fn run(
        &self,
        cg: &ConvGeo,
        x: &[f32],
        residual: Option<&[f32]>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let g = &cg.geo;
        let osz = g.out_size();
        init_bias(out, self.bias.as_deref(), g.m, osz);
        if cg.kernel == ConvKernel::DenseF32Depthwise {
            conv_direct(g, x, &self.weight, out);
            if let Some(r) = residual {
                out.iter_mut().zip(r).for_each(|(o, r)| *o += r);
            }
            self.epilogue.apply(out);
            return;
        }
        let per_example = g.m * osz;
        if per_example == 0 {
            return;
        }
        if let (Some(dg), Some(packed)) = (&cg.direct, &self.direct) {
            return self.run_direct(dg, packed, x, residual, out, scratch);
        }
        let workers = scratch_workers(g.batch);
        if workers <= 1 {
            let col = &mut scratch[..cg.col_len];
            for n in 0..g.batch {
                self.example(cg, x, residual, n, &mut out[n * per_example..][..per_example], col, true);
            }
            return;
        }
        if cg.col_len == 0 {
            out.par_chunks_mut(per_example)
                .enumerate()
                .for_each(|(n, d)| self.example(cg, x, residual, n, d, &mut [], false));
            return;
        }
        let per_worker = g.batch.div_ceil(workers);
        out.par_chunks_mut(per_example * per_worker)
            .zip(scratch.par_chunks_mut(cg.col_len.max(1)))
            .enumerate()
            .for_each(|(w, (dst, col))| {
                for (i, d) in dst.chunks_mut(per_example).enumerate() {
                    self.example(cg, x, residual, w * per_worker + i, d, &mut col[..cg.col_len], false);
                }
            });
    }

    /// The direct kernel: one example per worker (batch 1: the image's channel blocks over
    /// the threads), each padding its image into its own scratch.
    fn run_direct(
        &self,
        dg: &DirectF32Geo,
        packed: &[f32],
        x: &[f32],
        residual: Option<&[f32]>,
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (oh, ow) = dg.out_hw();
        let (in_len, plane, pl) = (dg.c * dg.h * dg.w, oh * ow, dg.padded_len());
        let per_example = dg.m * plane;
        let batch = out.len() / per_example;
        let bias = self.bias.as_deref();
        let res_of = |n: usize| residual.map(|r| &r[n * per_example..][..per_example]);
        let workers = scratch_workers(batch);
        if batch == 1 {
            let pad = &mut scratch[..pl];
            conv_direct::pad_image(&x[..in_len], dg, pad);
            let pad: &[f32] = pad;
            let k = dg.c * dg.kh * dg.kw;
            let block = |(b, o): (usize, &mut [f32])| {
                let m = o.len() / plane;
                let g = DirectF32Geo { m, ..*dg };
                let c0 = b * conv_direct::MC;
                let res = residual.map(|r| &r[c0 * plane..][..m * plane]);
                let bias = bias.map(|v| &v[c0..c0 + m]);
                conv_direct::run(&g, pad, &packed[b * k * conv_direct::MC..], bias, res, self.epilogue, o);
            };
            if dg.m > conv_direct::MC && per_example * k >= 1 << 16 {
                out.par_chunks_mut(conv_direct::MC * plane).enumerate().for_each(block);
            } else {
                out.chunks_mut(conv_direct::MC * plane).enumerate().for_each(block);
            }
            return;
        }
        let per_worker = batch.div_ceil(workers);
        out.par_chunks_mut(per_example * per_worker).zip(scratch.par_chunks_mut(pl)).enumerate().for_each(
            |(wi, (dst, pad))| {
                let pad = &mut pad[..pl];
                for (i, o) in dst.chunks_mut(per_example).enumerate() {
                    let n = wi * per_worker + i;
                    conv_direct::pad_image(&x[n * in_len..][..in_len], dg, pad);
                    conv_direct::run(dg, pad, packed, bias, res_of(n), self.epilogue, o);
                }
            },
        );
    }

    /// One example: im2col (unless pointwise) and one product per group, then the residual and
    /// the epilogue.
    #[allow(clippy::too_many_arguments)]
    fn example(
        &self,
        cg: &ConvGeo,
        x: &[f32],
        residual: Option<&[f32]>,
        n: usize,
        dst: &mut [f32],
        col: &mut [f32],
        par: bool,
    ) {
        let g = &cg.geo;
        let (osz, isz) = (g.out_size(), g.in_size());
        let (cgc, mg) = (g.c / g.groups, g.m / g.groups);
        let kk = cgc * g.k_size();
        for gi in 0..g.groups {
            let xg = &x[(n * g.c + gi * cgc) * isz..][..cgc * isz];
            let rhs: &[f32] = if cg.kernel == ConvKernel::DenseF32Pointwise {
                xg
            } else {
                im2col(g, xg, cgc, col);
                col
            };
            let wg = &self.weight[gi * mg * kk..][..mg * kk];
            let d = &mut dst[gi * mg * osz..][..mg * osz];
            if par {
                gemm_strided(mg, osz, kk, d, wg, (kk, 1), rhs, (osz, 1), 1.0, true);
            } else {
                gemm_serial(mg, osz, kk, d, wg, rhs);
            }
        }
        if let Some(r) = residual {
            let r = &r[n * dst.len()..][..dst.len()];
            dst.iter_mut().zip(r).for_each(|(o, r)| *o += r);
        }
        self.epilogue.apply(dst);
    }
}

/// How many examples run at once (each with its own im2col scratch).
pub(crate) fn scratch_workers(batch: usize) -> usize {
    batch.min(rayon::current_num_threads().max(1))
}

/// `dst (+)= lhs[m×k] · rhs[k×n]` on the calling thread (the examples are the parallel axis).
fn gemm_serial(m: usize, n: usize, k: usize, dst: &mut [f32], lhs: &[f32], rhs: &[f32]) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n, "gemm: operand too small");
    // SAFETY: the assert keeps every addressed element inside the row-major slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

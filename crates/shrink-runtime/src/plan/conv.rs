//! Conv steps: the weight and bias kept once per plan, the geometry fixed at session time, and
//! one of three fp32 kernels chosen from the geometry: a direct loop for depthwise
//! convolutions, a plain product for pointwise (1×1, stride 1, unpadded) ones, im2col + gemm
//! for the rest. The epilogue is applied per example while its output is in cache.

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
}

impl ConvKernel {
    /// The name shown in per-layer tables.
    pub fn name(self) -> &'static str {
        match self {
            ConvKernel::DenseF32Im2col => "dense-f32-im2col",
            ConvKernel::DenseF32Pointwise => "dense-f32-pointwise",
            ConvKernel::DenseF32Depthwise => "dense-f32-depthwise",
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
}

/// The geometry of a conv step for concrete shapes, with its kernel and scratch size.
pub(crate) struct ConvGeo {
    pub geo: Geo,
    pub kernel: ConvKernel,
    /// im2col floats one example needs.
    pub col_len: usize,
}

impl ConvStep {
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
        let col_len =
            if kernel == ConvKernel::DenseF32Im2col { cg * geo.k_size() * geo.out_size() } else { 0 };
        Ok(ConvGeo { geo, kernel, col_len })
    }

    /// Run on `x` into `out`; `scratch` holds at least `col_len` floats per parallel worker
    /// (see [`ConvStep::scratch_len`]).
    pub(crate) fn run(&self, cg: &ConvGeo, x: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        let g = &cg.geo;
        let osz = g.out_size();
        init_bias(out, self.bias.as_deref(), g.m, osz);
        if cg.kernel == ConvKernel::DenseF32Depthwise {
            conv_direct(g, x, &self.weight, out);
            self.epilogue.apply(out);
            return;
        }
        let per_example = g.m * osz;
        if per_example == 0 {
            return;
        }
        let workers = scratch_workers(g.batch);
        if workers <= 1 {
            let col = &mut scratch[..cg.col_len];
            for n in 0..g.batch {
                self.example(cg, x, n, &mut out[n * per_example..][..per_example], col, true);
            }
            return;
        }
        if cg.col_len == 0 {
            out.par_chunks_mut(per_example)
                .enumerate()
                .for_each(|(n, d)| self.example(cg, x, n, d, &mut [], false));
            return;
        }
        let per_worker = g.batch.div_ceil(workers);
        out.par_chunks_mut(per_example * per_worker)
            .zip(scratch.par_chunks_mut(cg.col_len.max(1)))
            .enumerate()
            .for_each(|(w, (dst, col))| {
                for (i, d) in dst.chunks_mut(per_example).enumerate() {
                    self.example(cg, x, w * per_worker + i, d, &mut col[..cg.col_len], false);
                }
            });
    }

    /// One example: im2col (unless pointwise) and one product per group, then the epilogue.
    fn example(&self, cg: &ConvGeo, x: &[f32], n: usize, dst: &mut [f32], col: &mut [f32], par: bool) {
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

//! Int8 conv steps: a QDQ Conv ([`super::int8`]) run on the int8 kernels of shrink-kernels.
//!
//! * One group: the f32 NCHW input is quantized straight into u8 NHWC (one pass), then per
//!   example an NHWC im2col (each row `kh·kw` copies of `C` bytes; the weight columns were
//!   reordered to `(ky, kx, c)` at compile time) feeds the u8 × i8 GEMM with the fused f32
//!   epilogue, which stores channel-major: straight into the NCHW output. A 1×1, stride-1,
//!   unpadded conv skips the im2col (the NHWC input is the GEMM operand).
//! * Depthwise (one input channel per group, as many outputs): the input is quantized in NCHW
//!   and `shrink_kernels::depthwise_u8i8` writes the f32 output directly.
//!
//! Batch 1 parallelizes inside the kernels (output tiles / channels over rayon's pool); larger
//! batches run one example per worker, each with its own im2col and GEMM scratch. All scratch
//! comes from the session ([`Int8ConvGeo::scratch_len`]): nothing is allocated per call.

use super::epilogue::Epilogue;
use super::int8::{activation, quantize_slice, InputQuant};
use rayon::prelude::*;
use shrink_graph::ops::conv::Conv;
use shrink_kernels::{
    depthwise_u8i8, gemm_u8i8_f32_channel_major, Conv2dGeom, DwOut, Int8Epilogue, Isa, PackedI8,
};

/// The packed weights of an int8 conv step.
#[derive(Debug, Clone)]
pub enum Int8ConvWeights {
    /// One group: `[M, kh·kw·C]` rows, columns in `(ky, kx, c)` order, packed for the GEMM.
    Gemm(PackedI8),
    /// Depthwise: `[C, kh, kw]` codes.
    Depthwise(Vec<i8>),
}

/// The implementations of an int8 conv step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int8ConvKernel {
    /// NHWC im2col then the int8 GEMM.
    Im2col,
    /// 1×1, stride 1, no padding: the NHWC input is the GEMM operand.
    Pointwise,
    /// The int8 depthwise kernel.
    Depthwise,
}

impl Int8ConvKernel {
    /// The name shown in per-layer tables.
    pub fn name(self) -> &'static str {
        match self {
            Int8ConvKernel::Im2col => "int8-im2col",
            Int8ConvKernel::Pointwise => "int8-pointwise",
            Int8ConvKernel::Depthwise => "int8-depthwise",
        }
    }
}

/// A compiled int8 2-D convolution.
#[derive(Debug, Clone)]
pub struct Int8ConvStep {
    pub op: Conv,
    /// The graph's weight shape `(M, C/groups, kh, kw)`.
    pub weight_shape: Vec<usize>,
    /// The input's quantization (u8 codes).
    pub xq: InputQuant,
    pub weights: Int8ConvWeights,
    /// Per-output-channel weight scale.
    pub weight_scales: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
}

/// An int8 conv step's geometry for concrete shapes.
#[derive(Debug, Clone)]
pub struct Int8ConvGeo {
    pub batch: usize,
    /// Output channels.
    pub m: usize,
    pub geom: Conv2dGeom,
    pub oh: usize,
    pub ow: usize,
    pub kernel: Int8ConvKernel,
    /// Examples run at once (each with its own scratch).
    pub workers: usize,
}

impl Int8ConvGeo {
    fn in_len(&self) -> usize {
        self.geom.c * self.geom.h * self.geom.w
    }

    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// im2col bytes of one example.
    fn col_len(&self) -> usize {
        match self.kernel {
            Int8ConvKernel::Im2col => self.pixels() * self.geom.k(),
            _ => 0,
        }
    }

    /// `(u8, f32)` scratch a run needs: the quantized batch plus per-worker im2col rows (no
    /// f32 scratch: the kernels write the NCHW output directly).
    pub fn scratch_len(&self) -> (usize, usize) {
        (self.batch * self.in_len() + self.workers * self.col_len(), 0)
    }
}

impl Int8ConvStep {
    /// The geometry for input shape `x` (NCHW) and output shape `out`.
    pub fn geometry(&self, x: &[usize], out: &[usize]) -> Result<Int8ConvGeo, String> {
        let (ws, o) = (&self.weight_shape, &self.op);
        if x.len() != 4 || out.len() != 4 || out[0] != x[0] || out[1] != ws[0] {
            return Err(format!("int8 conv: input {x:?} and output {out:?} do not fit weights {ws:?}"));
        }
        let geom = Conv2dGeom {
            c: x[1],
            h: x[2],
            w: x[3],
            kh: ws[2],
            kw: ws[3],
            stride: (o.strides[0], o.strides[1]),
            pad: (o.pads[0], o.pads[1], o.pads[2], o.pads[3]),
            dilation: (o.dilations[0], o.dilations[1]),
        };
        let (oh, ow) = geom.out_hw().map_err(|e| e.to_string())?;
        if (oh, ow) != (out[2], out[3]) {
            return Err(format!("int8 conv: output {out:?}, the geometry gives {oh}x{ow}"));
        }
        let kernel = match &self.weights {
            Int8ConvWeights::Depthwise(_) => Int8ConvKernel::Depthwise,
            Int8ConvWeights::Gemm(_)
                if geom.kh == 1 && geom.kw == 1 && geom.stride == (1, 1) && geom.pad == (0, 0, 0, 0) =>
            {
                Int8ConvKernel::Pointwise
            }
            Int8ConvWeights::Gemm(_) => Int8ConvKernel::Im2col,
        };
        let batch = x[0];
        let workers = if batch > 1 { batch.min(rayon::current_num_threads().max(1)) } else { 1 };
        Ok(Int8ConvGeo { batch, m: ws[0], geom, oh, ow, kernel, workers })
    }

    fn epilogue(&self) -> Int8Epilogue<'_> {
        Int8Epilogue {
            weight_scales: &self.weight_scales,
            bias: self.bias.as_deref(),
            act: activation(self.epilogue),
        }
    }

    /// Run on `x` (NCHW f32) into `out` (NCHW f32) with the session's scratch (at least
    /// [`Int8ConvGeo::scratch_len`]). Errors only on inconsistent lengths.
    pub fn run(
        &self,
        g: &Int8ConvGeo,
        x: &[f32],
        out: &mut [f32],
        su8: &mut [u8],
        sf32: &mut [f32],
    ) -> Result<(), String> {
        let (in_len, out_len) = (g.in_len(), g.m * g.pixels());
        let (nu8, nf32) = g.scratch_len();
        if x.len() != g.batch * in_len
            || out.len() != g.batch * out_len
            || su8.len() < nu8
            || sf32.len() < nf32
        {
            return Err("int8 conv: buffer sizes do not fit the geometry".into());
        }
        if g.batch == 0 || in_len == 0 || out_len == 0 {
            return Ok(());
        }
        let (xq, cols) = su8.split_at_mut(g.batch * in_len);
        let ep = self.epilogue();
        let isa = Isa::detect();
        match &self.weights {
            Int8ConvWeights::Depthwise(w) => {
                quantize_batch(x, self.xq, xq, in_len, None);
                let one = |(xe, oe): (&[u8], &mut [f32])| {
                    depthwise_u8i8(isa, xe, &g.geom, self.xq.q, w, &ep, DwOut::F32(oe))
                        .map_err(|e| e.to_string())
                };
                if g.workers > 1 {
                    xq.par_chunks(in_len).zip(out.par_chunks_mut(out_len)).try_for_each(one)
                } else {
                    xq.chunks(in_len).zip(out.chunks_mut(out_len)).try_for_each(one)
                }
            }
            Int8ConvWeights::Gemm(pw) => {
                quantize_batch(x, self.xq, xq, in_len, Some(g.geom.h * g.geom.w));
                let xq: &[u8] = xq;
                let col_len = g.col_len();
                let per_worker = g.batch.div_ceil(g.workers);
                // Worker w: examples w·per_worker.., with its own im2col rows.
                let worker = |wi: usize, dst: &mut [f32], col: &mut [u8]| {
                    for (i, oe) in dst.chunks_mut(out_len).enumerate() {
                        let xe = &xq[(wi * per_worker + i) * in_len..][..in_len];
                        let rows: &[u8] = if g.kernel == Int8ConvKernel::Pointwise {
                            xe
                        } else {
                            im2col_nhwc(xe, &g.geom, g.oh, g.ow, self.xq.q.zero_point, &mut col[..col_len]);
                            &col[..col_len]
                        };
                        gemm_u8i8_f32_channel_major(isa, rows, g.pixels(), self.xq.q, pw, &ep, oe)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                };
                let cols = &mut cols[..g.workers * col_len];
                if g.workers <= 1 {
                    return worker(0, out, cols);
                }
                let outs = out.par_chunks_mut(out_len * per_worker);
                if col_len == 0 {
                    outs.enumerate().try_for_each(|(wi, dst)| worker(wi, dst, &mut []))
                } else {
                    outs.zip(cols.par_chunks_mut(col_len))
                        .enumerate()
                        .try_for_each(|(wi, (dst, col))| worker(wi, dst, col))
                }
            }
        }
    }
}

/// Quantize a batch of examples of `in_len` values: in place order (`hw = None`) or from NCHW
/// to NHWC (`hw = Some(H·W)`), one example per task when there are several.
fn quantize_batch(x: &[f32], q: InputQuant, out: &mut [u8], in_len: usize, hw: Option<usize>) {
    let one = |(xe, oe): (&[f32], &mut [u8])| match hw {
        None => quantize_slice(xe, q, oe),
        Some(hw) => quantize_nhwc(xe, q, oe, hw),
    };
    if x.len() > in_len && x.len() >= 1 << 14 {
        x.par_chunks(in_len).zip(out.par_chunks_mut(in_len)).for_each(one);
    } else {
        x.chunks(in_len).zip(out.chunks_mut(in_len)).for_each(one);
    }
}

/// One example `[C, H·W]` f32 → `[H·W, C]` u8 codes: blocks of 64 pixels of one channel
/// quantized together (vectorized), then scattered to their pixels.
fn quantize_nhwc(x: &[f32], q: InputQuant, out: &mut [u8], hw: usize) {
    const B: usize = 64;
    let c = x.len() / hw.max(1);
    if c == 1 {
        return quantize_slice(x, q, out);
    }
    let mut tmp = [0u8; B];
    for p0 in (0..hw).step_by(B) {
        let n = (hw - p0).min(B);
        for ch in 0..c {
            quantize_slice(&x[ch * hw + p0..][..n], q, &mut tmp[..n]);
            for (i, &v) in tmp[..n].iter().enumerate() {
                out[(p0 + i) * c + ch] = v;
            }
        }
    }
}

/// The im2col of one NHWC u8 example: row `oy·ow + ox` holds, for each tap `(ky, kx)`, the `C`
/// codes of input pixel `(oy·sh − pt + ky·dh, ox·sw − pl + kx·dw)`, or the zero point `pad`
/// outside the image. Without horizontal dilation, a kernel row inside the image is one run of
/// `kw·C` bytes.
fn im2col_nhwc(x: &[u8], g: &Conv2dGeom, oh: usize, ow: usize, pad: u8, col: &mut [u8]) {
    let c = g.c;
    let k = g.kh * g.kw * c;
    let in_y =
        |oy: usize, i: usize| (oy * g.stride.0 + i * g.dilation.0).checked_sub(g.pad.0).filter(|&y| y < g.h);
    let in_x =
        |ox: usize, j: usize| (ox * g.stride.1 + j * g.dilation.1).checked_sub(g.pad.1).filter(|&v| v < g.w);
    let run = g.kw * c;
    for (p, row) in col.chunks_exact_mut(k).take(oh * ow).enumerate() {
        let (oy, ox) = (p / ow, p % ow);
        // The kernel row's first input column, when the whole row is inside the image.
        let whole =
            (ox * g.stride.1).checked_sub(g.pad.1).filter(|&x0| g.dilation.1 == 1 && x0 + g.kw <= g.w);
        for i in 0..g.kh {
            let iy = in_y(oy, i);
            if let (Some(y), Some(x0)) = (iy, whole) {
                copy_run(&mut row[i * run..][..run], &x[(y * g.w + x0) * c..][..run]);
                continue;
            }
            for j in 0..g.kw {
                let dst = &mut row[(i * g.kw + j) * c..][..c];
                match (iy, in_x(ox, j)) {
                    (Some(y), Some(xx)) => copy_run(dst, &x[(y * g.w + xx) * c..][..c]),
                    _ => dst.fill(pad),
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of an im2col row (`C` bytes): 16-byte moves
/// inlined instead of a `memcpy` call per run.
#[inline(always)]
fn copy_run(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let mut i = 0;
    while i + 16 <= n {
        dst[i..i + 16].copy_from_slice(&src[i..i + 16]);
        i += 16;
    }
    dst[i..n].iter_mut().zip(&src[i..n]).for_each(|(d, s)| *d = *s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhwc_im2col_matches_the_kernels_nchw_im2col_up_to_column_order() {
        // 3 channels, 5x4 image; a 3x2 kernel with stride (2, 1), pads (1, 0, 2, 1), dilation
        // (1, 2), and a 3x3 kernel with stride 1, pads (1, 2, 0, 1) (whole-row runs).
        let geoms = [
            Conv2dGeom {
                c: 3,
                h: 5,
                w: 4,
                kh: 3,
                kw: 2,
                stride: (2, 1),
                pad: (1, 0, 2, 1),
                dilation: (1, 2),
            },
            Conv2dGeom {
                c: 3,
                h: 5,
                w: 4,
                kh: 3,
                kw: 3,
                stride: (1, 1),
                pad: (1, 2, 0, 1),
                dilation: (1, 1),
            },
        ];
        for g in geoms {
            let (oh, ow) = g.out_hw().unwrap();
            let nchw: Vec<u8> = (0..3 * 5 * 4).map(|i| (i * 7 % 251) as u8 + 1).collect();
            let mut nhwc = vec![0u8; nchw.len()];
            for c in 0..3 {
                for p in 0..20 {
                    nhwc[p * 3 + c] = nchw[c * 20 + p];
                }
            }
            let k = g.k();
            let mut want = vec![0u8; oh * ow * k];
            shrink_kernels::im2col_u8(&nchw, &g, 0, &mut want).unwrap();
            let mut got = vec![9u8; oh * ow * k];
            im2col_nhwc(&nhwc, &g, oh, ow, 0, &mut got);
            let taps = g.kh * g.kw;
            for p in 0..oh * ow {
                for c in 0..3 {
                    for t in 0..taps {
                        assert_eq!(
                            got[p * k + t * 3 + c],
                            want[p * k + c * taps + t],
                            "{g:?}: pixel {p} c {c} tap {t}"
                        );
                    }
                }
            }
        }
    }
}

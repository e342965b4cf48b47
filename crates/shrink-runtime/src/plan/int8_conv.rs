//! Int8 conv steps: a QDQ Conv ([`super::int8`]) run on the int8 kernels of shrink-kernels.
//!
//! * One group: the f32 NCHW input is quantized straight into u8 NHWC (one pass), then per
//!   example an NHWC im2col (each row `kh·kw` copies of `C` bytes; the weight columns were
//!   reordered to `(ky, kx, c)` at compile time) feeds the u8 × i8 GEMM with the fused f32
//!   epilogue, which stores channel-major: straight into the NCHW output. A 1×1, stride-1,
//!   unpadded conv skips the im2col (the NHWC input is the GEMM operand).
//! * One group, stride 1, on a CPU with AVX-512 VNNI: the direct kernel
//!   (`shrink_kernels::conv_direct_u8i8`, output pixels in the SIMD lanes, no im2col). Each
//!   worker quantizes one example at a time straight into the kernel's padded, channel-quad
//!   interleaved layout (in cache), and the kernel's epilogue adds a fused residual.
//! * Depthwise (one input channel per group, as many outputs): the input is quantized in NCHW
//!   and `shrink_kernels::depthwise_u8i8` writes the f32 output directly.
//!
//! Batch 1 parallelizes inside the kernels (output tiles / channels over rayon's pool); larger
//! batches run one example per worker, each with its own im2col and GEMM scratch. All scratch
//! comes from the session ([`Int8ConvGeo::scratch_len`]): nothing is allocated per call.

use super::epilogue::Epilogue;
use super::int8::{activation, quantize_slice, quantize_u8, InputQuant};
use rayon::prelude::*;
use shrink_graph::ops::conv::Conv;
use shrink_kernels::{
    conv_direct_u8i8, depthwise_u8i8, gemm_u8i8_f32_channel_major, Conv2dGeom, DirectGeom, DwOut,
    Int8Epilogue, Isa, PackedDirectI8, PackedI8,
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
    /// The direct stride-1 kernel (AVX-512 VNNI).
    Direct,
}

impl Int8ConvKernel {
    /// The name shown in per-layer tables.
    pub fn name(self) -> &'static str {
        match self {
            Int8ConvKernel::Im2col => "int8-im2col",
            Int8ConvKernel::Pointwise => "int8-pointwise",
            Int8ConvKernel::Depthwise => "int8-depthwise",
            Int8ConvKernel::Direct => "int8-direct",
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
    /// The weights packed for the direct kernel, when it can run this conv (one group,
    /// stride 1, a CPU with AVX-512 VNNI).
    pub direct: Option<PackedDirectI8>,
    /// Per-output-channel weight scale.
    pub weight_scales: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
    /// The step reads a second f32 input of the output's shape, added before the activation
    /// (a residual `Add` fused into the conv).
    pub residual: bool,
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
    /// The direct kernel's geometry (kernel [`Int8ConvKernel::Direct`]).
    pub direct: Option<DirectGeom>,
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
        match &self.direct {
            Some(d) => (self.workers * d.input_len(), 0),
            None => (self.batch * self.in_len() + self.workers * self.col_len(), 0),
        }
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
        let direct = (self.direct.is_some() && geom.stride == (1, 1)).then_some(DirectGeom {
            c: geom.c,
            h: geom.h,
            w: geom.w,
            kh: geom.kh,
            kw: geom.kw,
            pad: geom.pad,
            dilation: geom.dilation,
        });
        let kernel = match &self.weights {
            _ if direct.is_some() => Int8ConvKernel::Direct,
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
        Ok(Int8ConvGeo { batch, m: ws[0], geom, oh, ow, kernel, workers, direct })
    }

    /// The kernels' epilogue; with a residual the activation is applied after the addition,
    /// outside the kernel.
    fn epilogue(&self, residual: bool) -> Int8Epilogue<'_> {
        Int8Epilogue {
            weight_scales: &self.weight_scales,
            bias: self.bias.as_deref(),
            act: if residual { activation(Epilogue::None) } else { activation(self.epilogue) },
        }
    }

    /// One example's output plus its residual, then the activation (in cache).
    fn finish(&self, oe: &mut [f32], re: Option<&[f32]>) {
        if let Some(r) = re {
            oe.iter_mut().zip(r).for_each(|(o, r)| *o += r);
            self.epilogue.apply(oe);
        }
    }

    /// Run on `x` (NCHW f32) into `out` (NCHW f32) with the session's scratch (at least
    /// [`Int8ConvGeo::scratch_len`]). Errors only on inconsistent lengths.
    pub fn run(
        &self,
        g: &Int8ConvGeo,
        x: &[f32],
        residual: Option<&[f32]>,
        out: &mut [f32],
        su8: &mut [u8],
        sf32: &mut [f32],
    ) -> Result<(), String> {
        let (in_len, out_len) = (g.in_len(), g.m * g.pixels());
        let (nu8, nf32) = g.scratch_len();
        if x.len() != g.batch * in_len
            || out.len() != g.batch * out_len
            || residual.is_some_and(|r| r.len() != out.len())
            || residual.is_some() != self.residual
            || su8.len() < nu8
            || sf32.len() < nf32
        {
            return Err("int8 conv: buffer sizes do not fit the geometry".into());
        }
        if g.batch == 0 || in_len == 0 || out_len == 0 {
            return Ok(());
        }
        let isa = Isa::detect();
        let res_of = |n: usize| residual.map(|r| &r[n * out_len..][..out_len]);
        if let (Some(dg), Some(pw)) = (&g.direct, &self.direct) {
            // The kernel adds the residual before the activation itself.
            let ep = self.epilogue(false);
            let il = dg.input_len();
            let per_worker = g.batch.div_ceil(g.workers);
            let worker = |wi: usize, dst: &mut [f32], buf: &mut [u8]| {
                for (i, oe) in dst.chunks_mut(out_len).enumerate() {
                    let n = wi * per_worker + i;
                    quantize_direct(&x[n * in_len..][..in_len], dg, self.xq, buf);
                    conv_direct_u8i8(isa, buf, dg, self.xq.q, pw, &ep, res_of(n), oe, g.workers <= 1)
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            };
            let bufs = &mut su8[..g.workers * il];
            if g.workers <= 1 {
                return worker(0, out, bufs);
            }
            return out
                .par_chunks_mut(out_len * per_worker)
                .zip(bufs.par_chunks_mut(il))
                .enumerate()
                .try_for_each(|(wi, (dst, buf))| worker(wi, dst, buf));
        }
        let (xq, cols) = su8.split_at_mut(g.batch * in_len);
        let ep = self.epilogue(residual.is_some());
        match &self.weights {
            Int8ConvWeights::Depthwise(w) => {
                quantize_batch(x, self.xq, xq, in_len, None);
                let one = |(n, (xe, oe)): (usize, (&[u8], &mut [f32]))| {
                    depthwise_u8i8(isa, xe, &g.geom, self.xq.q, w, &ep, DwOut::F32(&mut *oe))
                        .map_err(|e| e.to_string())?;
                    self.finish(oe, res_of(n));
                    Ok::<(), String>(())
                };
                if g.workers > 1 {
                    xq.par_chunks(in_len).zip(out.par_chunks_mut(out_len)).enumerate().try_for_each(one)
                } else {
                    xq.chunks(in_len).zip(out.chunks_mut(out_len)).enumerate().try_for_each(one)
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
                        let n = wi * per_worker + i;
                        let xe = &xq[n * in_len..][..in_len];
                        let rows: &[u8] = if g.kernel == Int8ConvKernel::Pointwise {
                            xe
                        } else {
                            im2col_nhwc(xe, &g.geom, g.oh, g.ow, self.xq.q.zero_point, &mut col[..col_len]);
                            &col[..col_len]
                        };
                        gemm_u8i8_f32_channel_major(isa, rows, g.pixels(), self.xq.q, pw, &ep, &mut *oe)
                            .map_err(|e| e.to_string())?;
                        self.finish(oe, res_of(n));
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

/// One example `[C, H, W]` f32 quantized into the direct kernel's padded layout
/// `[⌈C/4⌉][Hp][Wp][4]` (borders, missing channels and slack: the zero point).
fn quantize_direct(x: &[f32], g: &DirectGeom, q: InputQuant, out: &mut [u8]) {
    let zp = q.q.zero_point;
    out.fill(zp);
    let (h, w) = (g.h, g.w);
    let plane = h * w;
    for cq in 0..g.quads() {
        let chans = (g.c - 4 * cq).min(4);
        for y in 0..h {
            let start = g.offset(4 * cq, y + g.pad.0, g.pad.1);
            let dst = &mut out[start..start + 4 * w];
            let row = |j: usize| &x[(4 * cq + j.min(chans - 1)) * plane + y * w..][..w];
            quantize_quad_row([row(0), row(1), row(2), row(3)], chans, q, dst);
        }
    }
}

/// Interleave 4 channels' rows into `dst` (`4·W` bytes), channel `j` at byte `j` of each
/// pixel; channels `≥ chans` get the zero point.
fn quantize_quad_row(rows: [&[f32]; 4], chans: usize, q: InputQuant, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU has AVX-512 F and BW (checked just above).
        return unsafe { quad_row_avx512(rows, chans, q, dst) };
    }
    quad_row_plain(rows, chans, q, dst)
}

fn quad_row_plain(rows: [&[f32]; 4], chans: usize, q: InputQuant, dst: &mut [u8]) {
    let zp = q.q.zero_point as u32;
    let w = rows[0].len();
    let mask: [u32; 4] = std::array::from_fn(|j| if j < chans { u32::MAX } else { 0 });
    for (x, d) in dst.chunks_exact_mut(4).take(w).enumerate() {
        let mut word = 0u32;
        for j in 0..4 {
            let c = (quantize_u8(rows[j][x], q) as u32 & mask[j]) | (zp & !mask[j]);
            word |= c << (8 * j);
        }
        d.copy_from_slice(&word.to_le_bytes());
    }
}

/// The same arithmetic as [`quantize_u8`] with AVX-512 intrinsics, 16 pixels at a time: four
/// channels' codes or-ed into one 32-bit word per pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quad_row_avx512(rows: [&[f32]; 4], chans: usize, q: InputQuant, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let w = rows[0].len();
    assert!(dst.len() >= 4 * w && rows.iter().all(|r| r.len() >= w), "quantize: row lengths");
    let s = _mm512_set1_ps(q.q.scale);
    let (lo, hi) = (_mm512_set1_ps(-512.0), _mm512_set1_ps(512.0));
    let magic = _mm512_set1_ps(12_582_912.0);
    let zp = _mm512_set1_ps(q.q.zero_point as f32);
    let (zero, top) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
    let nan = _mm512_set1_epi32(q.nan as i32);
    let zpi = _mm512_set1_epi32(q.q.zero_point as i32);
    let mut x = 0;
    while x < w {
        let n = (w - x).min(16);
        let m: __mmask16 = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
        let mut word = _mm512_setzero_si512();
        for (j, row) in rows.iter().enumerate() {
            let code = if j < chans {
                // SAFETY: lanes below `n` are inside the row; the others are masked off.
                let v = unsafe { _mm512_maskz_loadu_ps(m, row.as_ptr().add(x)) };
                let t = _mm512_div_ps(v, s);
                let r = _mm512_sub_ps(_mm512_add_ps(_mm512_min_ps(_mm512_max_ps(t, lo), hi), magic), magic);
                let c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zp), zero), top);
                let is_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(t, t);
                _mm512_mask_blend_epi32(is_nan, _mm512_cvttps_epi32(c), nan)
            } else {
                zpi
            };
            word = _mm512_or_si512(word, _mm512_sllv_epi32(code, _mm512_set1_epi32(8 * j as i32)));
        }
        // SAFETY: pixels below `n` are inside `dst` (4 bytes each); the others are masked off.
        unsafe { _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(4 * x) as *mut i32, m, word) };
        x += 16;
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
    fn quad_rows_equal_the_reference_quantization_on_every_path() {
        let mut vals =
            vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 0.0, -0.0, 0.05, 0.15, -0.25];
        vals.extend((0..150).map(|i| (i as f32 - 75.0) * 0.0731));
        for (zp, nan) in [(0u8, 0u8), (128, 128), (37, 0)] {
            let q = InputQuant { q: shrink_kernels::QuantParams { scale: 0.1, zero_point: zp }, nan };
            for w in [1usize, 15, 16, 17, 40] {
                for chans in 1..=4 {
                    let rows: Vec<Vec<f32>> = (0..4)
                        .map(|j| (0..w).map(|x| vals[(x * 7 + j * 13) % vals.len()]).collect())
                        .collect();
                    let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
                    let mut got = vec![0u8; 4 * w];
                    quantize_quad_row(r, chans, q, &mut got);
                    let mut plain = vec![1u8; 4 * w];
                    quad_row_plain(r, chans, q, &mut plain);
                    for x in 0..w {
                        for j in 0..4 {
                            let want = if j < chans { quantize_u8(rows[j][x], q) } else { zp };
                            assert_eq!(
                                got[4 * x + j],
                                want,
                                "w {w} chans {chans} x {x} j {j}: {}",
                                rows[j][x]
                            );
                            assert_eq!(plain[4 * x + j], want);
                        }
                    }
                }
            }
        }
    }

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

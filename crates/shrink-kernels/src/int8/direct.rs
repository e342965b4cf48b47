//! Direct int8 convolution (stride 1) with output pixels in the SIMD lanes and no im2col.
//!
//! The input of one image is stored padded and channel-quad interleaved: `[⌈C/4⌉][Hp][Wp][4]`
//! u8 ([`DirectGeom::offset`]; borders and missing channels hold the zero point). Output pixel
//! `(oy, ox)` is computed at the flattened position `q = oy·Wp + ox`, so for kernel tap
//! `(ky, kx)` and channel quad `cq` the 16 positions `q .. q + 16` read 64 contiguous bytes at
//! `((cq·Hp + ky·dh)·Wp + kx·dw + q)·4`: one load feeds a `vpdpbusd` per output channel, the
//! channel's 4 weights broadcast to every lane. Positions with `ox ≥ OW` (the right border)
//! are computed and dropped when the vector is stored (`vcompressps` of the valid lanes, then
//! a masked store into the NCHW output plane). A register tile is 8 channels × 3 vectors.
//!
//! The epilogue matches [`Int8Epilogue::apply`] bit for bit, optionally adds an f32 residual of
//! the output's shape before the activation (a fused `Add`), and writes NCHW f32.
//!
//! Paths: AVX-512 VNNI, and a scalar loop (the reference) for every other CPU.
use crate::epilogue::{Int8Epilogue, QuantParams};
use crate::error::{check_len, KernelError, Result};
use crate::par::{for_each_task, split, OutPtr};
use crate::Isa;

/// Output channels per register tile (weights are packed in blocks of this many).
pub const DIRECT_MC: usize = 8;
/// Pixel vectors (16 lanes each) per register tile.
const PV: usize = 3;
/// Multiply-adds below which `parallel` calls still run on the calling thread.
const PAR_MIN_WORK: usize = 1 << 22;

/// Geometry of a stride-1 2-D convolution for [`conv_direct_u8i8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectGeom {
    /// Input channels.
    pub c: usize,
    /// Input height (unpadded).
    pub h: usize,
    /// Input width (unpadded).
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Padding (top, left, bottom, right).
    pub pad: (usize, usize, usize, usize),
    /// Dilation (vertical, horizontal).
    pub dilation: (usize, usize),
}

impl DirectGeom {
    /// Channel quads `⌈C/4⌉`.
    pub fn quads(&self) -> usize {
        self.c.div_ceil(4)
    }

    /// Padded height and width.
    pub fn padded(&self) -> (usize, usize) {
        (self.h + self.pad.0 + self.pad.2, self.w + self.pad.1 + self.pad.3)
    }

    /// Output height and width (0 when the kernel does not fit).
    pub fn out_hw(&self) -> (usize, usize) {
        let (hp, wp) = self.padded();
        let ext = |k: usize, d: usize| (k.max(1) - 1) * d + 1;
        (
            (hp + 1).saturating_sub(ext(self.kh, self.dilation.0)),
            (wp + 1).saturating_sub(ext(self.kw, self.dilation.1)),
        )
    }

    /// Flattened output positions computed (`(OH − 1)·Wp + OW`).
    pub fn positions(&self) -> usize {
        let (oh, ow) = self.out_hw();
        if oh == 0 || ow == 0 {
            return 0;
        }
        (oh - 1) * self.padded().1 + ow
    }

    /// 16-lane vectors covering the positions.
    pub fn vectors(&self) -> usize {
        self.positions().div_ceil(16)
    }

    /// Byte offset of channel `c`'s code at padded pixel `(y, x)` in the input layout.
    #[inline(always)]
    pub fn offset(&self, c: usize, y: usize, x: usize) -> usize {
        let (hp, wp) = self.padded();
        (((c / 4) * hp + y) * wp + x) * 4 + c % 4
    }

    /// Bytes of the padded input buffer, including the slack the last vectors read past the
    /// image (fill it with the zero point, like the borders).
    pub fn input_len(&self) -> usize {
        let (hp, wp) = self.padded();
        let q = self.quads();
        let last_tap = ((q.max(1) - 1) * hp + (self.kh.max(1) - 1) * self.dilation.0) * wp
            + (self.kw.max(1) - 1) * self.dilation.1;
        (q * hp * wp).max(last_tap + self.vectors() * 16) * 4
    }

    fn check(&self) -> Result<()> {
        if self.c == 0 || self.kh == 0 || self.kw == 0 || self.dilation.0 == 0 || self.dilation.1 == 0 {
            return Err(KernelError::new(format!("direct conv: degenerate geometry {self:?}")));
        }
        Ok(())
    }
}

/// Quantized NCHW u8 image `x` (`[C, H, W]`) into the padded layout of `g` (`out`:
/// [`DirectGeom::input_len`] bytes; borders, missing channels and slack get `zero`).
pub fn pack_direct_input_u8(x: &[u8], g: &DirectGeom, zero: u8, out: &mut [u8]) -> Result<()> {
    check_len("direct conv input", x.len(), g.c * g.h * g.w)?;
    check_len("direct conv packed input", out.len(), g.input_len())?;
    out.fill(zero);
    for c in 0..g.c {
        for y in 0..g.h {
            for xx in 0..g.w {
                out[g.offset(c, y + g.pad.0, xx + g.pad.1)] = x[(c * g.h + y) * g.w + xx];
            }
        }
    }
    Ok(())
}

/// Int8 weights `[M, C, kh, kw]` packed for [`conv_direct_u8i8`]: blocks of [`DIRECT_MC`]
/// channels, each `[quad][ky][kx][DIRECT_MC]` i32 words holding 4 channels' codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedDirectI8 {
    m: usize,
    c: usize,
    kh: usize,
    kw: usize,
    data: Vec<i32>,
    row_sums: Vec<i32>,
}

impl PackedDirectI8 {
    /// Packs `w` (`[m, c, kh, kw]`, row-major, symmetric codes).
    pub fn pack(w: &[i8], m: usize, c: usize, kh: usize, kw: usize) -> Result<PackedDirectI8> {
        let k = c * kh * kw;
        check_len("direct conv weights", w.len(), m * k)?;
        if k > crate::MAX_K {
            return Err(KernelError::new(format!("direct conv weights: K = {k} exceeds {}", crate::MAX_K)));
        }
        let (quads, taps) = (c.div_ceil(4), kh * kw);
        let blocks = m.div_ceil(DIRECT_MC);
        let mut data = vec![0i32; blocks * quads * taps * DIRECT_MC];
        for o in 0..m {
            let (b, lane) = (o / DIRECT_MC, o % DIRECT_MC);
            for q in 0..quads {
                for t in 0..taps {
                    let mut bytes = [0u8; 4];
                    for (j, byte) in bytes.iter_mut().enumerate() {
                        let ci = 4 * q + j;
                        if ci < c {
                            *byte = w[(o * c + ci) * taps + t] as u8;
                        }
                    }
                    data[((b * quads + q) * taps + t) * DIRECT_MC + lane] = i32::from_le_bytes(bytes);
                }
            }
        }
        let row_sums = w.chunks(k.max(1)).take(m).map(|r| r.iter().map(|&v| v as i32).sum()).collect();
        Ok(PackedDirectI8 { m, c, kh, kw, data, row_sums })
    }

    /// Output channels.
    pub fn m(&self) -> usize {
        self.m
    }

    /// The words of channel block `b` (`quads · taps · DIRECT_MC`).
    fn block(&self, b: usize) -> &[i32] {
        let n = self.c.div_ceil(4) * self.kh * self.kw * DIRECT_MC;
        &self.data[b * n..(b + 1) * n]
    }
}

/// Where a vector of 16 positions lands: its valid lanes (in order they are consecutive
/// output pixels), the first one's index in the output plane, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes {
    /// Bit `j` set: lane `j` is an output pixel (not past the row's end or the image's).
    pub mask: u16,
    /// The first valid lane's index in the output plane.
    pub dst: usize,
    /// Valid lanes.
    pub count: usize,
}

/// The [`Lanes`] of vector `vi` of a direct conv whose padded rows are `wp` wide, output rows
/// `ow` wide, over `positions` flattened positions ([`DirectGeom::positions`]); the f32 direct
/// conv of shrink-runtime stores its vectors the same way.
pub fn lanes(vi: usize, wp: usize, ow: usize, positions: usize) -> Lanes {
    let q0 = vi * 16;
    let (mut row, mut col) = (q0 / wp, q0 % wp);
    let mut mask = 0u16;
    let mut first = None;
    for j in 0..16 {
        if q0 + j < positions && col < ow {
            mask |= 1 << j;
            first.get_or_insert(row * ow + col);
        }
        col += 1;
        if col == wp {
            (row, col) = (row + 1, 0);
        }
    }
    Lanes { mask, dst: first.unwrap_or(0), count: mask.count_ones() as usize }
}

/// Shared arguments of one call.
struct Args<'a> {
    x: &'a [u8],
    g: DirectGeom,
    sa: f32,
    za: i32,
    w: &'a PackedDirectI8,
    ep: Int8Epilogue<'a>,
    residual: Option<&'a [f32]>,
    out: OutPtr<f32>,
}

/// Int8 stride-1 convolution of one image: `x` is the padded input
/// ([`pack_direct_input_u8`]), `out` the NCHW f32 output `[M, OH, OW]`,
/// `out = act(conv · sa · sw[m] + bias[m] (+ residual))`. `parallel`: split the image over
/// rayon's pool (for batch 1; larger batches run one image per thread).
///
/// ```
/// use shrink_kernels::{conv_direct_u8i8, pack_direct_input_u8, Activation, DirectGeom, Int8Epilogue, Isa, PackedDirectI8, QuantParams};
/// // One channel 2×2 image, a 1×1 kernel of weight 2, zero point 1.
/// let g = DirectGeom { c: 1, h: 2, w: 2, kh: 1, kw: 1, pad: (0, 0, 0, 0), dilation: (1, 1) };
/// let mut x = vec![0u8; g.input_len()];
/// pack_direct_input_u8(&[1, 2, 3, 4], &g, 1, &mut x).unwrap();
/// let w = PackedDirectI8::pack(&[2], 1, 1, 1, 1).unwrap();
/// let ep = Int8Epilogue { weight_scales: &[1.0], bias: None, act: Activation::None };
/// let q = QuantParams { scale: 0.5, zero_point: 1 };
/// let mut y = [0f32; 4];
/// conv_direct_u8i8(Isa::detect(), &x, &g, q, &w, &ep, None, &mut y, false).unwrap();
/// assert_eq!(y, [0.0, 1.0, 2.0, 3.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv_direct_u8i8(
    isa: Isa,
    x: &[u8],
    g: &DirectGeom,
    xq: QuantParams,
    w: &PackedDirectI8,
    ep: &Int8Epilogue,
    residual: Option<&[f32]>,
    out: &mut [f32],
    parallel: bool,
) -> Result<()> {
    g.check()?;
    if (w.c, w.kh, w.kw) != (g.c, g.kh, g.kw) {
        return Err(KernelError::new(format!(
            "direct conv: weights for C = {}, {}x{} do not fit {g:?}",
            w.c, w.kh, w.kw
        )));
    }
    ep.check(w.m)?;
    check_len("direct conv packed input", x.len(), g.input_len())?;
    let (oh, ow) = g.out_hw();
    let n_out = w.m * oh * ow;
    check_len("direct conv output", out.len(), n_out)?;
    if let Some(r) = residual {
        check_len("direct conv residual", r.len(), n_out)?;
    }
    if n_out == 0 {
        return Ok(());
    }
    let a = Args {
        x,
        g: *g,
        sa: xq.scale,
        za: xq.zero_point as i32,
        w,
        ep: *ep,
        residual,
        out: OutPtr(out.as_mut_ptr()),
    };
    let nvec = g.vectors();
    let blocks = w.m.div_ceil(DIRECT_MC);
    let work = w.m * nvec * 16 * g.c * g.kh * g.kw;
    // Waking the pool costs more than a small image's conv takes on one thread (measured on
    // ResNet-20 at batch 1): split only large images, one task per thread.
    let parallel = parallel && work >= PAR_MIN_WORK && rayon::current_num_threads() > 1;
    let tasks = if parallel { rayon::current_num_threads() } else { 1 };
    let vb = split(nvec, tasks.div_ceil(blocks).max(1), PV);
    let nv = vb.len() - 1;
    let isa = isa.effective();
    let run = |t: usize| {
        let (b, vs) = (t / nv, vb[t % nv]..vb[t % nv + 1]);
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512Vnni {
            // SAFETY: the CPU has AVX-512 VNNI (`effective`); lengths were checked above.
            unsafe { vnni::task(&a, b, vs) };
            return;
        }
        let _ = isa;
        task_scalar(&a, b, vs);
    };
    if parallel {
        for_each_task(blocks * nv, work, run);
    } else {
        (0..blocks * nv).for_each(run);
    }
    Ok(())
}

/// The epilogue of one value (as [`Int8Epilogue::apply`], plus the residual before the
/// activation).
#[inline(always)]
fn finish(a: &Args, acc: i32, ch: usize, res: Option<f32>) -> f32 {
    let b = a.ep.bias.map_or(0.0, |b| b[ch]);
    let y = acc as f32 * (a.sa * a.ep.weight_scales[ch]) + b;
    match res {
        Some(r) => a.ep.act.apply(y + r),
        None => a.ep.act.apply(y),
    }
}

/// Portable path: block `b`'s channels over vectors `vs`.
fn task_scalar(a: &Args, b: usize, vs: std::ops::Range<usize>) {
    let g = &a.g;
    let (hp, wp) = g.padded();
    let (oh, ow) = g.out_hw();
    let positions = g.positions();
    let words = a.w.block(b);
    let taps = g.kh * g.kw;
    for lane in 0..DIRECT_MC {
        let ch = b * DIRECT_MC + lane;
        if ch >= a.w.m {
            break;
        }
        let corr = a.za.wrapping_mul(a.w.row_sums[ch]);
        for q in vs.start * 16..(vs.end * 16).min(positions) {
            let (oy, ox) = (q / wp, q % wp);
            if ox >= ow {
                continue;
            }
            let mut acc = 0i32;
            for cq in 0..g.quads() {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let off = ((cq * hp + ky * g.dilation.0) * wp + kx * g.dilation.1 + q) * 4;
                        let wb = words[((cq * taps) + ky * g.kw + kx) * DIRECT_MC + lane].to_le_bytes();
                        for j in 0..4 {
                            acc = acc.wrapping_add(a.x[off + j] as i32 * wb[j] as i8 as i32);
                        }
                    }
                }
            }
            let o = (ch * oh + oy) * ow + ox;
            let y = finish(a, acc.wrapping_sub(corr), ch, a.residual.map(|r| r[o]));
            // SAFETY: (ch, oy, ox) is inside the output; tasks write disjoint channels/pixels.
            unsafe { a.out.write(o, y) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{lanes, Args, Lanes, DIRECT_MC, PV};
    use crate::epilogue::Activation;
    use std::arch::x86_64::*;

    /// `NV` vectors from position vector `v0`: the register tile over every tap, then the
    /// epilogue and the stores.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    #[inline]
    unsafe fn tile<const NV: usize>(a: &Args, b: usize, v0: usize, words: *const i32) {
        unsafe {
            let g = &a.g;
            let (hp, wp) = g.padded();
            let (oh, ow) = g.out_hw();
            let mut acc = [[_mm512_setzero_si512(); NV]; DIRECT_MC];
            let base = a.x.as_ptr().add(v0 * 64);
            let mut wq = words;
            for cq in 0..g.quads() {
                for ky in 0..g.kh {
                    let row = base.add((cq * hp + ky * g.dilation.0) * wp * 4);
                    for kx in 0..g.kw {
                        let p = row.add(kx * g.dilation.1 * 4);
                        let xv: [__m512i; NV] =
                            std::array::from_fn(|v| _mm512_loadu_si512(p.add(v * 64) as *const _));
                        for c in 0..DIRECT_MC {
                            let wb = _mm512_set1_epi32(*wq.add(c));
                            for v in 0..NV {
                                acc[c][v] = _mm512_dpbusd_epi32(acc[c][v], xv[v], wb);
                            }
                        }
                        wq = wq.add(DIRECT_MC);
                    }
                }
            }
            let positions = g.positions();
            let ln: [Lanes; NV] = std::array::from_fn(|v| lanes(v0 + v, wp, ow, positions));
            let plane = oh * ow;
            for c in 0..DIRECT_MC {
                let ch = b * DIRECT_MC + c;
                if ch >= a.w.m {
                    break;
                }
                let corr = _mm512_set1_epi32(a.za.wrapping_mul(a.w.row_sums[ch]));
                let s = _mm512_set1_ps(a.sa * a.ep.weight_scales[ch]);
                let bias = _mm512_set1_ps(a.ep.bias.map_or(0.0, |b| b[ch]));
                for v in 0..NV {
                    let l = ln[v];
                    if l.count == 0 {
                        continue;
                    }
                    let mut y = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[c][v], corr));
                    y = _mm512_add_ps(_mm512_mul_ps(y, s), bias);
                    if l.mask != u16::MAX {
                        y = _mm512_maskz_compress_ps(l.mask, y);
                    }
                    let keep: u16 = if l.count == 16 { u16::MAX } else { (1u16 << l.count) - 1 };
                    let o = ch * plane + l.dst;
                    if let Some(r) = a.residual {
                        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(keep, r.as_ptr().add(o)));
                    }
                    y = match a.ep.act {
                        Activation::None => y,
                        Activation::Relu => _mm512_max_ps(y, _mm512_setzero_ps()),
                        Activation::Clip { lo, hi } => {
                            _mm512_min_ps(_mm512_max_ps(y, _mm512_set1_ps(lo)), _mm512_set1_ps(hi))
                        }
                    };
                    _mm512_mask_storeu_ps(a.out.0.add(o), keep, y);
                }
            }
        }
    }

    /// Block `b`'s channels over vectors `vs`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn task(a: &Args, b: usize, vs: std::ops::Range<usize>) {
        let words = a.w.block(b).as_ptr();
        let mut v = vs.start;
        unsafe {
            while v + PV <= vs.end {
                tile::<PV>(a, b, v, words);
                v += PV;
            }
            match vs.end - v {
                2 => tile::<2>(a, b, v, words),
                1 => tile::<1>(a, b, v, words),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    /// Naive NCHW convolution of u8 codes (the definition).
    #[allow(clippy::too_many_arguments)]
    fn naive(x: &[u8], g: &DirectGeom, za: u8, w: &[i8], m: usize) -> Vec<i32> {
        let (oh, ow) = g.out_hw();
        let mut out = vec![0i32; m * oh * ow];
        for o in 0..m {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i32;
                    for c in 0..g.c {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let y = (oy + ky * g.dilation.0) as isize - g.pad.0 as isize;
                                let xx = (ox + kx * g.dilation.1) as isize - g.pad.1 as isize;
                                let v = if y < 0 || xx < 0 || y >= g.h as isize || xx >= g.w as isize {
                                    za
                                } else {
                                    x[(c * g.h + y as usize) * g.w + xx as usize]
                                };
                                let wv = w[((o * g.c + c) * g.kh + ky) * g.kw + kx] as i32;
                                acc += (v as i32 - za as i32) * wv;
                            }
                        }
                    }
                    out[(o * oh + oy) * ow + ox] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn every_path_matches_the_definition() {
        let geoms = [
            (DirectGeom { c: 16, h: 8, w: 8, kh: 3, kw: 3, pad: (1, 1, 1, 1), dilation: (1, 1) }, 16),
            (DirectGeom { c: 3, h: 7, w: 5, kh: 3, kw: 2, pad: (1, 0, 2, 1), dilation: (1, 2) }, 11),
            (DirectGeom { c: 6, h: 1, w: 19, kh: 1, kw: 1, pad: (0, 0, 0, 0), dilation: (1, 1) }, 9),
            (DirectGeom { c: 5, h: 9, w: 33, kh: 3, kw: 3, pad: (1, 1, 1, 1), dilation: (2, 1) }, 20),
            // Large enough to be split over the threads.
            (DirectGeom { c: 16, h: 40, w: 40, kh: 3, kw: 3, pad: (1, 1, 1, 1), dilation: (1, 1) }, 24),
        ];
        for (g, m) in geoms {
            let (oh, ow) = g.out_hw();
            let x: Vec<u8> = (0..g.c * g.h * g.w).map(|i| ((i * 37 + 11) % 256) as u8).collect();
            let w: Vec<i8> = (0..m * g.c * g.kh * g.kw).map(|i| ((i * 53 + 7) % 255) as i32 as i8).collect();
            let za = 117u8;
            let want = naive(&x, &g, za, &w, m);
            let mut xp = vec![0u8; g.input_len()];
            pack_direct_input_u8(&x, &g, za, &mut xp).unwrap();
            let pw = PackedDirectI8::pack(&w, m, g.c, g.kh, g.kw).unwrap();
            let scales: Vec<f32> = (0..m).map(|j| 0.01 + j as f32 * 1e-3).collect();
            let bias: Vec<f32> = (0..m).map(|j| j as f32 * 0.5 - 3.0).collect();
            let res: Vec<f32> = (0..m * oh * ow).map(|i| (i as f32 * 0.7).sin()).collect();
            let q = QuantParams { scale: 0.03, zero_point: za };
            for act in [Activation::None, Activation::Relu, Activation::Clip { lo: -1.0, hi: 2.0 }] {
                let ep = Int8Epilogue { weight_scales: &scales, bias: Some(&bias), act };
                for residual in [None, Some(res.as_slice())] {
                    for isa in Isa::available() {
                        for parallel in [false, true] {
                            let mut y = vec![f32::NAN; m * oh * ow];
                            conv_direct_u8i8(isa, &xp, &g, q, &pw, &ep, residual, &mut y, parallel).unwrap();
                            for (i, (&got, &acc)) in y.iter().zip(&want).enumerate() {
                                let ch = i / (oh * ow);
                                let v = acc as f32 * (q.scale * scales[ch]) + bias[ch];
                                let e = act.apply(residual.map_or(v, |r| v + r[i]));
                                assert_eq!(got, e, "{isa:?} {g:?} {act:?} [{i}]");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn inconsistent_lengths_are_errors() {
        let g = DirectGeom { c: 2, h: 3, w: 3, kh: 3, kw: 3, pad: (1, 1, 1, 1), dilation: (1, 1) };
        let pw = PackedDirectI8::pack(&[1; 2 * 2 * 9], 2, 2, 3, 3).unwrap();
        let ep = Int8Epilogue { weight_scales: &[1.0, 1.0], bias: None, act: Activation::None };
        let q = QuantParams { scale: 1.0, zero_point: 0 };
        let x = vec![0u8; g.input_len()];
        let mut y = vec![0f32; 18];
        assert!(conv_direct_u8i8(Isa::detect(), &x[1..], &g, q, &pw, &ep, None, &mut y, false).is_err());
        assert!(conv_direct_u8i8(Isa::detect(), &x, &g, q, &pw, &ep, None, &mut y[1..], false).is_err());
        assert!(conv_direct_u8i8(Isa::detect(), &x, &g, q, &pw, &ep, Some(&[0.0]), &mut y, false).is_err());
        assert!(conv_direct_u8i8(Isa::detect(), &x, &g, q, &pw, &ep, None, &mut y, false).is_ok());
    }
}

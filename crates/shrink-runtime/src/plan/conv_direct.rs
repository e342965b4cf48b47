//! Direct fp32 convolution (stride 1, one group) with output pixels in the SIMD lanes: the
//! f32 counterpart of `shrink_kernels::conv_direct_u8i8`, with no im2col.
//!
//! One image is copied into a zero-padded `[C][Hp][Wp]` buffer; output pixel `(oy, ox)` is
//! computed at the flattened position `q = oy·Wp + ox`, so for input channel `c` and tap
//! `(ky, kx)` the 16 positions `q .. q + 16` read 16 contiguous floats at
//! `(c·Hp + ky·dh)·Wp + kx·dw + q`: one load feeds an FMA per output channel, the weight
//! broadcast to every lane. A register tile is 8 output channels × 3 vectors of 16 positions;
//! the right-border positions (`ox ≥ OW`) are computed and dropped at the store (`vcompressps`
//! of the valid lanes, then a masked store into the NCHW plane). The bias, a fused residual
//! and the epilogue are applied in registers.
//!
//! AVX-512 at run time; elsewhere a scalar loop (the reference of the tests).

use super::epilogue::Epilogue;
use shrink_kernels::DirectGeom;

/// Output channels per register tile.
pub const MC: usize = 8;
/// Vectors of 16 positions per register tile.
const PV: usize = 3;

/// The geometry of one image: input channels, size, kernel, padding (top, left, bottom,
/// right), dilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectF32Geo {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub pad: [usize; 4],
    pub dilation: [usize; 2],
    /// Output channels.
    pub m: usize,
}

impl DirectF32Geo {
    /// The spatial geometry, shared with the int8 direct kernel (padding, output size, the
    /// flattened positions and their 16-lane vectors are the same for both).
    fn spatial(&self) -> DirectGeom {
        DirectGeom {
            c: self.c,
            h: self.h,
            w: self.w,
            kh: self.kh,
            kw: self.kw,
            pad: (self.pad[0], self.pad[1], self.pad[2], self.pad[3]),
            dilation: (self.dilation[0], self.dilation[1]),
        }
    }

    fn padded(&self) -> (usize, usize) {
        self.spatial().padded()
    }

    /// Output height and width.
    pub fn out_hw(&self) -> (usize, usize) {
        self.spatial().out_hw()
    }

    fn positions(&self) -> usize {
        self.spatial().positions()
    }

    fn vectors(&self) -> usize {
        self.spatial().vectors()
    }

    /// Floats of the padded image buffer (with the slack the last vectors read).
    pub fn padded_len(&self) -> usize {
        let (hp, wp) = self.padded();
        let last = ((self.c.max(1) - 1) * hp + (self.kh.max(1) - 1) * self.dilation[0]) * wp
            + (self.kw.max(1) - 1) * self.dilation[1];
        (self.c * hp * wp).max(last + self.vectors() * 16)
    }
}

/// `[M, C, kh, kw]` weights as blocks of [`MC`] channels: `[C][kh][kw][MC]` each.
pub fn pack(w: &[f32], m: usize, k: usize) -> Vec<f32> {
    let blocks = m.div_ceil(MC);
    let mut p = vec![0f32; blocks * k * MC];
    for o in 0..m {
        for t in 0..k {
            p[((o / MC) * k + t) * MC + o % MC] = w[o * k + t];
        }
    }
    p
}

/// One image `x` (`[C, H, W]`) into `pad` (zeros around, [`DirectF32Geo::padded_len`]).
pub fn pad_image(x: &[f32], g: &DirectF32Geo, pad: &mut [f32]) {
    let (hp, wp) = g.padded();
    pad.fill(0.0);
    for c in 0..g.c {
        for y in 0..g.h {
            let d = (c * hp + y + g.pad[0]) * wp + g.pad[1];
            pad[d..d + g.w].copy_from_slice(&x[(c * g.h + y) * g.w..][..g.w]);
        }
    }
}

/// Output of one image: `out[M, OH, OW] = ep(conv(pad) + bias (+ residual))`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    g: &DirectF32Geo,
    pad: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    ep: Epilogue,
    out: &mut [f32],
) {
    let (oh, ow) = g.out_hw();
    let k = g.c * g.kh * g.kw;
    assert!(
        pad.len() >= g.padded_len()
            && packed.len() >= g.m.div_ceil(MC) * k * MC
            && out.len() == g.m * oh * ow
            && residual.is_none_or(|r| r.len() == out.len())
            && bias.is_none_or(|b| b.len() == g.m),
        "direct conv: operand sizes do not fit {g:?}"
    );
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F is present; the assert above bounds every access.
        unsafe { avx512::run(g, pad, packed, bias, residual, ep, out) };
        return;
    }
    run_scalar(g, pad, packed, bias, residual, ep, out)
}

/// The portable path.
pub fn run_scalar(
    g: &DirectF32Geo,
    pad: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    ep: Epilogue,
    out: &mut [f32],
) {
    let (hp, wp) = g.padded();
    let (oh, ow) = g.out_hw();
    let k = g.c * g.kh * g.kw;
    for o in 0..g.m {
        let wb = &packed[(o / MC) * k * MC..];
        for oy in 0..oh {
            for ox in 0..ow {
                let q = oy * wp + ox;
                let mut acc = 0f32;
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let t = (c * g.kh + ky) * g.kw + kx;
                            let xv = pad[(c * hp + ky * g.dilation[0]) * wp + kx * g.dilation[1] + q];
                            acc += xv * wb[t * MC + o % MC];
                        }
                    }
                }
                let i = (o * oh + oy) * ow + ox;
                let mut y = acc + bias.map_or(0.0, |b| b[o]);
                if let Some(r) = residual {
                    y += r[i];
                }
                let mut v = [y];
                ep.apply(&mut v);
                out[i] = v[0];
            }
        }
    }
}

// The register tile indexes accumulators, loads and lanes in lockstep.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{DirectF32Geo, Epilogue, MC, PV};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const NV: usize>(
        g: &DirectF32Geo,
        pad: *const f32,
        words: *const f32,
        b: usize,
        v0: usize,
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        ep: Epilogue,
        out: *mut f32,
    ) {
        unsafe {
            let (hp, wp) = g.padded();
            let (oh, ow) = g.out_hw();
            let mut acc = [[_mm512_setzero_ps(); NV]; MC];
            let base = pad.add(v0 * 16);
            let mut wq = words;
            for c in 0..g.c {
                for ky in 0..g.kh {
                    let row = base.add((c * hp + ky * g.dilation[0]) * wp);
                    for kx in 0..g.kw {
                        let p = row.add(kx * g.dilation[1]);
                        let xv: [__m512; NV] = std::array::from_fn(|v| _mm512_loadu_ps(p.add(v * 16)));
                        for o in 0..MC {
                            let wb = _mm512_set1_ps(*wq.add(o));
                            for v in 0..NV {
                                acc[o][v] = _mm512_fmadd_ps(xv[v], wb, acc[o][v]);
                            }
                        }
                        wq = wq.add(MC);
                    }
                }
            }
            let positions = g.positions();
            let plane = oh * ow;
            let lanes: [(u16, usize, usize); NV] = std::array::from_fn(|v| {
                let l = shrink_kernels::direct_lanes(v0 + v, wp, ow, positions);
                (l.mask, l.dst, l.count)
            });
            for o in 0..MC {
                let ch = b * MC + o;
                if ch >= g.m {
                    break;
                }
                let bv = _mm512_set1_ps(bias.map_or(0.0, |b| b[ch]));
                for v in 0..NV {
                    let (mask, dst, count) = lanes[v];
                    if count == 0 {
                        continue;
                    }
                    let mut y = _mm512_add_ps(acc[o][v], bv);
                    if mask != u16::MAX {
                        y = _mm512_maskz_compress_ps(mask, y);
                    }
                    let keep: u16 = if count == 16 { u16::MAX } else { (1u16 << count) - 1 };
                    let at = ch * plane + dst;
                    if let Some(r) = residual {
                        y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(keep, r.as_ptr().add(at)));
                    }
                    y = match ep {
                        Epilogue::None => y,
                        // max(x, 0) with NaN → 0, as the reference Relu.
                        Epilogue::Relu => _mm512_max_ps(y, _mm512_setzero_ps()),
                        // NaN stays NaN (the operand order makes max/min return it).
                        Epilogue::Clip { lo, hi } => {
                            _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), y))
                        }
                    };
                    _mm512_mask_storeu_ps(out.add(at), keep, y);
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(
        g: &DirectF32Geo,
        pad: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        ep: Epilogue,
        out: &mut [f32],
    ) {
        let k = g.c * g.kh * g.kw;
        let nvec = g.vectors();
        let (p, o) = (pad.as_ptr(), out.as_mut_ptr());
        for b in 0..g.m.div_ceil(MC) {
            let words = packed.as_ptr().add(b * k * MC);
            let mut v = 0;
            unsafe {
                while v + PV <= nvec {
                    tile::<PV>(g, p, words, b, v, bias, residual, ep, o);
                    v += PV;
                }
                match nvec - v {
                    2 => tile::<2>(g, p, words, b, v, bias, residual, ep, o),
                    1 => tile::<1>(g, p, words, b, v, bias, residual, ep, o),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_paths_match_a_naive_convolution() {
        let geos = [
            DirectF32Geo { c: 5, h: 7, w: 9, kh: 3, kw: 3, pad: [1; 4], dilation: [1, 1], m: 11 },
            DirectF32Geo { c: 3, h: 6, w: 33, kh: 3, kw: 2, pad: [2, 1, 1, 0], dilation: [2, 1], m: 8 },
            DirectF32Geo { c: 2, h: 1, w: 5, kh: 1, kw: 1, pad: [0; 4], dilation: [1, 1], m: 3 },
        ];
        for g in geos {
            let (oh, ow) = g.out_hw();
            let k = g.c * g.kh * g.kw;
            let x: Vec<f32> = (0..g.c * g.h * g.w).map(|i| (i as f32 * 0.37).sin()).collect();
            let w: Vec<f32> = (0..g.m * k).map(|i| (i as f32 * 0.13).cos()).collect();
            let b: Vec<f32> = (0..g.m).map(|i| i as f32 * 0.1 - 0.4).collect();
            let r: Vec<f32> = (0..g.m * oh * ow).map(|i| (i as f32 * 0.71).sin()).collect();
            let mut pad = vec![f32::NAN; g.padded_len()];
            pad_image(&x, &g, &mut pad);
            let packed = pack(&w, g.m, k);
            for ep in [Epilogue::None, Epilogue::Relu, Epilogue::Clip { lo: -0.5, hi: 0.7 }] {
                for res in [None, Some(r.as_slice())] {
                    let mut y = vec![f32::NAN; g.m * oh * ow];
                    run(&g, &pad, &packed, Some(&b), res, ep, &mut y);
                    let mut ys = vec![f32::NAN; g.m * oh * ow];
                    run_scalar(&g, &pad, &packed, Some(&b), res, ep, &mut ys);
                    for o in 0..g.m {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let mut acc = b[o];
                                for c in 0..g.c {
                                    for ky in 0..g.kh {
                                        for kx in 0..g.kw {
                                            let iy = (oy + ky * g.dilation[0]) as isize - g.pad[0] as isize;
                                            let ix = (ox + kx * g.dilation[1]) as isize - g.pad[1] as isize;
                                            if iy >= 0
                                                && ix >= 0
                                                && (iy as usize) < g.h
                                                && (ix as usize) < g.w
                                            {
                                                acc += x[(c * g.h + iy as usize) * g.w + ix as usize]
                                                    * w[o * k + (c * g.kh + ky) * g.kw + kx];
                                            }
                                        }
                                    }
                                }
                                let i = (o * oh + oy) * ow + ox;
                                let mut v = [acc + res.map_or(0.0, |r| r[i])];
                                ep.apply(&mut v);
                                for got in [y[i], ys[i]] {
                                    assert!(
                                        (got - v[0]).abs() <= 1e-4 * v[0].abs().max(1.0),
                                        "{g:?} {ep:?} [{i}]: {got} vs {}",
                                        v[0]
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

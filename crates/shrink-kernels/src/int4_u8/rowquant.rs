//! The W4A8 kernel's per-row u8 quantization of its activations: the range of a row, its codes
//! and the code sums of each scale group. The AVX-512 path gives the same bytes as the portable
//! one (the same IEEE operations in the same order: divide, round half to even, add the zero
//! point, clamp), so that every ISA computes the same integer sums.
use crate::{Isa, QuantParams};

/// The parameters of a row whose finite values span `[lo, hi]` (`lo ≤ 0 ≤ hi`): scale
/// `(hi − lo) / 255`, zero point `round(−lo / scale)`; scale 1, zero point 0 for an empty range.
pub(super) fn params_of_range(lo: f32, hi: f32) -> QuantParams {
    let s = (hi - lo) / 255.0;
    if !(s > 0.0 && s.is_finite()) {
        return QuantParams { scale: 1.0, zero_point: 0 };
    }
    QuantParams { scale: s, zero_point: (-lo / s).round().clamp(0.0, 255.0) as u8 }
}

/// `[min(x, 0), max(x, 0)]` over the finite values of `x`.
pub(super) fn range_scalar(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (0f32, 0f32);
    for &v in x {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

/// Writes the codes of `x` under `p` into `dst[..x.len()]`.
#[inline(always)]
fn codes_scalar(x: &[f32], p: QuantParams, dst: &mut [u8]) {
    for (d, &v) in dst.iter_mut().zip(x) {
        *d = p.quantize(v);
    }
}

/// Quantizes row `x` into `dst[..x.len()]` (the rest of `dst` is left as it is) and returns its
/// parameters ([`super::row_params`]); the fastest path `isa` allows.
pub(super) fn quantize_row(isa: Isa, x: &[f32], dst: &mut [u8]) -> QuantParams {
    assert!(dst.len() >= x.len(), "int4 x u8: quantized row too short");
    #[cfg(target_arch = "x86_64")]
    if matches!(isa.effective(), Isa::Avx512Vnni | Isa::Avx512) {
        // SAFETY: `effective` guarantees AVX-512 F/BW/VL; `dst` holds `x.len()` bytes.
        return unsafe { avx512::quantize_row(x, dst) };
    }
    let _ = isa;
    let (lo, hi) = range_scalar(x);
    let p = params_of_range(lo, hi);
    codes_scalar(x, p, dst);
    p
}

/// `out[g] = Σ` of the codes of group `g` (`g_codes` codes each) of the padded row `xq`.
pub(super) fn group_sums(xq: &[u8], g_codes: usize, out: &mut [i32]) {
    for (g, o) in out.iter_mut().enumerate() {
        let (a, b) = ((g * g_codes).min(xq.len()), ((g + 1) * g_codes).min(xq.len()));
        *o = xq[a..b].iter().map(|&c| c as i32).sum();
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::params_of_range;
    use crate::QuantParams;
    use std::arch::x86_64::*;

    /// Lanes `i..min(i + 16, len)`.
    #[inline(always)]
    fn lanes(len: usize, i: usize) -> __mmask16 {
        let rem = len - i;
        if rem >= 16 {
            0xFFFF
        } else {
            ((1u32 << rem) - 1) as u16
        }
    }

    /// [`super::range_scalar`] and the codes, 16 lanes at a time.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_row(x: &[f32], dst: &mut [u8]) -> QuantParams {
        unsafe {
            let (n, xp, dp) = (x.len(), x.as_ptr(), dst.as_mut_ptr());
            let inf = _mm512_set1_ps(f32::INFINITY);
            let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut i = 0;
            while i < n {
                let m = lanes(n, i);
                let v = _mm512_maskz_loadu_ps(m, xp.add(i));
                // |v| < inf is false for ±inf and NaN: only finite values widen the range.
                let fin = _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(m, _mm512_abs_ps(v), inf);
                lo = _mm512_mask_min_ps(lo, fin, lo, v);
                hi = _mm512_mask_max_ps(hi, fin, hi, v);
                i += 16;
            }
            let p = params_of_range(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
            let (s, z) = (_mm512_set1_ps(p.scale), _mm512_set1_ps(p.zero_point as f32));
            let (zero, top) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
            let mut i = 0;
            while i < n {
                let m = lanes(n, i);
                let v = _mm512_maskz_loadu_ps(m, xp.add(i));
                let q = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_div_ps(v, s),
                );
                // max(q, 0) returns its second operand, 0, for a NaN q (as `NaN as u8` is 0).
                let q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, z), zero), top);
                let b = _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(q));
                _mm_mask_storeu_epi8(dp.add(i) as *mut i8, m, b);
                i += 16;
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows with NaN, ±inf, −0, ties at .5 steps, huge values and odd lengths: every path gives
    /// the scalar bytes and parameters.
    #[test]
    fn every_isa_quantizes_rows_to_the_scalar_bytes() {
        let mut rows: Vec<Vec<f32>> = vec![
            vec![],
            vec![0.0; 17],
            vec![-0.0, 0.0, -0.0],
            vec![f32::NAN, 1.0, -2.0, f32::INFINITY, f32::NEG_INFINITY, 0.5],
            vec![f32::NAN; 5],
            vec![1e30, -1e30, 3.0],
            (0..255).map(|i| i as f32 * 0.5).collect(),
            (0..33).map(|i| (i as f32 - 16.0) * 0.25).collect(),
        ];
        let mut s = 7u32;
        for len in [1usize, 15, 16, 31, 100, 6272] {
            rows.push(
                (0..len)
                    .map(|_| {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (s >> 8) as f32 / (1u32 << 23) as f32 - 0.7
                    })
                    .collect(),
            );
        }
        for x in &rows {
            let mut want = vec![0xAAu8; x.len() + 3];
            let (lo, hi) = range_scalar(x);
            let pw = params_of_range(lo, hi);
            codes_scalar(x, pw, &mut want);
            for isa in Isa::available() {
                let mut got = vec![0xAAu8; x.len() + 3];
                let p = quantize_row(isa, x, &mut got);
                assert_eq!((p.scale, p.zero_point), (pw.scale, pw.zero_point), "{isa} len {}", x.len());
                assert_eq!(got, want, "{isa} len {}", x.len());
            }
        }
    }

    #[test]
    fn group_sums_add_each_groups_codes() {
        let xq: Vec<u8> = (0..300u32).map(|i| (i % 256) as u8).collect();
        let mut out = [0i32; 3];
        group_sums(&xq, 128, &mut out);
        let want: Vec<i32> = xq.chunks(128).map(|c| c.iter().map(|&v| v as i32).sum()).collect();
        assert_eq!(out.to_vec(), want);
    }
}

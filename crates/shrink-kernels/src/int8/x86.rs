//! x86-64 register tiles of the int8 GEMM (see [`super::pack`] for the weight layout).
//!
//! * VNNI: one `vpdpbusd` per 64-byte weight line and row (u8 × i8, 4 products per i32 lane,
//!   wrapping i32 adds: exact).
//! * AVX-512 / AVX2 without VNNI: weights sign-extended to i16, activations zero-extended to
//!   i16, `vpmaddwd` sums pairs into i32: exact (no `pmaddubsw` i16 saturation). Each channel
//!   gets two partial lanes, added when the tile is stored.
use std::arch::x86_64::*;

use super::gemm::define_task;

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
unsafe fn tile_vnni<const MR: usize, const NBK: usize>(
    xs: &[*const u8; MR],
    tails: &[u32; MR],
    kfull: usize,
    has_tail: bool,
    w: &[*const i8; NBK],
    out: &mut [[i32; 64]; MR],
) {
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); NBK]; MR];
        for q in 0..kfull {
            let wv: [__m512i; NBK] =
                std::array::from_fn(|b| _mm512_loadu_si512(w[b].add(q * 64) as *const _));
            for r in 0..MR {
                let xv = _mm512_set1_epi32((xs[r].add(q * 4) as *const i32).read_unaligned());
                for b in 0..NBK {
                    acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xv, wv[b]);
                }
            }
        }
        if has_tail {
            let wv: [__m512i; NBK] =
                std::array::from_fn(|b| _mm512_loadu_si512(w[b].add(kfull * 64) as *const _));
            for r in 0..MR {
                let xv = _mm512_set1_epi32(tails[r] as i32);
                for b in 0..NBK {
                    acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], xv, wv[b]);
                }
            }
        }
        for r in 0..MR {
            for b in 0..NBK {
                _mm512_storeu_si512(out[r].as_mut_ptr().add(b * 16) as *mut _, acc[r][b]);
            }
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
#[inline]
unsafe fn tile_avx512<const MR: usize, const NBK: usize>(
    xs: &[*const u8; MR],
    tails: &[u32; MR],
    kfull: usize,
    has_tail: bool,
    w: &[*const i8; NBK],
    out: &mut [[i32; 64]; MR],
) {
    unsafe {
        let mut acc = [[[_mm512_setzero_si512(); 2]; NBK]; MR];
        let nq = kfull + has_tail as usize;
        for q in 0..nq {
            let wv: [[__m512i; 2]; NBK] = std::array::from_fn(|b| {
                std::array::from_fn(|h| {
                    _mm512_cvtepi8_epi16(_mm256_loadu_si256(w[b].add(q * 64 + h * 32) as *const _))
                })
            });
            for r in 0..MR {
                let quad = if q < kfull {
                    (xs[r].add(q * 4) as *const i32).read_unaligned()
                } else {
                    tails[r] as i32
                };
                let xv = _mm512_cvtepu8_epi16(_mm256_set1_epi32(quad));
                for b in 0..NBK {
                    for h in 0..2 {
                        acc[r][b][h] = _mm512_add_epi32(acc[r][b][h], _mm512_madd_epi16(wv[b][h], xv));
                    }
                }
            }
        }
        let mut t = [0i32; 16];
        for r in 0..MR {
            for b in 0..NBK {
                for h in 0..2 {
                    _mm512_storeu_si512(t.as_mut_ptr() as *mut _, acc[r][b][h]);
                    for c in 0..8 {
                        out[r][b * 16 + h * 8 + c] = t[2 * c].wrapping_add(t[2 * c + 1]);
                    }
                }
            }
        }
    }
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_avx2<const MR: usize, const NBK: usize>(
    xs: &[*const u8; MR],
    tails: &[u32; MR],
    kfull: usize,
    has_tail: bool,
    w: &[*const i8; NBK],
    out: &mut [[i32; 64]; MR],
) {
    unsafe {
        let mut acc = [[[_mm256_setzero_si256(); 4]; NBK]; MR];
        let nq = kfull + has_tail as usize;
        for q in 0..nq {
            let wv: [[__m256i; 4]; NBK] = std::array::from_fn(|b| {
                std::array::from_fn(|s| {
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(w[b].add(q * 64 + s * 16) as *const _))
                })
            });
            for r in 0..MR {
                let quad = if q < kfull {
                    (xs[r].add(q * 4) as *const i32).read_unaligned()
                } else {
                    tails[r] as i32
                };
                let xv = _mm256_cvtepu8_epi16(_mm_set1_epi32(quad));
                for b in 0..NBK {
                    for s in 0..4 {
                        acc[r][b][s] = _mm256_add_epi32(acc[r][b][s], _mm256_madd_epi16(wv[b][s], xv));
                    }
                }
            }
        }
        let mut t = [0i32; 8];
        for r in 0..MR {
            for b in 0..NBK {
                for s in 0..4 {
                    _mm256_storeu_si256(t.as_mut_ptr() as *mut _, acc[r][b][s]);
                    for c in 0..4 {
                        out[r][b * 16 + s * 4 + c] = t[2 * c].wrapping_add(t[2 * c + 1]);
                    }
                }
            }
        }
    }
}

define_task!(
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    task_vnni,
    tile_vnni,
    4,
    4,
    2
);
define_task!(
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    task_avx512,
    tile_avx512,
    4,
    4,
    2
);
define_task!(
    #[target_feature(enable = "avx2,fma")]
    task_avx2,
    tile_avx2,
    2,
    2,
    1
);

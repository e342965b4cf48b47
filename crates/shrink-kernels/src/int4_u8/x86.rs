//! x86-64 register tiles of the W4A8 kernel. A layout tile holds [`NR`] channels whose chunks
//! are consecutive 64-byte lines; one row of activations takes the whole tile (`NR` channels,
//! separate accumulators for the low and high nibbles: `2·NR` independent `vpdpbusd` chains),
//! several rows take it in halves of [`HALF`] channels (`rows × HALF` accumulators). Each
//! group's i32 sums are reduced to scalars and combined by [`Args::add_group`], as on the
//! portable path.
use std::arch::x86_64::*;

use super::{Args, CHUNK, HALF, MR, NR};

/// Bytes ahead of the current chunk that the batch-1 tile prefetches (eight chunks of a tile).
const PREFETCH: usize = 8 * NR * 64;

/// AVX-512 VNNI: channels `n0..n1` (`n0` a multiple of [`NR`]) for every row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
pub(super) unsafe fn task_vnni(a: &Args, n0: usize, n1: usize) {
    let mut n = n0;
    while n < n1 {
        let nr = (n1 - n).min(NR);
        let mut row = 0;
        while row + MR <= a.m {
            for j0 in (0..nr).step_by(HALF) {
                unsafe { rows_vnni::<MR>(a, row, n, nr, j0) };
            }
            row += MR;
        }
        while row < a.m {
            unsafe { one_vnni(a, row, n, nr) };
            row += 1;
        }
        n += nr;
    }
}

/// One row × the [`NR`] channels of the tile at `n` (`nr` of them real).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
unsafe fn one_vnni(a: &Args, row: usize, n: usize, nr: usize) {
    unsafe {
        let mask = _mm512_set1_epi8(0x0F);
        let xr = a.xq.as_ptr().add(row * a.kp);
        let mut s = [0f32; NR];
        for g in 0..a.w.ng {
            let (c0, c1) = a.chunks(g);
            let mut lo = [_mm512_setzero_si512(); NR];
            let mut hi = [_mm512_setzero_si512(); NR];
            let mut p = a.tile_ptr(n, c0);
            for c in c0..c1 {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + 256) as *const i8);
                let x0 = _mm512_loadu_si512(xr.add(c * CHUNK) as *const _);
                let x1 = _mm512_loadu_si512(xr.add(c * CHUNK + 64) as *const _);
                for j in 0..NR {
                    let v = _mm512_loadu_si512(p.add(j * 64) as *const _);
                    lo[j] = _mm512_dpbusd_epi32(lo[j], x0, _mm512_and_si512(v, mask));
                    hi[j] = _mm512_dpbusd_epi32(hi[j], x1, _mm512_and_si512(_mm512_srli_epi16::<4>(v), mask));
                }
                p = p.add(NR * 64);
            }
            for j in 0..nr {
                let d = _mm512_reduce_add_epi32(_mm512_add_epi32(lo[j], hi[j]));
                a.add_group(&mut s[j], row, n + j, g, d);
            }
        }
        for (j, &sj) in s.iter().enumerate().take(nr) {
            a.put(row, n + j, sj);
        }
    }
}

/// `R` rows × channels `n + j0 .. n + j0 + HALF` (those below `nr` real): each line is
/// unpacked once and fed to `vpdpbusd` for every row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
unsafe fn rows_vnni<const R: usize>(a: &Args, row: usize, n: usize, nr: usize, j0: usize) {
    unsafe {
        let mask = _mm512_set1_epi8(0x0F);
        let xp: [*const u8; R] = std::array::from_fn(|r| a.xq.as_ptr().add((row + r) * a.kp));
        let jn = (nr - j0).min(HALF);
        let mut s = [[0f32; HALF]; R];
        for g in 0..a.w.ng {
            let (c0, c1) = a.chunks(g);
            let mut acc = [[_mm512_setzero_si512(); HALF]; R];
            let mut p = a.tile_ptr(n, c0).add(j0 * 64);
            for c in c0..c1 {
                let mut lo = [_mm512_setzero_si512(); HALF];
                let mut hi = [_mm512_setzero_si512(); HALF];
                for j in 0..HALF {
                    let v = _mm512_loadu_si512(p.add(j * 64) as *const _);
                    lo[j] = _mm512_and_si512(v, mask);
                    hi[j] = _mm512_and_si512(_mm512_srli_epi16::<4>(v), mask);
                }
                for r in 0..R {
                    let x0 = _mm512_loadu_si512(xp[r].add(c * CHUNK) as *const _);
                    let x1 = _mm512_loadu_si512(xp[r].add(c * CHUNK + 64) as *const _);
                    for j in 0..HALF {
                        acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], x0, lo[j]);
                        acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], x1, hi[j]);
                    }
                }
                p = p.add(NR * 64);
            }
            for r in 0..R {
                for j in 0..jn {
                    let d = _mm512_reduce_add_epi32(acc[r][j]);
                    a.add_group(&mut s[r][j], row + r, n + j0 + j, g, d);
                }
            }
        }
        for (r, sr) in s.iter().enumerate() {
            for (j, &v) in sr.iter().enumerate().take(jn) {
                a.put(row + r, n + j0 + j, v);
            }
        }
    }
}

/// AVX2 (also the AVX-512 level without VNNI): `pmaddubsw` u8 × u4 pairs into i16 (at most
/// 4 · 2 · 255 · 15 = 30 600: no saturation when four are added), `pmaddwd` into i32; tiles of
/// 2 rows (or 1) × [`HALF`] channels.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn task_avx2(a: &Args, n0: usize, n1: usize) {
    let mut n = n0;
    while n < n1 {
        let nr = (n1 - n).min(NR);
        for j0 in (0..nr).step_by(HALF) {
            let mut row = 0;
            while row + 2 <= a.m {
                unsafe { rows_avx2::<2>(a, row, n, nr, j0) };
                row += 2;
            }
            while row < a.m {
                unsafe { rows_avx2::<1>(a, row, n, nr, j0) };
                row += 1;
            }
        }
        n += nr;
    }
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows_avx2<const R: usize>(a: &Args, row: usize, n: usize, nr: usize, j0: usize) {
    unsafe {
        let mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let xp: [*const u8; R] = std::array::from_fn(|r| a.xq.as_ptr().add((row + r) * a.kp));
        let jn = (nr - j0).min(HALF);
        let mut s = [[0f32; HALF]; R];
        for g in 0..a.w.ng {
            let (c0, c1) = a.chunks(g);
            let mut acc = [[_mm256_setzero_si256(); HALF]; R];
            let mut p = a.tile_ptr(n, c0).add(j0 * 64);
            for c in c0..c1 {
                // Bytes 0..32: K 0..32 (low) and 64..96 (high); bytes 32..64: 32..64, 96..128.
                for j in 0..HALF {
                    let v0 = _mm256_loadu_si256(p.add(j * 64) as *const _);
                    let v1 = _mm256_loadu_si256(p.add(j * 64 + 32) as *const _);
                    let wv = [
                        _mm256_and_si256(v0, mask),
                        _mm256_and_si256(v1, mask),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(v0), mask),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(v1), mask),
                    ];
                    for r in 0..R {
                        let xb = xp[r].add(c * CHUNK);
                        let xv: [__m256i; 4] =
                            std::array::from_fn(|q| _mm256_loadu_si256(xb.add(32 * q) as *const _));
                        let p01 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(xv[0], wv[0]),
                            _mm256_maddubs_epi16(xv[1], wv[1]),
                        );
                        let p23 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(xv[2], wv[2]),
                            _mm256_maddubs_epi16(xv[3], wv[3]),
                        );
                        let pr = _mm256_madd_epi16(_mm256_add_epi16(p01, p23), ones);
                        acc[r][j] = _mm256_add_epi32(acc[r][j], pr);
                    }
                }
                p = p.add(NR * 64);
            }
            for r in 0..R {
                for j in 0..jn {
                    a.add_group(&mut s[r][j], row + r, n + j0 + j, g, hsum_epi32(acc[r][j]));
                }
            }
        }
        for (r, sr) in s.iter().enumerate() {
            for (j, &v) in sr.iter().enumerate().take(jn) {
                a.put(row + r, n + j0 + j, v);
            }
        }
    }
}

//! Int4 weight-only linear layer: `Y[M, N] = act(X[M, K] · Ŵᵀ + bias)` with f32 activations and
//! `Ŵ[n, k] = scale[n, k / G] · q[n, k]`, `q ∈ [−8, 7]` packed two per byte, scales per output
//! channel or per group of `G` (a multiple of 32) along K.
//!
//! Layout: each row holds `ceil(K / 32)` chunks of 16 bytes; byte `i` of a chunk holds code
//! `k0 + i` in its low nibble and `k0 + 16 + i` in its high nibble (zero-padded past K), so one
//! 16-byte load widens to two vectors of 16 consecutive K. Codes are widened in registers
//! (AVX-512: a 16-entry `vpermps` table lookup; AVX2: shifts + `cvtdq2ps`), never to memory.
//! A batch-1 call streams half the bytes of the int8 path. From 2 rows on, the AVX-512 path
//! decodes each chunk once for a pair of rows.
use crate::epilogue::Activation;
use crate::error::{check_len, mul, KernelError, Result};
use crate::par::{for_each_task, split, task_count, OutPtr};
use crate::Isa;

/// Where the int4 scales apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int4Group {
    /// One scale per output channel.
    PerChannel,
    /// One scale per `G` consecutive K of a channel; `G` a positive multiple of 32 (32/64/128).
    Group(usize),
}

/// Int4 weights `[N, K]` packed two per byte, with their scales.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedI4 {
    n: usize,
    k: usize,
    /// 32-code chunks per row.
    kc: usize,
    /// Chunks per scale group.
    gc: usize,
    /// Scale groups per row.
    ng: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
}

impl PackedI4 {
    /// Packs row-major codes `q` (`[n, k]`, each in `-8..=7`) with `scales`
    /// (`[n, groups]`: `groups` = 1 per channel or `ceil(k / G)`).
    pub fn pack(q: &[i8], scales: &[f32], n: usize, k: usize, group: Int4Group) -> Result<PackedI4> {
        check_len("int4 codes", q.len(), mul("int4 codes", n, k)?)?;
        let kc = k.div_ceil(32);
        let (gc, ng) = match group {
            Int4Group::PerChannel => (kc.max(1), 1),
            Int4Group::Group(g) if g > 0 && g % 32 == 0 => (g / 32, k.div_ceil(g).max(1)),
            Int4Group::Group(g) => {
                return Err(KernelError::new(format!("int4 group size {g} is not a positive multiple of 32")))
            }
        };
        check_len("int4 scales", scales.len(), mul("int4 scales", n, ng)?)?;
        if let Some(bad) = q.iter().find(|&&v| !(-8..=7).contains(&v)) {
            return Err(KernelError::new(format!("int4 code {bad} outside -8..=7")));
        }
        let mut data = vec![0u8; n * kc * 16];
        for r in 0..n {
            for kk in 0..k {
                let code = (q[r * k + kk] as u8) & 0xF;
                let (c, i) = (kk / 32, kk % 32);
                let byte = &mut data[(r * kc + c) * 16 + i % 16];
                *byte |= if i < 16 { code } else { code << 4 };
            }
        }
        Ok(PackedI4 { n, k, kc, gc, ng, data, scales: scales.to_vec() })
    }

    /// Symmetric quantization of f32 weights `w` (`[n, k]`): per scale group,
    /// `scale = max|w| / 7` (1 for an all-zero group), `q = clamp(round(w / scale), −8, 7)`.
    pub fn quantize(w: &[f32], n: usize, k: usize, group: Int4Group) -> Result<PackedI4> {
        check_len("int4 f32 weights", w.len(), mul("int4 f32 weights", n, k)?)?;
        let g = match group {
            Int4Group::PerChannel => k.max(1),
            Int4Group::Group(g) => g.max(1),
        };
        let ng = if matches!(group, Int4Group::PerChannel) { 1 } else { k.div_ceil(g).max(1) };
        let mut scales = vec![1f32; n * ng];
        let mut q = vec![0i8; n * k];
        for r in 0..n {
            for gi in 0..ng {
                let (a, b) = (gi * g, ((gi + 1) * g).min(k));
                let amax = w[r * k + a..r * k + b].iter().fold(0f32, |m, v| m.max(v.abs()));
                let s = if amax > 0.0 { amax / 7.0 } else { 1.0 };
                scales[r * ng + gi] = s;
                for kk in a..b {
                    q[r * k + kk] = (w[r * k + kk] / s).round().clamp(-8.0, 7.0) as i8;
                }
            }
        }
        PackedI4::pack(&q, &scales, n, k, group)
    }

    /// Output channels `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes of packed codes (what a batch-1 call streams).
    pub fn packed_bytes(&self) -> usize {
        self.data.len()
    }

    /// The code of `(r, kk)`. Panics if `r >= n` or `kk >= k` (like slice indexing).
    pub fn code(&self, r: usize, kk: usize) -> i8 {
        let (c, i) = (kk / 32, kk % 32);
        let b = self.data[(r * self.kc + c) * 16 + i % 16];
        let nib = if i < 16 { b & 0xF } else { b >> 4 };
        ((nib << 4) as i8) >> 4
    }

    /// The scale of `(r, kk)`. Panics if `r >= n` or `kk >= k` (like slice indexing).
    pub fn scale(&self, r: usize, kk: usize) -> f32 {
        self.scales[r * self.ng + (kk / 32) / self.gc]
    }

    /// The dequantized `[n, k]` weights `scale · q`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut w = vec![0f32; self.n * self.k];
        for r in 0..self.n {
            for kk in 0..self.k {
                w[r * self.k + kk] = self.scale(r, kk) * self.code(r, kk) as f32;
            }
        }
        w
    }
}

/// Int4 weight-only linear layer, for `x` `[m, K]` and `out` `[m, N]` (row-major f32):
/// `out[m, n] = act(bias[n] + Σ_g scale[n, g] · Σ_{k ∈ g} x[m, k]·q[n, k])`. SIMD paths sum in
/// a different order than the scalar one: results agree to f32 rounding (tests: within
/// 3e-5 · Σ|x·ŵ|).
///
/// ```
/// use shrink_kernels::{linear_i4, Activation, Int4Group, Isa, PackedI4};
/// let w = PackedI4::pack(&[1, -2, 7, -8], &[0.5, 0.25], 2, 2, Int4Group::PerChannel).unwrap();
/// let mut y = [0f32; 2];
/// linear_i4(Isa::detect(), &[2.0, 1.0], 1, &w, Some(&[0.0, 1.0]), Activation::None, &mut y).unwrap();
/// assert_eq!(y, [0.5 * (2.0 - 2.0), 0.25 * (14.0 - 8.0) + 1.0]);
/// ```
pub fn linear_i4(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &PackedI4,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    check_len("int4 activations", x.len(), mul("int4 activations", m, w.k)?)?;
    check_len("int4 output", out.len(), mul("int4 output", m, w.n)?)?;
    if let Some(b) = bias {
        check_len("int4 bias", b.len(), w.n)?;
    }
    if m == 0 || w.n == 0 {
        return Ok(());
    }
    let work = m.saturating_mul(w.n).saturating_mul(w.k.max(1));
    let bounds = split(w.n, task_count(work), NR);
    let isa = isa.effective();
    let o = OutPtr(out.as_mut_ptr());
    #[allow(unused_unsafe)]
    for_each_task(bounds.len() - 1, work, |t| {
        let a = Args { x, m, w, bias, act, out: o };
        // SAFETY: `isa` is supported (`effective`); task t writes channels bounds[t]..bounds[t+1].
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni | Isa::Avx512 => x86::task_avx512(&a, bounds[t], bounds[t + 1]),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => x86::task_avx2(&a, bounds[t], bounds[t + 1]),
                _ => task_scalar(&a, bounds[t], bounds[t + 1]),
            }
        }
    });
    Ok(())
}

/// Output channels per register tile.
const NR: usize = 4;

struct Args<'a> {
    x: &'a [f32],
    m: usize,
    w: &'a PackedI4,
    bias: Option<&'a [f32]>,
    act: Activation,
    out: OutPtr<f32>,
}

impl Args<'_> {
    /// Writes `act(v + bias[n])` at `(row, n)`.
    #[inline(always)]
    fn put(&self, row: usize, n: usize, v: f32) {
        let b = self.bias.map_or(0.0, |b| b[n]);
        // SAFETY: (row, n) is in bounds; channel n belongs to the calling task only.
        unsafe { self.out.write(row * self.w.n + n, self.act.apply(v + b)) };
    }

    /// Row `row` of X, and its last partial 32-chunk zero-padded.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    #[inline(always)]
    fn row(&self, row: usize) -> (&[f32], [f32; 32]) {
        let k = self.w.k;
        let xr = &self.x[row * k..(row + 1) * k];
        let mut tail = [0f32; 32];
        let full = k / 32 * 32;
        tail[..k - full].copy_from_slice(&xr[full..]);
        (xr, tail)
    }
}

fn task_scalar(a: &Args, n0: usize, n1: usize) {
    let w = a.w;
    for n in n0..n1 {
        for row in 0..a.m {
            let xr = &a.x[row * w.k..(row + 1) * w.k];
            let mut tot = 0f32;
            for g in 0..w.ng {
                let (k0, k1) = (g * w.gc * 32, ((g + 1) * w.gc * 32).min(w.k));
                let mut s = 0f32;
                for kk in k0..k1 {
                    s += xr[kk] * w.code(n, kk) as f32;
                }
                tot += s * w.scales[n * w.ng + g];
            }
            a.put(row, n, tot);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Args, NR};

    /// AVX-512: `NR` channels of one row at a time; codes decoded by a `vpermps` lookup.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn task_avx512(a: &Args, n0: usize, n1: usize) {
        let mut n = n0;
        while n < n1 {
            let nr = (n1 - n).min(NR);
            let pairs = a.m / 2;
            for p in 0..pairs {
                let mut y = [[0f32; NR]; 2];
                unsafe {
                    match nr {
                        4 => tile512x2::<4>(a, 2 * p, n, &mut y),
                        3 => tile512x2::<3>(a, 2 * p, n, &mut y),
                        2 => tile512x2::<2>(a, 2 * p, n, &mut y),
                        _ => tile512x2::<1>(a, 2 * p, n, &mut y),
                    }
                }
                for (r, yr) in y.iter().enumerate() {
                    for (j, &v) in yr.iter().enumerate().take(nr) {
                        a.put(2 * p + r, n + j, v);
                    }
                }
            }
            for row in 2 * pairs..a.m {
                let mut y = [0f32; NR];
                unsafe {
                    match nr {
                        4 => tile512::<4>(a, row, n, &mut y),
                        3 => tile512::<3>(a, row, n, &mut y),
                        2 => tile512::<2>(a, row, n, &mut y),
                        _ => tile512::<1>(a, row, n, &mut y),
                    }
                }
                for (j, &v) in y.iter().enumerate().take(nr) {
                    a.put(row, n + j, v);
                }
            }
            n += nr;
        }
    }

    /// Two rows × `R` channels: each 16-byte chunk is decoded and scaled once, then used by
    /// both rows (halves the decode work per multiply-add from batch 2 on).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn tile512x2<const R: usize>(a: &Args, row: usize, n: usize, y: &mut [[f32; NR]; 2]) {
        let w = a.w;
        let (xa, ta) = a.row(row);
        let (xb, tb) = a.row(row + 1);
        let full = w.k / 32;
        let table = _mm512_setr_ps(0., 1., 2., 3., 4., 5., 6., 7., -8., -7., -6., -5., -4., -3., -2., -1.);
        let wp: [*const u8; R] = std::array::from_fn(|j| unsafe { w.data.as_ptr().add((n + j) * w.kc * 16) });
        let mut acc = [[[_mm512_setzero_ps(); 2]; R]; 2];
        for c in 0..w.kc {
            let mut lo = [_mm512_setzero_ps(); R];
            let mut hi = [_mm512_setzero_ps(); R];
            for j in 0..R {
                let s = _mm512_set1_ps(w.scales[(n + j) * w.ng + c / w.gc]);
                let v = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(wp[j].add(c * 16) as *const _) });
                lo[j] = _mm512_mul_ps(_mm512_permutexvar_ps(v, table), s);
                hi[j] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32::<4>(v), table), s);
            }
            for (r, (xr, tail)) in [(xa, &ta), (xb, &tb)].into_iter().enumerate() {
                let xp = if c < full { unsafe { xr.as_ptr().add(c * 32) } } else { tail.as_ptr() };
                let (x0, x1) = unsafe { (_mm512_loadu_ps(xp), _mm512_loadu_ps(xp.add(16))) };
                for j in 0..R {
                    acc[r][j][0] = _mm512_fmadd_ps(lo[j], x0, acc[r][j][0]);
                    acc[r][j][1] = _mm512_fmadd_ps(hi[j], x1, acc[r][j][1]);
                }
            }
        }
        for r in 0..2 {
            for j in 0..R {
                y[r][j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][j][0], acc[r][j][1]));
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    #[inline]
    unsafe fn tile512<const R: usize>(a: &Args, row: usize, n: usize, y: &mut [f32; NR]) {
        let w = a.w;
        let (xr, tail) = a.row(row);
        let full = w.k / 32;
        let table = _mm512_setr_ps(0., 1., 2., 3., 4., 5., 6., 7., -8., -7., -6., -5., -4., -3., -2., -1.);
        let wp: [*const u8; R] = std::array::from_fn(|j| unsafe { w.data.as_ptr().add((n + j) * w.kc * 16) });
        let mut tot = [_mm512_setzero_ps(); R];
        for g in 0..w.ng {
            let (c0, c1) = (g * w.gc, ((g + 1) * w.gc).min(w.kc));
            let mut lo_acc = [_mm512_setzero_ps(); R];
            let mut hi_acc = [_mm512_setzero_ps(); R];
            for c in c0..c1 {
                let xp = if c < full { unsafe { xr.as_ptr().add(c * 32) } } else { tail.as_ptr() };
                let (x0, x1) = unsafe { (_mm512_loadu_ps(xp), _mm512_loadu_ps(xp.add(16))) };
                for j in 0..R {
                    let v = _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(wp[j].add(c * 16) as *const _) });
                    let lo = _mm512_permutexvar_ps(v, table);
                    let hi = _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(v), table);
                    lo_acc[j] = _mm512_fmadd_ps(lo, x0, lo_acc[j]);
                    hi_acc[j] = _mm512_fmadd_ps(hi, x1, hi_acc[j]);
                }
            }
            for j in 0..R {
                let s = _mm512_set1_ps(w.scales[(n + j) * w.ng + g]);
                tot[j] = _mm512_fmadd_ps(_mm512_add_ps(lo_acc[j], hi_acc[j]), s, tot[j]);
            }
        }
        for j in 0..R {
            y[j] = _mm512_reduce_add_ps(tot[j]);
        }
    }

    /// AVX2: `NR` channels of one row; nibbles sign-extended with shifts, converted to f32.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn task_avx2(a: &Args, n0: usize, n1: usize) {
        let mut n = n0;
        while n < n1 {
            let nr = (n1 - n).min(NR);
            for row in 0..a.m {
                let mut y = [0f32; NR];
                unsafe {
                    match nr {
                        4 => tile256::<4>(a, row, n, &mut y),
                        3 => tile256::<3>(a, row, n, &mut y),
                        2 => tile256::<2>(a, row, n, &mut y),
                        _ => tile256::<1>(a, row, n, &mut y),
                    }
                }
                for (j, &v) in y.iter().enumerate().take(nr) {
                    a.put(row, n + j, v);
                }
            }
            n += nr;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile256<const R: usize>(a: &Args, row: usize, n: usize, y: &mut [f32; NR]) {
        let w = a.w;
        let (xr, tail) = a.row(row);
        let full = w.k / 32;
        let wp: [*const u8; R] = std::array::from_fn(|j| unsafe { w.data.as_ptr().add((n + j) * w.kc * 16) });
        let mut tot = [_mm256_setzero_ps(); R];
        for g in 0..w.ng {
            let (c0, c1) = (g * w.gc, ((g + 1) * w.gc).min(w.kc));
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for c in c0..c1 {
                let xp = if c < full { unsafe { xr.as_ptr().add(c * 32) } } else { tail.as_ptr() };
                for h in 0..2 {
                    // Bytes 8h..8h+8: low nibbles are K 8h.., high nibbles K 16+8h..
                    let (xl, xh) =
                        unsafe { (_mm256_loadu_ps(xp.add(8 * h)), _mm256_loadu_ps(xp.add(16 + 8 * h))) };
                    for j in 0..R {
                        let v = _mm256_cvtepu8_epi32(unsafe {
                            _mm_loadl_epi64(wp[j].add(c * 16 + 8 * h) as *const _)
                        });
                        let lo = _mm256_cvtepi32_ps(_mm256_srai_epi32::<28>(_mm256_slli_epi32::<28>(v)));
                        let hi = _mm256_cvtepi32_ps(_mm256_srai_epi32::<28>(_mm256_slli_epi32::<24>(v)));
                        acc[j][h] = _mm256_fmadd_ps(lo, xl, acc[j][h]);
                        acc[j][h] = _mm256_fmadd_ps(hi, xh, acc[j][h]);
                    }
                }
            }
            for j in 0..R {
                let s = _mm256_set1_ps(w.scales[(n + j) * w.ng + g]);
                tot[j] = _mm256_fmadd_ps(_mm256_add_ps(acc[j][0], acc[j][1]), s, tot[j]);
            }
        }
        let mut t = [0f32; 8];
        for j in 0..R {
            unsafe { _mm256_storeu_ps(t.as_mut_ptr(), tot[j]) };
            y[j] = t.iter().sum();
        }
    }
}

//! Sparse linear kernels `Y[M, N] = act(X[M, K] · Wᵀ + bias)` over the formats of
//! [`super::formats`].
//!
//! * M = 1: one sparse dot product per output row; CSR rows use AVX-512 / AVX2 gathers.
//! * M > 1: X is transposed once into `Xᵀ` (`[K, M]` padded to tiles of 16 rows), so every
//!   nonzero `W[n, c]` adds `W[n, c] · Xᵀ[c, tile]` to 16 outputs at once (one vector FMA).
//!
//! Rows are split across threads; the generic code is compiled once per ISA.
use super::formats::{Block14, Csr, CsrI8};
use crate::epilogue::Activation;
use crate::error::{check_len, mul, Result};
use crate::par::{for_each_task, split, task_count, OutPtr};
use crate::Isa;

/// Batch rows per transposed tile.
const T: usize = 16;

/// What the kernels need from a sparse format.
pub(crate) trait Rows: Sync {
    fn n(&self) -> usize;
    fn k(&self) -> usize;
    fn nnz(&self) -> usize;
    /// `Σ_c W[r, c] · x[c]` (before the row scale); `x` is padded to a multiple of 4.
    fn dot(&self, r: usize, x: &[f32]) -> f32;
    /// [`Rows::dot`] on a SIMD path of `isa` when the format has one.
    fn dot_isa(&self, _isa: Isa, r: usize, x: &[f32]) -> f32 {
        self.dot(r, x)
    }
    /// `acc[l] += Σ_c W[r, c] · xt[c · T + l]`.
    fn dot_t(&self, r: usize, xt: &[f32], acc: &mut [f32; T]);
    /// Scale applied to row r's sums.
    fn scale(&self, _r: usize) -> f32 {
        1.0
    }
}

impl Rows for Csr {
    fn n(&self) -> usize {
        self.n
    }
    fn k(&self) -> usize {
        self.k
    }
    fn nnz(&self) -> usize {
        self.values.len()
    }
    #[inline(always)]
    fn dot(&self, r: usize, x: &[f32]) -> f32 {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        dot_scalar(&self.indices[a..b], &self.values[a..b], x, |v| v)
    }
    #[inline(always)]
    fn dot_isa(&self, isa: Isa, r: usize, x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            let (idx, v) = (&self.indices[a..b], &self.values[a..b]);
            // SAFETY: indices < k <= x.len(); the ISA is supported (callers pass `effective`).
            match isa {
                Isa::Avx512Vnni | Isa::Avx512 => return unsafe { x86::gather512_f32(idx, v, x) },
                Isa::Avx2 => return unsafe { x86::gather256_f32(idx, v, x) },
                _ => {}
            }
        }
        let _ = isa;
        self.dot(r, x)
    }
    #[inline(always)]
    fn dot_t(&self, r: usize, xt: &[f32], acc: &mut [f32; T]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        for (&c, &v) in self.indices[a..b].iter().zip(&self.values[a..b]) {
            let xr = &xt[c as usize * T..][..T];
            for l in 0..T {
                acc[l] += v * xr[l];
            }
        }
    }
}

impl Rows for CsrI8 {
    fn n(&self) -> usize {
        self.n
    }
    fn k(&self) -> usize {
        self.k
    }
    fn nnz(&self) -> usize {
        self.values.len()
    }
    #[inline(always)]
    fn dot(&self, r: usize, x: &[f32]) -> f32 {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        dot_scalar(&self.indices[a..b], &self.values[a..b], x, |v| v as f32)
    }
    #[inline(always)]
    fn dot_isa(&self, isa: Isa, r: usize, x: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if matches!(isa, Isa::Avx512Vnni | Isa::Avx512) {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            // SAFETY: as for `Csr`.
            return unsafe { x86::gather512_i8(&self.indices[a..b], &self.values[a..b], x) };
        }
        let _ = isa;
        self.dot(r, x)
    }
    #[inline(always)]
    fn dot_t(&self, r: usize, xt: &[f32], acc: &mut [f32; T]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        for (&c, &v) in self.indices[a..b].iter().zip(&self.values[a..b]) {
            let (v, xr) = (v as f32, &xt[c as usize * T..][..T]);
            for l in 0..T {
                acc[l] += v * xr[l];
            }
        }
    }
    fn scale(&self, r: usize) -> f32 {
        self.scales[r]
    }
}

impl Rows for Block14 {
    fn n(&self) -> usize {
        self.n
    }
    fn k(&self) -> usize {
        self.k
    }
    fn nnz(&self) -> usize {
        self.values.len()
    }
    #[inline(always)]
    fn dot(&self, r: usize, x: &[f32]) -> f32 {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        let mut acc = [[0f32; 4]; 2];
        let vals = &self.values[a * 4..b * 4];
        for (j, (&blk, v)) in self.blocks[a..b].iter().zip(vals.chunks_exact(4)).enumerate() {
            let xq = &x[blk as usize * 4..][..4];
            let s = &mut acc[j & 1];
            for l in 0..4 {
                s[l] += v[l] * xq[l];
            }
        }
        (acc[0][0] + acc[1][0]) + (acc[0][1] + acc[1][1]) + (acc[0][2] + acc[1][2]) + (acc[0][3] + acc[1][3])
    }
    #[inline(always)]
    fn dot_t(&self, r: usize, xt: &[f32], acc: &mut [f32; T]) {
        let (a, b) = (self.indptr[r], self.indptr[r + 1]);
        let vals = &self.values[a * 4..b * 4];
        for (&blk, v) in self.blocks[a..b].iter().zip(vals.chunks_exact(4)) {
            let xq = &xt[blk as usize * 4 * T..][..4 * T];
            for q in 0..4 {
                for l in 0..T {
                    acc[l] += v[q] * xq[q * T + l];
                }
            }
        }
    }
}

/// Portable sparse dot product with four independent sums.
#[inline(always)]
fn dot_scalar<V: Copy>(idx: &[u16], vals: &[V], x: &[f32], f: impl Fn(V) -> f32) -> f32 {
    let mut s = [0f32; 4];
    let mut ic = idx.chunks_exact(4);
    let mut vc = vals.chunks_exact(4);
    for (i4, v4) in (&mut ic).zip(&mut vc) {
        for l in 0..4 {
            s[l] += f(v4[l]) * x[i4[l] as usize];
        }
    }
    for (&i, &v) in ic.remainder().iter().zip(vc.remainder()) {
        s[0] += f(v) * x[i as usize];
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// Shared, read-only arguments of one call.
struct Job<'a, W: Rows> {
    w: &'a W,
    isa: Isa,
    m: usize,
    /// M = 1: the activation row padded to a multiple of 4; M > 1: `Xᵀ` tiles,
    /// `[m_tiles][kp][T]`.
    xs: Vec<f32>,
    kp: usize,
    bias: Option<&'a [f32]>,
    act: Activation,
    out: OutPtr<f32>,
}

impl<W: Rows> Job<'_, W> {
    #[inline(always)]
    fn put(&self, row: usize, r: usize, v: f32) {
        let y = self.act.apply(v * self.w.scale(r) + self.bias.map_or(0.0, |b| b[r]));
        // SAFETY: (row, r) in bounds; row r belongs to the calling task only.
        unsafe { self.out.write(row * self.w.n() + r, y) };
    }

    #[inline(always)]
    fn rows(&self, r0: usize, r1: usize) {
        if self.m == 1 {
            for r in r0..r1 {
                self.put(0, r, self.w.dot_isa(self.isa, r, &self.xs));
            }
            return;
        }
        let tiles = self.m.div_ceil(T);
        for r in r0..r1 {
            for t in 0..tiles {
                let mut acc = [0f32; T];
                self.w.dot_t(r, &self.xs[t * self.kp * T..(t + 1) * self.kp * T], &mut acc);
                for (l, &v) in acc.iter().enumerate().take((self.m - t * T).min(T)) {
                    self.put(t * T + l, r, v);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn rows_avx512<W: Rows>(j: &Job<W>, r0: usize, r1: usize) {
    j.rows(r0, r1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2<W: Rows>(j: &Job<W>, r0: usize, r1: usize) {
    j.rows(r0, r1)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn rows_neon<W: Rows>(j: &Job<W>, r0: usize, r1: usize) {
    j.rows(r0, r1)
}

fn run<W: Rows>(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &W,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    let (n, k) = (w.n(), w.k());
    check_len("sparse activations", x.len(), mul("sparse activations", m, k)?)?;
    check_len("sparse output", out.len(), mul("sparse output", m, n)?)?;
    if let Some(b) = bias {
        check_len("sparse bias", b.len(), n)?;
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let kp = k.div_ceil(4) * 4;
    let xs = if m == 1 {
        let mut xp = vec![0f32; kp];
        xp[..k].copy_from_slice(x);
        xp
    } else {
        let tiles = m.div_ceil(T);
        let mut xt = vec![0f32; tiles * kp * T];
        for (row, xr) in x.chunks_exact(k.max(1)).take(m).enumerate() {
            let (t, l) = (row / T, row % T);
            let tile = &mut xt[t * kp * T..(t + 1) * kp * T];
            for (c, &v) in xr.iter().enumerate() {
                tile[c * T + l] = v;
            }
        }
        xt
    };
    let isa = isa.effective();
    let job = Job { w, isa, m, xs, kp, bias, act, out: OutPtr(out.as_mut_ptr()) };
    let work = w.nnz().saturating_mul(m).max(n);
    let bounds = split(n, task_count(work), 1);
    #[allow(unused_unsafe)]
    for_each_task(bounds.len() - 1, work, |t| {
        let (r0, r1) = (bounds[t], bounds[t + 1]);
        // SAFETY: `isa` is supported (`effective`); task t writes rows r0..r1 only.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni | Isa::Avx512 => rows_avx512(&job, r0, r1),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => rows_avx2(&job, r0, r1),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => rows_neon(&job, r0, r1),
                _ => job.rows(r0, r1),
            }
        }
    });
    Ok(())
}

/// CSR f32 linear layer: `out[m, n] = act(Σ_c W[n, c] · x[m, c] + bias[n])`, `x` `[m, K]`,
/// `out` `[m, N]`. f32 sums are taken in an ISA-dependent order (tests: ≤ 1e-5 relative).
///
/// ```
/// use shrink_kernels::{csr_linear, Activation, Csr, Isa};
/// let w = Csr::from_dense(&[0.0, 2.0, 0.0, -1.0, 0.0, 0.0], 2, 3).unwrap();
/// let mut y = [0f32; 2];
/// csr_linear(Isa::detect(), &[1.0, 2.0, 3.0], 1, &w, None, Activation::None, &mut y).unwrap();
/// assert_eq!(y, [4.0, -1.0]);
/// ```
pub fn csr_linear(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &Csr,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    run(isa, x, m, w, bias, act, out)
}

/// CSR int8 linear layer: like [`csr_linear`] with `W[n, c] = scale[n] · q[n, c]`.
///
/// ```
/// use shrink_kernels::{csr_i8_linear, Activation, CsrI8, Isa};
/// let w = CsrI8::from_dense(&[0, 2, -4, 0], &[0.5, 0.25], 2, 2).unwrap();
/// let mut y = [0f32; 2];
/// csr_i8_linear(Isa::detect(), &[1.0, 3.0], 1, &w, Some(&[1.0, 1.0]), Activation::Relu, &mut y).unwrap();
/// assert_eq!(y, [4.0, 0.0]); // 0.5·2·3 + 1; 0.25·(−4)·1 + 1 = 0
/// ```
pub fn csr_i8_linear(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &CsrI8,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    run(isa, x, m, w, bias, act, out)
}

/// Block-sparse 1×4 f32 linear layer: like [`csr_linear`] over 1×4 blocks.
///
/// ```
/// use shrink_kernels::{block14_linear, Activation, Block14, Isa};
/// let w = Block14::from_dense(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], 1, 10).unwrap();
/// assert_eq!(w.nblocks(), 2);
/// let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
/// let mut y = [0f32; 1];
/// block14_linear(Isa::detect(), &x, 1, &w, None, Activation::None, &mut y).unwrap();
/// assert_eq!(y, [0.0 + 2.0 + 6.0 + 12.0 + 9.0]);
/// ```
pub fn block14_linear(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &Block14,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    run(isa, x, m, w, bias, act, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// CSR row dot product with 16-wide gathers; the tail uses masked loads.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn gather512_f32(idx: &[u16], v: &[f32], x: &[f32]) -> f32 {
        unsafe {
            let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let len = idx.len();
            let (ip, vp, xp) = (idx.as_ptr(), v.as_ptr(), x.as_ptr());
            let mut j = 0;
            while j + 32 <= len {
                let i0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(ip.add(j) as *const _));
                let i1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256(ip.add(j + 16) as *const _));
                a0 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(vp.add(j)),
                    _mm512_i32gather_ps::<4>(i0, xp as *const _),
                    a0,
                );
                a1 = _mm512_fmadd_ps(
                    _mm512_loadu_ps(vp.add(j + 16)),
                    _mm512_i32gather_ps::<4>(i1, xp as *const _),
                    a1,
                );
                j += 32;
            }
            while j < len {
                let cnt = (len - j).min(16);
                let mask: __mmask16 = if cnt == 16 { 0xFFFF } else { (1u16 << cnt) - 1 };
                let i0 = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, ip.add(j) as *const _));
                let g = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, i0, xp as *const _);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, vp.add(j)), g, a0);
                j += cnt;
            }
            _mm512_reduce_add_ps(_mm512_add_ps(a0, a1))
        }
    }

    /// CSR i8 row dot product with 16-wide gathers (values widened to f32 in registers).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) unsafe fn gather512_i8(idx: &[u16], v: &[i8], x: &[f32]) -> f32 {
        unsafe {
            let mut a0 = _mm512_setzero_ps();
            let len = idx.len();
            let (ip, vp, xp) = (idx.as_ptr(), v.as_ptr(), x.as_ptr());
            let mut j = 0;
            while j < len {
                let cnt = (len - j).min(16);
                let mask: __mmask16 = if cnt == 16 { 0xFFFF } else { (1u16 << cnt) - 1 };
                let i0 = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, ip.add(j) as *const _));
                let g = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, i0, xp as *const _);
                let w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(
                    mask,
                    vp.add(j) as *const _,
                )));
                a0 = _mm512_fmadd_ps(w, g, a0);
                j += cnt;
            }
            _mm512_reduce_add_ps(a0)
        }
    }

    /// CSR row dot product with 8-wide AVX2 gathers; scalar tail.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gather256_f32(idx: &[u16], v: &[f32], x: &[f32]) -> f32 {
        unsafe {
            let mut a0 = _mm256_setzero_ps();
            let len = idx.len();
            let (ip, vp, xp) = (idx.as_ptr(), v.as_ptr(), x.as_ptr());
            let mut j = 0;
            while j + 8 <= len {
                let i0 = _mm256_cvtepu16_epi32(_mm_loadu_si128(ip.add(j) as *const _));
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(vp.add(j)), _mm256_i32gather_ps::<4>(xp, i0), a0);
                j += 8;
            }
            let mut t = [0f32; 8];
            _mm256_storeu_ps(t.as_mut_ptr(), a0);
            let mut s: f32 = t.iter().sum();
            while j < len {
                s += *vp.add(j) * *xp.add(*ip.add(j) as usize);
                j += 1;
            }
            s
        }
    }
}

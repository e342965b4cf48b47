//! Int4 weights × u8 activations (W4A8, as llama.cpp's Q4 × Q8): `Y[M, N] = act(X · Ŵᵀ + bias)`
//! with `Ŵ[n, k] = scale[n, k / G] · q[n, k]`, `q ∈ [−8, 7]`, where each activation row is
//! quantized to u8 on the fly ([`quantize_row_u8`]: its own scale and zero point, `[min, max]`
//! of the row widened to include 0), so that the products are integer dot products:
//!
//! `y[m, n] = act(bias[n] + sa[m] · Σ_g scale[n, g] · Σ_{k ∈ g} (qa[m, k] − za[m]) · q[n, k])`.
//!
//! Layout: each weight row holds `ceil(K / 128)` chunks of 64 bytes; byte `i` of a chunk holds
//! `q + 8` of code `k0 + i` in its low nibble and of `k0 + 64 + i` in its high nibble (padding:
//! `8`, i.e. `q = 0`). One 64-byte load thus gives, after an AND and a shift, two vectors of 64
//! consecutive K as unsigned bytes `u = q + 8 ∈ [0, 15]`, which `vpdpbusd` (AVX-512 VNNI) or
//! `pmaddubsw` + `pmaddwd` (AVX2) multiply with the u8 activations, exactly in i32. The offset
//! and the zero point are removed per scale group with precomputed sums:
//! `Σ (qa − za)·q = Σ qa·u − 8·Σ qa − za·Σ q`.
//!
//! The rows are interleaved in tiles of [`NR`] output channels (N padded with zero rows): chunk
//! `c` of the tile's channels `0..NR` are `NR` consecutive 64-byte lines, so a tile is one
//! contiguous stream that a register tile reads front to back (one hardware-prefetch stream per
//! thread instead of `NR`).
//!
//! A batch-1 call streams K/2 bytes per output channel: half the int8 GEMM's bytes, with the
//! same kind of integer arithmetic. Groups: per output channel, or `G` a multiple of 128
//! (whole chunks; the f32-activation [`crate::linear_i4`] also takes G = 32 / 64).
//!
//! Every path computes the same exact i32 sum per (row, channel, group) and combines the groups
//! in the same f32 order, so all ISAs give the same bits as the portable path.
use crate::epilogue::Activation;
use crate::error::{check_len, mul, KernelError, Result};
use crate::par::{for_each_task, split, task_count, OutPtr};
use crate::{Int4Group, Isa, QuantParams};

mod rowquant;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Codes per chunk (64 bytes).
const CHUNK: usize = 128;
/// Output channels per tile of the layout (and per batch-1 register tile).
const NR: usize = 8;
/// Output channels per register tile of several rows (half a layout tile).
const HALF: usize = NR / 2;
/// Activation rows per register tile (batches of at least `MR` rows).
const MR: usize = 4;

/// Largest K: `Σ qa·u` over a group must fit i32 (255 · 15 · K < 2³¹).
pub const MAX_K_I4U8: usize = 1 << 19;

/// Int4 weights `[N, K]` in the W4A8 layout (see the module documentation), with their scales
/// and the per-group code sums the zero-point correction needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedI4U8 {
    n: usize,
    k: usize,
    /// 128-code chunks per row.
    kc: usize,
    /// Chunks per scale group.
    gc: usize,
    /// Scale groups per row.
    ng: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
    /// `Σ_{k ∈ g} q[n, k]`, `[n, ng]`.
    qsum: Vec<i32>,
}

impl PackedI4U8 {
    /// Packs row-major codes `q` (`[n, k]`, each in `-8..=7`) with `scales` (`[n, groups]`:
    /// one per channel, or `ceil(k / G)` with `G` a positive multiple of 128).
    pub fn pack(q: &[i8], scales: &[f32], n: usize, k: usize, group: Int4Group) -> Result<PackedI4U8> {
        check_len("int4 codes", q.len(), mul("int4 codes", n, k)?)?;
        if k > MAX_K_I4U8 {
            return Err(KernelError::new(format!("int4 x u8: K = {k} exceeds {MAX_K_I4U8}")));
        }
        let kc = k.div_ceil(CHUNK);
        let (gc, ng) = match group {
            Int4Group::PerChannel => (kc.max(1), 1),
            Int4Group::Group(g) if g > 0 && g % CHUNK == 0 => (g / CHUNK, k.div_ceil(g).max(1)),
            Int4Group::Group(g) => {
                return Err(KernelError::new(format!(
                    "int4 x u8: group size {g} is not a positive multiple of {CHUNK}"
                )))
            }
        };
        check_len("int4 scales", scales.len(), mul("int4 scales", n, ng)?)?;
        if let Some(bad) = q.iter().find(|&&v| !(-8..=7).contains(&v)) {
            return Err(KernelError::new(format!("int4 code {bad} outside -8..=7")));
        }
        let mut data = vec![0x88u8; mul("int4 codes", n.div_ceil(NR) * NR, kc * 64)?];
        let mut qsum = vec![0i32; n * ng];
        let g_codes = gc * CHUNK;
        for r in 0..n {
            for kk in 0..k {
                let v = q[r * k + kk];
                let u = (v + 8) as u8;
                let (c, i) = (kk / CHUNK, kk % CHUNK);
                let byte = &mut data[line(kc, r, c) + i % 64];
                *byte = if i < 64 { (*byte & 0xF0) | u } else { (*byte & 0x0F) | (u << 4) };
                qsum[r * ng + kk / g_codes] += v as i32;
            }
        }
        Ok(PackedI4U8 { n, k, kc, gc, ng, data, scales: scales.to_vec(), qsum })
    }

    /// Symmetric quantization of f32 weights `w` (`[n, k]`), as [`crate::PackedI4::quantize`]:
    /// per scale group `scale = max|w| / 7` (1 for an all-zero group),
    /// `q = clamp(round(w / scale), −8, 7)`.
    pub fn quantize(w: &[f32], n: usize, k: usize, group: Int4Group) -> Result<PackedI4U8> {
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
                let (a, b) = ((gi * g).min(k), ((gi + 1) * g).min(k));
                let amax = w[r * k + a..r * k + b].iter().fold(0f32, |m, v| m.max(v.abs()));
                let s = if amax > 0.0 { amax / 7.0 } else { 1.0 };
                scales[r * ng + gi] = s;
                for kk in a..b {
                    q[r * k + kk] = (w[r * k + kk] / s).round().clamp(-8.0, 7.0) as i8;
                }
            }
        }
        PackedI4U8::pack(&q, &scales, n, k, group)
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
        assert!(r < self.n && kk < self.k, "int4 code ({r}, {kk}) out of [{}, {}]", self.n, self.k);
        let (c, i) = (kk / CHUNK, kk % CHUNK);
        let b = self.data[line(self.kc, r, c) + i % 64];
        let u = if i < 64 { b & 0xF } else { b >> 4 };
        u as i8 - 8
    }

    /// The scale of `(r, kk)`.
    pub fn scale(&self, r: usize, kk: usize) -> f32 {
        self.scales[r * self.ng + kk / (self.gc * CHUNK)]
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

/// Byte offset of chunk `c` of channel `r` (rows of `kc` chunks, interleaved in tiles of [`NR`]).
#[inline(always)]
fn line(kc: usize, r: usize, c: usize) -> usize {
    ((r / NR * kc + c) * NR + r % NR) * 64
}

/// The u8 quantization of one activation row: `[min(x, 0), max(x, 0)]` mapped onto `0..=255`
/// (scale `(max − min) / 255`, zero point `round(−min / scale)`; an all-zero row gets scale 1,
/// zero point 0). Non-finite values are ignored for the range (and saturate).
pub fn row_params(x: &[f32]) -> QuantParams {
    let (lo, hi) = rowquant::range_scalar(x);
    rowquant::params_of_range(lo, hi)
}

/// Quantizes `x` to u8 with [`row_params`]; returns the codes and their parameters.
pub fn quantize_row_u8(x: &[f32]) -> (Vec<u8>, QuantParams) {
    let p = row_params(x);
    (x.iter().map(|&v| p.quantize(v)).collect(), p)
}

/// Int4 × u8 linear layer for `x` `[m, K]` and `out` `[m, N]` (row-major f32): each row of `x`
/// is quantized to u8 ([`quantize_row_u8`]), then
/// `out[m, n] = act(bias[n] + sa · Σ_g scale[n, g] · Σ_{k ∈ g} (qa − za) · q[n, k])`.
/// The integer sums are exact on every path; the f32 combination of the groups differs only in
/// rounding order between paths. Allocates the quantized rows (`m · K` bytes) per call.
///
/// ```
/// use shrink_kernels::{linear_i4u8, Activation, Int4Group, Isa, PackedI4U8};
/// let w = PackedI4U8::pack(&[1, -2, 7, -8], &[0.5, 0.25], 2, 2, Int4Group::PerChannel).unwrap();
/// let mut y = [0f32; 2];
/// // x = [2, 1]: quantized exactly (scale 2/255, zero point 0).
/// linear_i4u8(Isa::detect(), &[2.0, 1.0], 1, &w, Some(&[0.0, 1.0]), Activation::None, &mut y).unwrap();
/// assert!((y[0] - 0.0).abs() < 1e-2 && (y[1] - (0.25 * (14.0 - 8.0) + 1.0)).abs() < 1e-2);
/// ```
pub fn linear_i4u8(
    isa: Isa,
    x: &[f32],
    m: usize,
    w: &PackedI4U8,
    bias: Option<&[f32]>,
    act: Activation,
    out: &mut [f32],
) -> Result<()> {
    check_len("int4 x u8 activations", x.len(), mul("int4 x u8 activations", m, w.k)?)?;
    check_len("int4 x u8 output", out.len(), mul("int4 x u8 output", m, w.n)?)?;
    if let Some(b) = bias {
        check_len("int4 x u8 bias", b.len(), w.n)?;
    }
    if m == 0 || w.n == 0 {
        return Ok(());
    }
    let isa = isa.effective();
    let kp = w.kc * CHUNK;
    let mut xq = vec![0u8; m * kp];
    let mut params = Vec::with_capacity(m);
    let mut asum = vec![0i32; m * w.ng];
    for r in 0..m {
        let row = &mut xq[r * kp..(r + 1) * kp];
        params.push(rowquant::quantize_row(isa, &x[r * w.k..(r + 1) * w.k], row));
        rowquant::group_sums(row, w.gc * CHUNK, &mut asum[r * w.ng..(r + 1) * w.ng]);
    }
    let work = m.saturating_mul(w.n).saturating_mul(w.k.max(1)) / 4;
    let bounds = split(w.n, task_count(work), NR);
    let a =
        Args { xq: &xq, kp, m, params: &params, asum: &asum, w, bias, act, out: OutPtr(out.as_mut_ptr()) };
    #[allow(unused_unsafe)]
    for_each_task(bounds.len() - 1, work, |t| {
        let (n0, n1) = (bounds[t], bounds[t + 1]);
        // SAFETY: `isa` is supported (`effective`); task t writes channels n0..n1 only.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni => x86::task_vnni(&a, n0, n1),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx2 => x86::task_avx2(&a, n0, n1),
                _ => task_scalar(&a, n0, n1),
            }
        }
    });
    Ok(())
}

struct Args<'a> {
    /// Quantized rows, `[m, kp]`, zero-padded.
    xq: &'a [u8],
    kp: usize,
    m: usize,
    params: &'a [QuantParams],
    /// `Σ_{k ∈ g} qa[row, k]`, `[m, ng]`.
    asum: &'a [i32],
    w: &'a PackedI4U8,
    bias: Option<&'a [f32]>,
    act: Activation,
    out: OutPtr<f32>,
}

impl Args<'_> {
    /// The integer correction of group `g` for `(row, n)`: `8·Σ qa + za·Σ q`.
    #[inline(always)]
    fn correction(&self, row: usize, n: usize, g: usize) -> i32 {
        8 * self.asum[row * self.w.ng + g]
            + self.params[row].zero_point as i32 * self.w.qsum[n * self.w.ng + g]
    }

    /// Writes `act(bias[n] + sa · s)` at `(row, n)`, `s = Σ_g scale·(Σ qa·u − correction)`.
    #[inline(always)]
    fn put(&self, row: usize, n: usize, s: f32) {
        let b = self.bias.map_or(0.0, |b| b[n]);
        let y = self.act.apply(b + self.params[row].scale * s);
        // SAFETY: (row, n) is in bounds; channel n belongs to the calling task only.
        unsafe { self.out.write(row * self.w.n + n, y) };
    }

    /// Chunk range of group `g`.
    #[inline(always)]
    fn chunks(&self, g: usize) -> (usize, usize) {
        (g * self.w.gc, ((g + 1) * self.w.gc).min(self.w.kc))
    }

    /// Adds group `g`'s term `scale · (d − correction)` of `(row, n)` to `s` (the one f32
    /// combination every path uses; `d = Σ qa·u` over the group, exact).
    #[inline(always)]
    fn add_group(&self, s: &mut f32, row: usize, n: usize, g: usize, d: i32) {
        *s += self.w.scales[n * self.w.ng + g] * d.wrapping_sub(self.correction(row, n, g)) as f32;
    }

    /// The first byte of layout tile `n / NR`'s chunk `c` (channel `n % NR == 0`).
    #[inline(always)]
    fn tile_ptr(&self, n: usize, c: usize) -> *const u8 {
        // Only dereferenced for chunks that exist (then in bounds: N is padded to whole tiles).
        self.w.data.as_ptr().wrapping_add(line(self.w.kc, n, c))
    }
}

/// The portable path: exact i32 group sums, then the f32 combination.
fn task_scalar(a: &Args, n0: usize, n1: usize) {
    let w = a.w;
    for n in n0..n1 {
        for row in 0..a.m {
            let xr = &a.xq[row * a.kp..(row + 1) * a.kp];
            let mut s = 0f32;
            for g in 0..w.ng {
                let (c0, c1) = a.chunks(g);
                let mut d = 0i32;
                for c in c0..c1 {
                    let wb = &w.data[line(w.kc, n, c)..][..64];
                    let xc = &xr[c * CHUNK..][..CHUNK];
                    for i in 0..64 {
                        d += xc[i] as i32 * (wb[i] & 0xF) as i32 + xc[64 + i] as i32 * (wb[i] >> 4) as i32;
                    }
                }
                a.add_group(&mut s, row, n, g, d);
            }
            a.put(row, n, s);
        }
    }
}

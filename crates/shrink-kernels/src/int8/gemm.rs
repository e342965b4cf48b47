//! The int8 GEMM driver: splits `Y[M, N]` into tasks, runs the ISA's register tile over each,
//! subtracts the activation zero point and hands exact i32 sums to a fused epilogue ([`Sink`]).
use std::ops::Range;

use super::pack::{PackedI8, NB};
use crate::epilogue::{Int8Epilogue, QuantParams};
use crate::error::{check_len, mul, Result};
use crate::par::{for_each_task, split, task_count, OutPtr};
use crate::Isa;

/// Receives the zero-point-corrected i32 sums `Σ_k (x[m,k] − za)·w[n,k]` of row `m`,
/// channels `n0 .. n0 + vals.len()`. Tasks call it for disjoint (m, n) pairs.
pub(crate) trait Sink: Sync {
    fn put(&self, m: usize, n0: usize, vals: &[i32]);
}

/// Shared, read-only inputs of one GEMM call.
pub(crate) struct Ctx<'a> {
    pub x: &'a [u8],
    pub k: usize,
    pub w: &'a PackedI8,
    pub za: u8,
}

/// Defines a task function running `$tile` (an `unsafe fn<const MR, const NBK>(xs, tails, kfull,
/// has_tail, w, out)`: `MR` rows × `NBK` blocks of 16 channels; `xs[r]` points at row r of X with
/// `4·kfull` readable bytes, `tails[r]` is its last partial K quad zero-padded, used when
/// `has_tail`, `w[b]` points at a packed block) over a range of rows
/// and blocks: `MR` up to `$mr`, `NBK` = `$nbk1` blocks at a time for one row (GEMV: more
/// independent accumulators) and `$nbk` for several rows.
macro_rules! define_task {
    ($(#[$attr:meta])* $name:ident, $tile:ident, $mr:literal, $nbk1:literal, $nbk:literal) => {
        $(#[$attr])*
        #[allow(unused_unsafe)]
        pub(crate) unsafe fn $name<S: $crate::int8::gemm::Sink>(
            c: &$crate::int8::gemm::Ctx,
            rows: std::ops::Range<usize>,
            blks: std::ops::Range<usize>,
            sink: &S,
        ) {
            let k = c.k;
            let (kfull, has_tail) = (k / 4, k % 4 != 0);
            let nbk_max = if rows.len() == 1 { $nbk1 } else { $nbk };
            let mut out = [[0i32; 64]; 4];
            let mut b = blks.start;
            while b < blks.end {
                let left = blks.end - b;
                let nbk = if left >= nbk_max { nbk_max } else if left >= 2 && nbk_max >= 2 { 2 } else { 1 };
                let mut r = rows.start;
                while r < rows.end {
                    let mr = (rows.end - r).min($mr);
                    macro_rules! go {
                        ($m:literal, $n:literal) => {{
                            let mut xs = [std::ptr::null::<u8>(); $m];
                            let mut tails = [0u32; $m];
                            for i in 0..$m {
                                let row = &c.x[(r + i) * k..(r + i + 1) * k];
                                xs[i] = row.as_ptr();
                                let mut t = [0u8; 4];
                                t[..k % 4].copy_from_slice(&row[kfull * 4..]);
                                tails[i] = u32::from_le_bytes(t);
                            }
                            let ws: [*const i8; $n] = std::array::from_fn(|j| c.w.block_ptr(b + j));
                            let o: &mut [[i32; 64]; $m] = (&mut out[..$m]).try_into().unwrap_or_else(|_| unreachable!());
                            // SAFETY: pointers cover kfull quads of their row / block; the caller
                            // checked the CPU supports this tile's features.
                            unsafe { $tile::<$m, $n>(&xs, &tails, kfull, has_tail, &ws, o) };
                        }};
                    }
                    match (mr, nbk) {
                        (1, 1) => go!(1, 1),
                        (1, 2) => go!(1, 2),
                        (1, _) => go!(1, 4),
                        (2, 1) => go!(2, 1),
                        (2, _) => go!(2, 2),
                        (3, 1) => go!(3, 1),
                        (3, _) => go!(3, 2),
                        (_, 1) => go!(4, 1),
                        (_, _) => go!(4, 2),
                    }
                    $crate::int8::gemm::emit(c, r, mr, b, nbk, &out[..], sink);
                    r += mr;
                }
                b += nbk;
            }
        }
    };
}
pub(crate) use define_task;

/// Subtracts `za · Σ_k w[n, k]` from a finished tile and passes its rows to the sink.
#[inline(always)]
pub(crate) fn emit<S: Sink>(
    c: &Ctx,
    r0: usize,
    mr: usize,
    b0: usize,
    nbk: usize,
    out: &[[i32; 64]],
    sink: &S,
) {
    let n = c.w.n;
    let za = c.za as i32;
    let mut vals = [0i32; 64];
    let n0 = b0 * NB;
    let cnt = (nbk * NB).min(n - n0);
    for (i, row) in out.iter().enumerate().take(mr) {
        for j in 0..cnt {
            vals[j] = row[j].wrapping_sub(za.wrapping_mul(c.w.row_sums[n0 + j]));
        }
        sink.put(r0 + i, n0, &vals[..cnt]);
    }
}

/// Portable tile: the reference every SIMD tile must equal.
#[inline(always)]
unsafe fn tile_scalar<const MR: usize, const NBK: usize>(
    xs: &[*const u8; MR],
    tails: &[u32; MR],
    kfull: usize,
    has_tail: bool,
    w: &[*const i8; NBK],
    out: &mut [[i32; 64]; MR],
) {
    let nq = kfull + has_tail as usize;
    for r in 0..MR {
        for b in 0..NBK {
            let mut acc = [0i32; NB];
            for q in 0..nq {
                let xq = if q < kfull {
                    // SAFETY: q < kfull quads are inside the row.
                    unsafe { (xs[r].add(q * 4) as *const [u8; 4]).read_unaligned() }
                } else {
                    tails[r].to_le_bytes()
                };
                // SAFETY: q < nq quads of 64 bytes are inside the block.
                let wq = unsafe { &*(w[b].add(q * 64) as *const [i8; 64]) };
                for (c, a) in acc.iter_mut().enumerate() {
                    for j in 0..4 {
                        *a = a.wrapping_add(xq[j] as i32 * wq[c * 4 + j] as i32);
                    }
                }
            }
            out[r][b * NB..(b + 1) * NB].copy_from_slice(&acc);
        }
    }
}

define_task!(task_scalar, tile_scalar, 4, 1, 1);

/// Runs the GEMM on `isa` (or the best supported level below it), feeding `sink`.
pub(crate) fn run<S: Sink>(isa: Isa, x: &[u8], m: usize, za: u8, w: &PackedI8, sink: &S) {
    let (n, k) = (w.n, w.k);
    if m == 0 || n == 0 {
        return;
    }
    let c = Ctx { x, k, w, za };
    let nblk = n.div_ceil(NB);
    let work = m.saturating_mul(n).saturating_mul(k.max(1));
    let tasks = task_count(work);
    let (mb, bb) = if nblk >= tasks || m < 8 {
        (vec![0, m], split(nblk, tasks, 1))
    } else {
        (split(m, tasks.div_ceil(nblk), 4), split(nblk, nblk, 1))
    };
    let (nm, nb) = (mb.len() - 1, bb.len() - 1);
    let isa = isa.effective();
    for_each_task(nm * nb, work, |t| {
        let rows: Range<usize> = mb[t / nb]..mb[t / nb + 1];
        let blks = bb[t % nb]..bb[t % nb + 1];
        // SAFETY: `isa` is supported by this CPU (`effective`).
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni => super::x86::task_vnni(&c, rows, blks, sink),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => super::x86::task_avx512(&c, rows, blks, sink),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => super::x86::task_avx2(&c, rows, blks, sink),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => super::neon::task_neon(&c, rows, blks, sink),
                _ => task_scalar(&c, rows, blks, sink),
            }
        }
    });
}

fn check_x(x: &[u8], m: usize, w: &PackedI8) -> Result<()> {
    check_len("int8 activations", x.len(), mul("int8 activations", m, w.k)?)
}

struct I32Sink {
    out: OutPtr<i32>,
    n: usize,
}
impl Sink for I32Sink {
    #[inline(always)]
    fn put(&self, m: usize, n0: usize, vals: &[i32]) {
        for (j, &v) in vals.iter().enumerate() {
            // SAFETY: (m, n0 + j) is in bounds and written by this task only.
            unsafe { self.out.write(m * self.n + n0 + j, v) };
        }
    }
}

struct F32Sink<'a> {
    out: OutPtr<f32>,
    n: usize,
    ep: Int8Epilogue<'a>,
    sa: f32,
}
impl Sink for F32Sink<'_> {
    #[inline(always)]
    fn put(&self, m: usize, n0: usize, vals: &[i32]) {
        for (j, &v) in vals.iter().enumerate() {
            let y = self.ep.apply(v, self.sa, n0 + j);
            // SAFETY: (m, n0 + j) is in bounds and written by this task only.
            unsafe { self.out.write(m * self.n + n0 + j, y) };
        }
    }
}

struct U8Sink<'a> {
    out: OutPtr<u8>,
    n: usize,
    ep: Int8Epilogue<'a>,
    sa: f32,
    yq: QuantParams,
}
impl Sink for U8Sink<'_> {
    #[inline(always)]
    fn put(&self, m: usize, n0: usize, vals: &[i32]) {
        for (j, &v) in vals.iter().enumerate() {
            let y = self.yq.quantize(self.ep.apply(v, self.sa, n0 + j));
            // SAFETY: (m, n0 + j) is in bounds and written by this task only.
            unsafe { self.out.write(m * self.n + n0 + j, y) };
        }
    }
}

/// Exact int8 GEMM: `out[m, n] = Σ_k (x[m, k] − x_zero) · W[n, k]` (i32), for `x` `[m, K]`
/// row-major u8 and `out` `[m, N]`.
///
/// ```
/// use shrink_kernels::{gemm_u8i8_i32, Isa, PackedI8};
/// let w = PackedI8::pack(&[1, -2, 3, 4, 5, -6], 2, 3).unwrap(); // W is [N=2, K=3]
/// let x = [10u8, 11, 12]; // one row, zero point 10
/// let mut y = [0i32; 2];
/// gemm_u8i8_i32(Isa::detect(), &x, 1, 10, &w, &mut y).unwrap();
/// assert_eq!(y, [0 * 1 + 1 * -2 + 2 * 3, 0 * 4 + 1 * 5 + 2 * -6]);
/// ```
pub fn gemm_u8i8_i32(isa: Isa, x: &[u8], m: usize, x_zero: u8, w: &PackedI8, out: &mut [i32]) -> Result<()> {
    check_x(x, m, w)?;
    check_len("int8 GEMM output", out.len(), mul("int8 GEMM output", m, w.n)?)?;
    run(isa, x, m, x_zero, w, &I32Sink { out: OutPtr(out.as_mut_ptr()), n: w.n });
    Ok(())
}

/// Int8 linear layer with f32 output:
/// `out[m, n] = act((Σ_k (x[m,k] − xq.zero_point)·W[n,k]) · xq.scale · ep.weight_scales[n] + bias[n])`.
///
/// ```
/// use shrink_kernels::{gemm_u8i8_f32, Activation, Int8Epilogue, Isa, PackedI8, QuantParams};
/// let w = PackedI8::pack(&[2, -1, 0, 3], 2, 2).unwrap();
/// let xq = QuantParams { scale: 0.5, zero_point: 128 };
/// let ep = Int8Epilogue { weight_scales: &[0.1, 0.2], bias: Some(&[1.0, -10.0]), act: Activation::Relu };
/// let mut y = [0f32; 2];
/// gemm_u8i8_f32(Isa::detect(), &[130, 126], 1, xq, &w, &ep, &mut y).unwrap();
/// // channel 0: (2·2 + (−2)·(−1)) · 0.5 · 0.1 + 1 = 1.3; channel 1 is negative: ReLU gives 0
/// assert!((y[0] - 1.3).abs() < 1e-6 && y[1] == 0.0);
/// ```
pub fn gemm_u8i8_f32(
    isa: Isa,
    x: &[u8],
    m: usize,
    xq: QuantParams,
    w: &PackedI8,
    ep: &Int8Epilogue,
    out: &mut [f32],
) -> Result<()> {
    check_x(x, m, w)?;
    ep.check(w.n)?;
    check_len("int8 GEMM output", out.len(), mul("int8 GEMM output", m, w.n)?)?;
    let sink = F32Sink { out: OutPtr(out.as_mut_ptr()), n: w.n, ep: *ep, sa: xq.scale };
    run(isa, x, m, xq.zero_point, w, &sink);
    Ok(())
}

/// Int8 linear layer requantized to u8 for the next int8 layer: the f32 value of
/// [`gemm_u8i8_f32`], then `clamp(round_half_even(y / yq.scale) + yq.zero_point, 0, 255)`.
///
/// ```
/// use shrink_kernels::{gemm_u8i8_u8, Activation, Int8Epilogue, Isa, PackedI8, QuantParams};
/// let w = PackedI8::pack(&[1, 1], 1, 2).unwrap();
/// let q = QuantParams { scale: 1.0, zero_point: 0 };
/// let ep = Int8Epilogue { weight_scales: &[1.0], bias: None, act: Activation::None };
/// let mut y = [0u8; 1];
/// gemm_u8i8_u8(Isa::detect(), &[200, 100], 1, q, &w, &ep, q, &mut y).unwrap();
/// assert_eq!(y, [255]); // 300 saturates
/// ```
#[allow(clippy::too_many_arguments)]
pub fn gemm_u8i8_u8(
    isa: Isa,
    x: &[u8],
    m: usize,
    xq: QuantParams,
    w: &PackedI8,
    ep: &Int8Epilogue,
    yq: QuantParams,
    out: &mut [u8],
) -> Result<()> {
    check_x(x, m, w)?;
    ep.check(w.n)?;
    yq.check("output quantization")?;
    check_len("int8 GEMM output", out.len(), mul("int8 GEMM output", m, w.n)?)?;
    let sink = U8Sink { out: OutPtr(out.as_mut_ptr()), n: w.n, ep: *ep, sa: xq.scale, yq };
    run(isa, x, m, xq.zero_point, w, &sink);
    Ok(())
}

/// [`F32Sink`] writing `out[n, m]` (channel-major): a convolution's NCHW output plane per
/// channel, with no transpose pass.
struct F32ChannelMajorSink<'a> {
    out: OutPtr<f32>,
    m: usize,
    ep: Int8Epilogue<'a>,
    sa: f32,
}
impl Sink for F32ChannelMajorSink<'_> {
    #[inline(always)]
    fn put(&self, m: usize, n0: usize, vals: &[i32]) {
        for (j, &v) in vals.iter().enumerate() {
            let y = self.ep.apply(v, self.sa, n0 + j);
            // SAFETY: (n0 + j, m) is in bounds and written by this task only.
            unsafe { self.out.write((n0 + j) * self.m + m, y) };
        }
    }
}

/// [`gemm_u8i8_f32`] with the output stored channel-major: `out[n · m + r]` is row `r`, channel
/// `n` (`out` is `[N, m]`). With the im2col rows of one image as `x`, that is the image's NCHW
/// output.
///
/// ```
/// use shrink_kernels::{gemm_u8i8_f32_channel_major, Activation, Int8Epilogue, Isa, PackedI8, QuantParams};
/// let w = PackedI8::pack(&[1, 0, 0, 2], 2, 2).unwrap(); // channel 0 reads k0, channel 1 2·k1
/// let q = QuantParams { scale: 1.0, zero_point: 0 };
/// let ep = Int8Epilogue { weight_scales: &[1.0, 1.0], bias: None, act: Activation::None };
/// let mut y = [0f32; 6];
/// gemm_u8i8_f32_channel_major(Isa::detect(), &[1, 2, 3, 4, 5, 6], 3, q, &w, &ep, &mut y).unwrap();
/// assert_eq!(y, [1.0, 3.0, 5.0, 4.0, 8.0, 12.0]);
/// ```
pub fn gemm_u8i8_f32_channel_major(
    isa: Isa,
    x: &[u8],
    m: usize,
    xq: QuantParams,
    w: &PackedI8,
    ep: &Int8Epilogue,
    out: &mut [f32],
) -> Result<()> {
    check_x(x, m, w)?;
    ep.check(w.n)?;
    check_len("int8 GEMM output", out.len(), mul("int8 GEMM output", m, w.n)?)?;
    let sink = F32ChannelMajorSink { out: OutPtr(out.as_mut_ptr()), m, ep: *ep, sa: xq.scale };
    run(isa, x, m, xq.zero_point, w, &sink);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    #[test]
    fn channel_major_output_is_the_transpose_on_every_isa() {
        for isa in Isa::available() {
            for (m, n, k) in [(1, 1, 1), (5, 17, 9), (33, 40, 70), (300, 16, 144)] {
                let w: Vec<i8> = (0..n * k).map(|i| ((i * 37 + 11) % 255) as i32 as i8).collect();
                let x: Vec<u8> = (0..m * k).map(|i| ((i * 53 + 7) % 256) as u8).collect();
                let packed = PackedI8::pack(&w, n, k).unwrap();
                let scales: Vec<f32> = (0..n).map(|j| 0.01 + j as f32 * 1e-3).collect();
                let bias: Vec<f32> = (0..n).map(|j| j as f32 - 3.0).collect();
                let ep = Int8Epilogue { weight_scales: &scales, bias: Some(&bias), act: Activation::Relu };
                let q = QuantParams { scale: 0.02, zero_point: 121 };
                let mut rm = vec![0f32; m * n];
                gemm_u8i8_f32(isa, &x, m, q, &packed, &ep, &mut rm).unwrap();
                let mut cm = vec![f32::NAN; m * n];
                gemm_u8i8_f32_channel_major(isa, &x, m, q, &packed, &ep, &mut cm).unwrap();
                for r in 0..m {
                    for j in 0..n {
                        assert_eq!(cm[j * m + r], rm[r * n + j], "{isa:?} {m}x{n}x{k} [{r}, {j}]");
                    }
                }
                assert!(gemm_u8i8_f32_channel_major(isa, &x, m, q, &packed, &ep, &mut cm[1..]).is_err());
            }
        }
    }
}

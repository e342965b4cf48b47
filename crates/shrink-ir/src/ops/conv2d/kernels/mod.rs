//! Register-blocked micro-kernels shared by the forward and backward convolution passes.
//!
//! Two shapes cover every pass:
//! * [`bcast`] — an outer-product tile `C[MR x 16*NV] += A[k][MR] (x) B[k][16*NV]` summed over
//!   `k`, with B rows addressed through an offset table (rows of a packed im2col panel, or
//!   shifted windows of a zero-padded image for the direct stride-1 path).
//! * [`dot`] — a tile of dot products `out[i][j] += <A_i, B_j>` over long vectors, summed over
//!   several images (the weight gradient, reducing over output pixels).
//!
//! The AVX-512 versions are chosen at run time with `is_x86_feature_detected!`; without AVX-512,
//! AVX2+FMA versions ([`avx2`]: register-sized sub-tiles of the same tiles) where the CPU has
//! them, else the portable versions (plain Rust loops for the baseline target).
#[cfg(target_arch = "x86_64")]
mod avx2;
mod generic;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use std::sync::atomic::{AtomicU8, Ordering};

/// Floats per vector; tiles are multiples of this wide on every backend.
pub(crate) const LANES: usize = 16;
/// Largest `mr` accepted by [`bcast`].
pub(crate) const MAX_MR: usize = 8;
/// Largest `mo` / `nk` accepted by [`dot`].
pub(crate) const MAX_DOT: usize = 4;

/// 0 = undecided, 1 = portable, 2 = AVX-512, 3 = portable compiled for AVX2+FMA.
static BACKEND: AtomicU8 = AtomicU8::new(0);

fn detect() -> u8 {
    if std::env::var("SHRINK_CONV_KERNEL").map(|v| v == "generic").unwrap_or(false) {
        return 1;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return 2;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return 3;
        }
    }
    1
}

#[inline]
fn backend() -> u8 {
    let mut b = BACKEND.load(Ordering::Relaxed);
    if b == 0 {
        b = detect();
        BACKEND.store(b, Ordering::Relaxed);
    }
    b
}

/// Whether the AVX-512 kernels are in use.
#[inline]
pub(crate) fn has_avx512() -> bool {
    backend() == 2
}

/// Whether the AVX2+FMA builds of the portable kernels are in use.
#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2() -> bool {
    backend() == 3
}

/// Forces the portable kernels (`true`) or re-runs detection (`false`); for tests.
#[allow(dead_code)]
pub(crate) fn force_generic(generic: bool) {
    BACKEND.store(if generic { 1 } else { detect() }, Ordering::Relaxed);
}

/// `c[i*ldc + 16v + l] = sum_{kk<k} a[kk*mr + i] * b[koff[kk] + 16v + l]` for `i < mr`,
/// `v < nv`, `l < 16` (the tile is overwritten, not accumulated).
///
/// # Safety
/// `a` holds `k*mr` floats, `koff` holds `k` offsets, every `b + koff[kk] + [0, 16*nv)` is
/// readable and every `c + i*ldc + [0, 16*nv)` writable; `1 <= mr <= 8`, `1 <= nv <= 4`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn bcast(
    mr: usize,
    nv: usize,
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    macro_rules! go {
        ($md:ident) => {{
            macro_rules! nvs {
                ($m:literal) => {
                    match nv {
                        1 => $md::bcast::<$m, 1>(k, a, b, koff, c, ldc),
                        2 => $md::bcast::<$m, 2>(k, a, b, koff, c, ldc),
                        3 => $md::bcast::<$m, 3>(k, a, b, koff, c, ldc),
                        4 => $md::bcast::<$m, 4>(k, a, b, koff, c, ldc),
                        _ => unreachable!("nv {nv}"),
                    }
                };
            }
            match mr {
                1 => nvs!(1),
                2 => nvs!(2),
                3 => nvs!(3),
                4 => nvs!(4),
                5 => nvs!(5),
                6 => nvs!(6),
                7 => nvs!(7),
                8 => nvs!(8),
                _ => unreachable!("mr {mr}"),
            }
        }};
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        return go!(x86_64);
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return go!(avx2);
    }
    go!(generic)
}

/// Channel-vector tile: `out[i*16*nv + c] = sum_{kk<k} x[koff[kk] + q[i]] * w[kk*16*nv + c]`
/// for `i < mr`, `c < 16*nv` (rows are output pixels at wide positions `q[i]`, vectors are
/// output channels). `(mr, nv)` is one of `(6, 4)`, `(8, 2)`, `(8, 1)`.
///
/// # Safety
/// `w` holds `k*16*nv` floats, `koff` `k` offsets, `q` `mr` offsets, every `x + koff[kk] + q[i]`
/// is readable and `out` holds `mr*16*nv` floats.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn cvec(
    mr: usize,
    nv: usize,
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    macro_rules! go {
        ($md:ident) => {
            match (mr, nv) {
                (6, 4) => $md::cvec::<6, 4>(k, w, x, koff, q, out),
                (8, 2) => $md::cvec::<8, 2>(k, w, x, koff, q, out),
                (8, 1) => $md::cvec::<8, 1>(k, w, x, koff, q, out),
                _ => unreachable!("cvec {mr}x{nv}"),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        return go!(x86_64);
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return go!(avx2);
    }
    go!(generic)
}

/// For `i < mo`, `j < nk`: `out[i*ldo + j] += sum_{img<nimg} sum_{t < 16*nvec}
/// a[img*a_img + i*lda + t] * b[img*b_img + koff[j] + t]`.
///
/// # Safety
/// All addressed floats are readable (`a`, `b`) / writable (`out`); `1 <= mo, nk <= 4`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) unsafe fn dot(
    mo: usize,
    nk: usize,
    nimg: usize,
    nvec: usize,
    a: *const f32,
    lda: usize,
    a_img: usize,
    b: *const f32,
    koff: *const usize,
    b_img: usize,
    out: *mut f32,
    ldo: usize,
) {
    macro_rules! go {
        ($md:ident) => {{
            macro_rules! nks {
                ($m:literal) => {
                    match nk {
                        1 => $md::dot::<$m, 1>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
                        2 => $md::dot::<$m, 2>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
                        3 => $md::dot::<$m, 3>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
                        4 => $md::dot::<$m, 4>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
                        _ => unreachable!("nk {nk}"),
                    }
                };
            }
            match mo {
                1 => nks!(1),
                2 => nks!(2),
                3 => nks!(3),
                4 => nks!(4),
                _ => unreachable!("mo {mo}"),
            }
        }};
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        if mo == 4 && nk == 4 {
            return x86_64::dot4x4(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo);
        }
        return go!(x86_64);
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        return go!(avx2);
    }
    go!(generic)
}

/// `dst.copy_from_slice(src)` for short rows (inline vector copy on AVX-512).
#[inline]
pub(crate) fn copy(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: both slices hold `len` floats.
        return unsafe { x86_64::copy(dst.as_mut_ptr(), src.as_ptr(), dst.len()) };
    }
    dst.copy_from_slice(src)
}

/// `dst.fill(0.0)` for short runs.
#[inline]
pub(crate) fn zero(dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: `dst` holds `len` floats.
        return unsafe { x86_64::zero(dst.as_mut_ptr(), dst.len()) };
    }
    dst.fill(0.0)
}

/// `dst[..lo] = 0`, `dst[lo + j] = src[j * stride]` for `j < cnt`, `dst[lo + cnt..] = 0`
/// (one padded / stride-phase row of an image copy).
#[inline]
pub(crate) fn pad_row(dst: &mut [f32], lo: usize, cnt: usize, src: &[f32], stride: usize) {
    assert!(lo + cnt <= dst.len() && (cnt == 0 || (cnt - 1) * stride < src.len()));
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: bounds checked above; the kernel reads src[..(cnt-1)*stride + 1] only.
        return unsafe {
            x86_64::pad_row(dst.as_mut_ptr(), dst.len(), lo, cnt, src.as_ptr(), src.len(), stride)
        };
    }
    dst[..lo].fill(0.0);
    for (j, d) in dst[lo..lo + cnt].iter_mut().enumerate() {
        *d = src[j * stride];
    }
    dst[lo + cnt..].fill(0.0);
}

/// For `r < rows`: `dst[r*dst_stride..][..n] = src[r*src_stride..][..n]` and
/// `dst[r*dst_stride + n..][..zero_to - n] = 0`.
#[inline]
pub(crate) fn rows_copy(
    dst: &mut [f32],
    dst_stride: usize,
    src: &[f32],
    src_stride: usize,
    rows: usize,
    n: usize,
    zero_to: usize,
) {
    if rows == 0 {
        return;
    }
    assert!(n <= zero_to && zero_to <= dst_stride.max(zero_to) && n <= src_stride.max(n));
    assert!((rows - 1) * dst_stride + zero_to <= dst.len() && (rows - 1) * src_stride + n <= src.len());
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: bounds checked above.
        return unsafe {
            x86_64::rows_copy(dst.as_mut_ptr(), dst_stride, src.as_ptr(), src_stride, rows, n, zero_to)
        };
    }
    for r in 0..rows {
        let d = &mut dst[r * dst_stride..][..zero_to];
        d[..n].copy_from_slice(&src[r * src_stride..][..n]);
        d[n..].fill(0.0);
    }
}

/// Stride-1 padded plane: `h` rows of `w` floats from `src` placed at row `top + y`, column
/// `left` of rows `wq` wide (`wq >= w + left`), zeros everywhere else in `dst`.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn pad_plane(
    dst: &mut [f32],
    src: &[f32],
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    wq: usize,
) {
    assert!(wq >= w + left && src.len() >= h * w && dst.len() >= (top + h) * wq + left);
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: bounds checked above (row y's zero tail ends at (top + y + 1) * wq + left).
        return unsafe { x86_64::pad_plane(dst.as_mut_ptr(), dst.len(), src.as_ptr(), h, w, top, left, wq) };
    }
    dst.fill(0.0);
    for y in 0..h {
        dst[(top + y) * wq + left..][..w].copy_from_slice(&src[y * w..][..w]);
    }
}

/// `dst[2m] = a[m]`, `dst[2m + 1] = b[m]` (one input-gradient row from two column phases).
#[inline]
pub(crate) fn interleave2(dst: &mut [f32], a: &[f32], b: &[f32]) {
    let n = dst.len();
    assert!(a.len() >= n.div_ceil(2) && b.len() >= n / 2);
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: lengths checked above; vector loads stay within a / b.
        return unsafe { x86_64::interleave2(dst.as_mut_ptr(), n, a.as_ptr(), a.len(), b.as_ptr(), b.len()) };
    }
    for (x, d) in dst.iter_mut().enumerate() {
        *d = if x % 2 == 0 { a[x / 2] } else { b[x / 2] };
    }
}

//! Register-blocked micro-kernels shared by the forward and backward convolution passes.
//!
//! Two shapes cover every pass:
//! * [`bcast`] — an outer-product tile `C[MR x 16*NV] += A[k][MR] (x) B[k][16*NV]` summed over
//!   `k`, with B rows addressed through an offset table (rows of a packed im2col panel, or
//!   shifted windows of a zero-padded image for the direct stride-1 path).
//! * [`dot`] — a tile of dot products `out[i][j] += <A_i, B_j>` over long vectors, summed over
//!   several images (the weight gradient, reducing over output pixels).
//!
//! The AVX-512 versions are chosen at run time with `is_x86_feature_detected!`; the portable
//! versions are plain Rust loops.
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

/// 0 = undecided, 1 = portable, 2 = AVX-512.
static BACKEND: AtomicU8 = AtomicU8::new(0);

fn detect() -> u8 {
    if std::env::var("SHRINK_CONV_KERNEL").map(|v| v == "generic").unwrap_or(false) {
        return 1;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return 2;
    }
    1
}

/// Whether the AVX-512 kernels are in use.
#[inline]
pub(crate) fn has_avx512() -> bool {
    let mut b = BACKEND.load(Ordering::Relaxed);
    if b == 0 {
        b = detect();
        BACKEND.store(b, Ordering::Relaxed);
    }
    b == 2
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
    go!(generic)
}

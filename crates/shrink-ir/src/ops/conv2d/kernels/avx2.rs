//! The portable kernels ([`super::generic`]) compiled for AVX2+FMA, with fused multiply-adds:
//! the compiler vectorizes each 16-lane row as two 256-bit registers. Used on x86-64 CPUs
//! without AVX-512 (the caller checks the CPU first). Same contracts as [`super::bcast`],
//! [`super::dot`] and [`super::cvec`].
use super::generic;

/// # Safety
/// Same contract as [`super::bcast`]; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn bcast<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: forwarded under the same contract.
    unsafe { generic::bcast::<MR, NV, true>(k, a, b, koff, c, ldc) }
}

/// # Safety
/// Same contract as [`super::dot`]; the CPU supports AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dot<const MO: usize, const NK: usize>(
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
    // SAFETY: forwarded under the same contract.
    unsafe { generic::dot::<MO, NK, true>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo) }
}

/// # Safety
/// Same contract as [`super::cvec`]; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn cvec<const MR: usize, const NV: usize>(
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    // SAFETY: forwarded under the same contract.
    unsafe { generic::cvec::<MR, NV, true>(k, w, x, koff, q, out) }
}

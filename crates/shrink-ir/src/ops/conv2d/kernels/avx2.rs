//! AVX2+FMA micro-kernels for x86-64 CPUs without AVX-512 (the caller checks the CPU first).
//!
//! The callers' tiles are sized for AVX-512's 32 registers (up to 8 rows × 4 vectors of 16
//! lanes); with AVX2's 16 registers of 8 lanes such a tile would spill to the stack on every
//! multiply-add. Each kernel here therefore walks the caller's tile in register-sized sub-tiles
//! (at most 8 accumulators of 8 lanes) and runs the portable loop body on each, compiled for
//! AVX2 with fused multiply-adds. Same contracts as [`super::bcast`], [`super::dot`] and
//! [`super::cvec`].

use std::arch::x86_64::{
    __m256, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
};

const L: usize = 16;

/// Rows per sub-tile: 6 rows × one 16-lane vector = 12 accumulators (plus 2 registers for
/// the vector and one for the broadcast).
const SUB: usize = 6;

/// Rows per [`bcast`] sub-tile: 4 and 6 measured alike (ResNet-20 train step 407–437 vs
/// 421–430 ms, within the machine's noise); 4 leaves registers to spare.
const BCAST_SUB: usize = 4;

/// Calls `f(i0, rows, v)` for each sub-tile of an `mr`-row × `nv`-vector tile: rows
/// `i0 .. i0 + rows` (at most `sub`) of vector `v`.
#[inline(always)]
fn sub_tiles(mr: usize, nv: usize, sub: usize, mut f: impl FnMut(usize, usize, usize)) {
    let mut i0 = 0;
    while i0 < mr {
        let rows = sub.min(mr - i0);
        for v in 0..nv {
            f(i0, rows, v);
        }
        i0 += rows;
    }
}

/// `kernel::<P, rows>(args)` for a run-time `rows` in 1..=6 (the last const parameter).
macro_rules! by_rows {
    ($rows:expr, $kernel:ident::<$p:ident>($($arg:expr),*)) => {
        match $rows {
            6 => $kernel::<$p, 6>($($arg),*),
            5 => $kernel::<$p, 5>($($arg),*),
            4 => $kernel::<$p, 4>($($arg),*),
            3 => $kernel::<$p, 3>($($arg),*),
            2 => $kernel::<$p, 2>($($arg),*),
            _ => $kernel::<$p, 1>($($arg),*),
        }
    };
}

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
    sub_tiles(MR, NV, BCAST_SUB, |i0, rows, v| {
        // SAFETY: rows i0 .. i0 + rows and vector v lie inside the caller's tile.
        unsafe {
            let (a, b, c) = (a.add(i0), b.add(L * v), c.add(i0 * ldc + L * v));
            by_rows!(rows, bcast_sub::<MR>(k, a, b, koff, c, ldc))
        }
    });
}

/// `R` rows (of the `MR`-row packed `a`) × one vector of [`bcast`].
#[inline(always)]
unsafe fn bcast_sub<const MR: usize, const R: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): AVX2 and FMA are enabled in the caller; the caller's contract
    // covers every addressed float.
    unsafe {
        let mut acc: [[__m256; 2]; R] = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let bp = b.add(*koff.add(kk));
            let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
            for (i, acc_i) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(kk * MR + i));
                acc_i[0] = _mm256_fmadd_ps(av, b0, acc_i[0]);
                acc_i[1] = _mm256_fmadd_ps(av, b1, acc_i[1]);
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            _mm256_storeu_ps(c.add(i * ldc), acc_i[0]);
            _mm256_storeu_ps(c.add(i * ldc + 8), acc_i[1]);
        }
    }
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
    sub_tiles(MR, NV, SUB, |i0, rows, v| {
        // SAFETY: rows i0 .. i0 + rows and vector v lie inside the caller's tile.
        unsafe {
            let (w, q, out) = (w.add(L * v), q.add(i0), out.add((i0 * NV + v) * L));
            by_rows!(rows, cvec_sub::<NV>(k, w, x, koff, q, out))
        }
    });
}

/// `R` output pixels × one channel vector of [`cvec`]; `out` rows are `NV * 16` apart.
#[inline(always)]
unsafe fn cvec_sub<const NV: usize, const R: usize>(
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    // SAFETY (whole body): AVX2 and FMA are enabled in the caller; the caller's contract
    // covers every addressed float.
    unsafe {
        let qi: [usize; R] = std::array::from_fn(|i| *q.add(i));
        let mut acc: [[__m256; 2]; R] = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let xb = x.add(*koff.add(kk));
            let wp = w.add(kk * L * NV);
            let (w0, w1) = (_mm256_loadu_ps(wp), _mm256_loadu_ps(wp.add(8)));
            for (i, acc_i) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*xb.add(qi[i]));
                acc_i[0] = _mm256_fmadd_ps(av, w0, acc_i[0]);
                acc_i[1] = _mm256_fmadd_ps(av, w1, acc_i[1]);
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(i * NV * L), acc_i[0]);
            _mm256_storeu_ps(out.add(i * NV * L + 8), acc_i[1]);
        }
    }
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
    // Sub-tiles of up to 4 × 2 dot products, accumulated in 8 lanes: 8 accumulators, 4 rows
    // of `a` and one of `b` in registers.
    let mut j0 = 0;
    while j0 < NK {
        let nk = 2.min(NK - j0);
        // SAFETY: columns j0.. lie inside the caller's tile.
        unsafe {
            let (koff, out) = (koff.add(j0), out.add(j0));
            match nk {
                2 => dot_sub::<MO, 2>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
                _ => dot_sub::<MO, 1>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo),
            }
        }
        j0 += nk;
    }
}

/// All `MO` rows × `NK` columns of [`dot`] (`NK` ≤ 2).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn dot_sub<const MO: usize, const NK: usize>(
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
    // SAFETY (whole body): AVX2 and FMA are enabled in the caller; the caller's contract covers
    // every addressed float.
    let mut vacc: [[__m256; NK]; MO] = unsafe { [[_mm256_setzero_ps(); NK]; MO] };
    let ko: [usize; NK] = std::array::from_fn(|j| unsafe { *koff.add(j) });
    for img in 0..nimg {
        unsafe {
            let ai = a.add(img * a_img);
            let bi = b.add(img * b_img);
            for t in (0..nvec * L).step_by(8) {
                let av: [__m256; MO] = std::array::from_fn(|i| _mm256_loadu_ps(ai.add(i * lda + t)));
                for (j, &o) in ko.iter().enumerate() {
                    let bv = _mm256_loadu_ps(bi.add(o + t));
                    for (i, &a_vec) in av.iter().enumerate() {
                        vacc[i][j] = _mm256_fmadd_ps(a_vec, bv, vacc[i][j]);
                    }
                }
            }
        }
    }
    let mut acc = [[[0f32; 8]; NK]; MO];
    for (acc_i, v_i) in acc.iter_mut().zip(&vacc) {
        for (accv, v) in acc_i.iter_mut().zip(v_i) {
            // SAFETY: `accv` holds 8 floats.
            unsafe { _mm256_storeu_ps(accv.as_mut_ptr(), *v) };
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (j, accv) in acc_i.iter().enumerate() {
            // SAFETY: out[i*ldo + j] is writable (caller's contract).
            unsafe { *out.add(i * ldo + j) += accv.iter().sum::<f32>() };
        }
    }
}

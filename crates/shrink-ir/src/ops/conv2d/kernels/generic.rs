//! Portable micro-kernels (any target; auto-vectorized by the compiler). Same contracts as the
//! SIMD versions; used when AVX-512 is not available. `FMA` selects fused multiply-adds: the
//! AVX2+FMA backend ([`super::avx2`]) inlines these bodies into functions compiled for those
//! instructions; without hardware FMA, `mul_add` would be a libm call.

const L: usize = 16;

#[inline(always)]
fn load16(p: *const f32) -> [f32; L] {
    let mut v = [0f32; L];
    // SAFETY: callers guarantee 16 readable floats at `p`.
    unsafe { std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), L) };
    v
}

/// `a * b + c`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        c + a * b
    }
}

/// See [`super::bcast`].
///
/// # Safety
/// Same contract as [`super::bcast`].
#[inline(always)]
pub(super) unsafe fn bcast<const MR: usize, const NV: usize, const FMA: bool>(
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[[0f32; L]; NV]; MR];
    for kk in 0..k {
        let bp = b.add(*koff.add(kk));
        let bv: [[f32; L]; NV] = std::array::from_fn(|v| load16(bp.add(L * v)));
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let av = *a.add(kk * MR + i);
            for v in 0..NV {
                for l in 0..L {
                    acc_i[v][l] = madd::<FMA>(av, bv[v][l], acc_i[v][l]);
                }
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (v, accv) in acc_i.iter().enumerate() {
            std::ptr::copy_nonoverlapping(accv.as_ptr(), c.add(i * ldc + L * v), L);
        }
    }
}

/// See [`super::dot`].
///
/// # Safety
/// Same contract as [`super::dot`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn dot<const MO: usize, const NK: usize, const FMA: bool>(
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
    let mut acc = [[[0f32; L]; NK]; MO];
    let ko: [usize; NK] = std::array::from_fn(|j| *koff.add(j));
    for img in 0..nimg {
        let ai = a.add(img * a_img);
        let bi = b.add(img * b_img);
        for v in 0..nvec {
            let av: [[f32; L]; MO] = std::array::from_fn(|i| load16(ai.add(i * lda + L * v)));
            for j in 0..NK {
                let bv = load16(bi.add(ko[j] + L * v));
                for i in 0..MO {
                    for l in 0..L {
                        acc[i][j][l] = madd::<FMA>(av[i][l], bv[l], acc[i][j][l]);
                    }
                }
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (j, accv) in acc_i.iter().enumerate() {
            *out.add(i * ldo + j) += accv.iter().sum::<f32>();
        }
    }
}

/// See [`super::cvec`].
///
/// # Safety
/// Same contract as [`super::cvec`].
#[inline(always)]
pub(super) unsafe fn cvec<const MR: usize, const NV: usize, const FMA: bool>(
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    let mut acc = [[[0f32; L]; NV]; MR];
    let qi: [usize; MR] = std::array::from_fn(|i| *q.add(i));
    for kk in 0..k {
        let xb = x.add(*koff.add(kk));
        let wv: [[f32; L]; NV] = std::array::from_fn(|v| load16(w.add(kk * L * NV + L * v)));
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let a = *xb.add(qi[i]);
            for v in 0..NV {
                for l in 0..L {
                    acc_i[v][l] = madd::<FMA>(a, wv[v][l], acc_i[v][l]);
                }
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (v, accv) in acc_i.iter().enumerate() {
            std::ptr::copy_nonoverlapping(accv.as_ptr(), out.add((i * NV + v) * L), L);
        }
    }
}

/// [`bcast`] without fused multiply-adds, for the baseline target.
///
/// # Safety
/// Same contract as [`super::bcast`].
pub(super) unsafe fn bcast_plain<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: forwarded under the same contract.
    unsafe { bcast::<MR, NV, false>(k, a, b, koff, c, ldc) }
}

/// [`dot`] without fused multiply-adds, for the baseline target.
///
/// # Safety
/// Same contract as [`super::dot`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn dot_plain<const MO: usize, const NK: usize>(
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
    unsafe { dot::<MO, NK, false>(nimg, nvec, a, lda, a_img, b, koff, b_img, out, ldo) }
}

/// [`cvec`] without fused multiply-adds, for the baseline target.
///
/// # Safety
/// Same contract as [`super::cvec`].
pub(super) unsafe fn cvec_plain<const MR: usize, const NV: usize>(
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    // SAFETY: forwarded under the same contract.
    unsafe { cvec::<MR, NV, false>(k, w, x, koff, q, out) }
}

//! Portable micro-kernels (any target; auto-vectorized by the compiler). Same contracts as the
//! SIMD versions; used when AVX-512 is not available.

const L: usize = 16;

#[inline(always)]
fn load16(p: *const f32) -> [f32; L] {
    let mut v = [0f32; L];
    // SAFETY: callers guarantee 16 readable floats at `p`.
    unsafe { std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), L) };
    v
}

/// See [`super::bcast`].
///
/// # Safety
/// Same contract as [`super::bcast`].
#[inline(always)]
pub(super) unsafe fn bcast<const MR: usize, const NV: usize>(
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
                    acc_i[v][l] += av * bv[v][l];
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
                        acc[i][j][l] += av[i][l] * bv[l];
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
pub(super) unsafe fn cvec<const MR: usize, const NV: usize>(
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
                    acc_i[v][l] += a * wv[v][l];
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

//! AVX-512 micro-kernels (selected at run time by [`super::has_avx512`]).
use std::arch::x86_64::*;

/// See [`super::bcast`]: `c[i][0..16*NV] = sum_k a[k*MR + i] * b[koff[k] .. + 16*NV]`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn bcast<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    b: *const f32,
    koff: *const usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let mut ap = a;
    for kk in 0..k {
        let bp = b.add(*koff.add(kk));
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, bvv) in bv.iter_mut().enumerate() {
            *bvv = _mm512_loadu_ps(bp.add(16 * v));
        }
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ap.add(i));
            for v in 0..NV {
                acc_i[v] = _mm512_fmadd_ps(av, bv[v], acc_i[v]);
            }
        }
        ap = ap.add(MR);
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (v, accv) in acc_i.iter().enumerate() {
            _mm512_storeu_ps(c.add(i * ldc + 16 * v), *accv);
        }
    }
}

/// See [`super::cvec`]: `out[i][0..16*NV] = sum_k x[koff[k] + q[i]] * w[k][0..16*NV]`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn cvec<const MR: usize, const NV: usize>(
    k: usize,
    w: *const f32,
    x: *const f32,
    koff: *const usize,
    q: *const usize,
    out: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let mut qi = [0usize; MR];
    for (i, v) in qi.iter_mut().enumerate() {
        *v = *q.add(i);
    }
    let mut wp = w;
    for kk in 0..k {
        let xb = x.add(*koff.add(kk));
        let mut wv = [_mm512_setzero_ps(); NV];
        for (v, wvv) in wv.iter_mut().enumerate() {
            *wvv = _mm512_loadu_ps(wp.add(16 * v));
        }
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let a = _mm512_set1_ps(*xb.add(qi[i]));
            for v in 0..NV {
                acc_i[v] = _mm512_fmadd_ps(a, wv[v], acc_i[v]);
            }
        }
        wp = wp.add(16 * NV);
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (v, accv) in acc_i.iter().enumerate() {
            _mm512_storeu_ps(out.add(i * 16 * NV + 16 * v), *accv);
        }
    }
}

/// Sums 16 vectors lane-wise into one vector whose lane `j` is the full sum of `v[j]`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn hsum16(v: &[__m512; 16]) -> __m512 {
    // Level 1: pairs (a, b) -> 256-bit halves interleaved: [a.lo+a.hi | b.lo+b.hi].
    let mut l1 = [_mm512_setzero_ps(); 8];
    for i in 0..8 {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        // lanes 0..8 from a's halves, 8..16 from b's halves
        let lo = _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b); // a0 a1 b0 b1 (128-bit blocks)
        let hi = _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b); // a2 a3 b2 b3
        l1[i] = _mm512_add_ps(lo, hi); // [a0+a2, a1+a3, b0+b2, b1+b3]
    }
    // Level 2: combine pairs of l1 -> blocks [a, b, c, d] each 128-bit wide partial sums.
    let mut l2 = [_mm512_setzero_ps(); 4];
    for i in 0..4 {
        let (x, y) = (l1[2 * i], l1[2 * i + 1]);
        let lo = _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y); // x0 x2 y0 y2
        let hi = _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y); // x1 x3 y1 y3
        l2[i] = _mm512_add_ps(lo, hi); // block j = one of 4 vectors, 4 lanes of partials
    }
    // Each l2[i] holds 4 vectors (4 lanes each). Now reduce within 128-bit blocks.
    // Level 3: pairs of l2 -> 2 lanes per vector.
    let mut l3 = [_mm512_setzero_ps(); 2];
    for i in 0..2 {
        let (x, y) = (l2[2 * i], l2[2 * i + 1]);
        let lo = _mm512_unpacklo_ps(x, y); // x0 y0 x1 y1 per block
        let hi = _mm512_unpackhi_ps(x, y); // x2 y2 x3 y3
        l3[i] = _mm512_add_ps(lo, hi); // per block: [x0+x2, y0+y2, x1+x3, y1+y3]
    }
    // Level 4.
    let (x, y) = (l3[0], l3[1]);
    let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    _mm512_add_ps(lo, hi)
}

/// Order in which [`hsum16`] leaves the 16 sums: lane `l` holds the sum of `v[HSUM_ORDER[l]]`.
pub(super) const HSUM_ORDER: [usize; 16] = hsum_order();

const fn hsum_order() -> [usize; 16] {
    // Level 2 leaves block j of l2[i] = partials of v[4i + j]; levels 3-4 put l2[i] in lane i
    // of every 128-bit block j. Verified by the `hsum16_order` test.
    let mut order = [0usize; 16];
    let mut blk = 0;
    while blk < 4 {
        let mut lane = 0;
        while lane < 4 {
            order[blk * 4 + lane] = 4 * lane + blk;
            lane += 1;
        }
        blk += 1;
    }
    order
}

/// See [`super::dot`]: `out[i*ldo + j] += sum over images and vectors of a_i . b_j`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    let mut acc = [[_mm512_setzero_ps(); NK]; MO];
    let mut ko = [0usize; NK];
    for (j, kj) in ko.iter_mut().enumerate() {
        *kj = *koff.add(j);
    }
    for img in 0..nimg {
        let ai = a.add(img * a_img);
        let bi = b.add(img * b_img);
        for v in 0..nvec {
            let mut av = [_mm512_setzero_ps(); MO];
            for (i, avi) in av.iter_mut().enumerate() {
                *avi = _mm512_loadu_ps(ai.add(i * lda + 16 * v));
            }
            for j in 0..NK {
                let bv = _mm512_loadu_ps(bi.add(ko[j] + 16 * v));
                for i in 0..MO {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
    }
    for (i, acc_i) in acc.iter().enumerate() {
        for (j, accv) in acc_i.iter().enumerate() {
            *out.add(i * ldo + j) += _mm512_reduce_add_ps(*accv);
        }
    }
}

/// `dot` for a full 4x4 block with the 16 horizontal sums done by one transpose-add tree.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dot4x4(
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
    const MO: usize = 4;
    const NK: usize = 4;
    let mut acc = [_mm512_setzero_ps(); 16];
    let mut ko = [0usize; NK];
    for (j, kj) in ko.iter_mut().enumerate() {
        *kj = *koff.add(j);
    }
    for img in 0..nimg {
        let ai = a.add(img * a_img);
        let bi = b.add(img * b_img);
        for v in 0..nvec {
            let mut av = [_mm512_setzero_ps(); MO];
            for (i, avi) in av.iter_mut().enumerate() {
                *avi = _mm512_loadu_ps(ai.add(i * lda + 16 * v));
            }
            for j in 0..NK {
                let bv = _mm512_loadu_ps(bi.add(ko[j] + 16 * v));
                for i in 0..MO {
                    acc[i * NK + j] = _mm512_fmadd_ps(av[i], bv, acc[i * NK + j]);
                }
            }
        }
    }
    let s = hsum16(&acc);
    let mut tmp = [0f32; 16];
    _mm512_storeu_ps(tmp.as_mut_ptr(), s);
    for (lane, &src) in HSUM_ORDER.iter().enumerate() {
        let (i, j) = (src / NK, src % NK);
        *out.add(i * ldo + j) += tmp[lane];
    }
}

/// `dst[..n] = src[..n]` with 16-float vectors and a masked tail (no libc call: the copies
/// here are short rows, where `memcpy`'s call overhead dominates).
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn copy(dst: *mut f32, src: *const f32, n: usize) {
    let mut i = 0;
    while i + 16 <= n {
        _mm512_storeu_ps(dst.add(i), _mm512_loadu_ps(src.add(i)));
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        _mm512_mask_storeu_ps(dst.add(i), m, _mm512_maskz_loadu_ps(m, src.add(i)));
    }
}

/// `dst[..n] = 0`.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn zero(dst: *mut f32, n: usize) {
    let z = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        _mm512_storeu_ps(dst.add(i), z);
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        _mm512_mask_storeu_ps(dst.add(i), m, z);
    }
}

/// `dst[j] = src[2*j]` for `j < n`; `src[..avail]` is readable (`avail >= 2n - 1`).
/// Full-width loads where `avail` allows (masked loads were much slower here), scalar tail.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn gather2(dst: *mut f32, src: *const f32, n: usize, avail: usize) {
    let idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let mut j = 0;
    while j + 16 <= n && 2 * j + 32 <= avail {
        let lo = _mm512_loadu_ps(src.add(2 * j));
        let hi = _mm512_loadu_ps(src.add(2 * j + 16));
        _mm512_storeu_ps(dst.add(j), _mm512_permutex2var_ps(lo, idx, hi));
        j += 16;
    }
    while j < n {
        *dst.add(j) = *src.add(2 * j);
        j += 1;
    }
}

/// See [`super::pad_row`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pad_row(
    dst: *mut f32,
    n: usize,
    lo: usize,
    cnt: usize,
    src: *const f32,
    avail: usize,
    stride: usize,
) {
    zero(dst, lo);
    match stride {
        1 => copy(dst.add(lo), src, cnt),
        2 => gather2(dst.add(lo), src, cnt, avail),
        _ => {
            for j in 0..cnt {
                *dst.add(lo + j) = *src.add(j * stride);
            }
        }
    }
    zero(dst.add(lo + cnt), n - lo - cnt);
}

/// See [`super::pad_plane`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pad_plane(
    dst: *mut f32,
    dst_len: usize,
    src: *const f32,
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    wq: usize,
) {
    zero(dst, top * wq + left);
    for y in 0..h {
        let row = dst.add((top + y) * wq + left);
        copy(row, src.add(y * w), w);
        // right zeros of this row and left zeros of the next
        zero(row.add(w), wq - w);
    }
    let done = (top + h) * wq + left;
    if dst_len > done {
        zero(dst.add(done), dst_len - done);
    }
}

/// See [`super::interleave2`].
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn interleave2(
    dst: *mut f32,
    n: usize,
    a: *const f32,
    a_len: usize,
    b: *const f32,
    b_len: usize,
) {
    let lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    let hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    let mut m = 0; // pairs done
    while 2 * m + 32 <= n && m + 16 <= a_len && m + 16 <= b_len {
        let va = _mm512_loadu_ps(a.add(m));
        let vb = _mm512_loadu_ps(b.add(m));
        _mm512_storeu_ps(dst.add(2 * m), _mm512_permutex2var_ps(va, lo_idx, vb));
        _mm512_storeu_ps(dst.add(2 * m + 16), _mm512_permutex2var_ps(va, hi_idx, vb));
        m += 16;
    }
    let mut x = 2 * m;
    while x < n {
        *dst.add(x) = if x % 2 == 0 { *a.add(x / 2) } else { *b.add(x / 2) };
        x += 1;
    }
}

/// See [`super::rows_copy`].
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows_copy(
    dst: *mut f32,
    dst_stride: usize,
    src: *const f32,
    src_stride: usize,
    rows: usize,
    n: usize,
    zero_to: usize,
) {
    for r in 0..rows {
        let d = dst.add(r * dst_stride);
        copy(d, src.add(r * src_stride), n);
        zero(d.add(n), zero_to - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsum16_order() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let mut v = [[0f32; 16]; 16];
        for (i, vi) in v.iter_mut().enumerate() {
            for (l, x) in vi.iter_mut().enumerate() {
                *x = (i * 1000 + l) as f32;
            }
        }
        let got = unsafe {
            let vv: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(v[i].as_ptr()));
            let s = hsum16(&vv);
            let mut t = [0f32; 16];
            _mm512_storeu_ps(t.as_mut_ptr(), s);
            t
        };
        for lane in 0..16 {
            let want: f32 = v[HSUM_ORDER[lane]].iter().sum();
            assert_eq!(got[lane], want, "lane {lane}");
        }
    }
}

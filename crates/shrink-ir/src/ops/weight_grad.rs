//! The weight gradient of a linear layer, `dW = Gᵀ X`, computed a strip of rows at a time and
//! handed to an in-place update (an optimizer step) while the strip is still in cache.
//!
//! A separate gradient costs a 104 MB write plus a 104 MB read per step for simple-dnn, on top
//! of the optimizer's own pass over the weights and their state. Here each strip of [`MR`] output
//! rows is computed into an L2-resident scratch buffer by an AVX-512 register-tile kernel and
//! immediately consumed by the update (an AVX2 build of the same tiles serves CPUs without
//! AVX-512), which also prefetches the next strip's weights and state
//! while the kernel runs; the whole gradient never exists.
use rayon::prelude::*;

/// Output rows per strip (the register tile's height).
pub const MR: usize = 12;
/// Output columns per register tile (two 16-lane vectors).
pub const NR: usize = 32;
/// Strips per parallel task: consecutive strips of one task prefetch each other.
const STRIPS_PER_TASK: usize = 8;

/// A 2-D f32 operand: its elements (from the layout's start offset) and row/column strides.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.rs + c * self.cs]
    }
}

/// Consumes one strip of the gradient: `w` (whole rows of the weight, starting at flat index
/// `offset`) is updated in place from `grad` (the same elements of `dW`), reading and writing the
/// same run of every state buffer in `state`.
pub trait StripUpdate: Sync {
    fn apply(&self, w: &mut [f32], grad: &[f32], state: &mut [&mut [f32]]);
}

/// Which register-tile kernel this CPU runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// 12×32 tiles in 24 zmm accumulators.
    Avx512,
    /// The same tiles as four 6×16 sub-tiles in 12 ymm accumulators (AVX2 + FMA).
    Avx2,
}

/// The kernel this CPU runs (detected once at run time; `SHRINK_WGRAD_KERNEL=avx2` forces the
/// AVX2 one for comparisons), or `None` when it has neither instruction set.
pub fn backend() -> Option<Backend> {
    static CHOSEN: std::sync::OnceLock<Option<Backend>> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let forced_avx2 = std::env::var("SHRINK_WGRAD_KERNEL").is_ok_and(|v| v == "avx2");
            if std::arch::is_x86_feature_detected!("avx512f") && !forced_avx2 {
                return Some(Backend::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Some(Backend::Avx2);
            }
        }
        None
    })
}

/// Whether this CPU runs the fused kernel.
pub fn available() -> bool {
    backend().is_some()
}

/// Raw parts of a mutable slice, shared by tasks that each touch a disjoint range of it.
#[derive(Clone, Copy)]
struct SharedMut {
    ptr: *mut f32,
    len: usize,
}
// SAFETY: tasks only form disjoint sub-slices (see `update_with_gradient`).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    fn of(s: &mut [f32]) -> Self {
        SharedMut { ptr: s.as_mut_ptr(), len: s.len() }
    }

    /// # Safety
    /// `start..start + len` must be in bounds and not aliased by any other live slice, and the
    /// buffer must outlive `'a`.
    unsafe fn range<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        assert!(start + len <= self.len);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Computes `dW = g · xtᵀ` for `g` [out, n] and `xt` [in, n] strip by strip and applies
/// `update` to each strip of `w` ([out, in], row-major) and of every buffer in `state` (each
/// the length of `w`). Returns `false`, touching nothing, when this CPU lacks the kernel.
pub fn update_with_gradient(
    g: View,
    xt: View,
    w: &mut [f32],
    state: &mut [Vec<f32>],
    update: &dyn StripUpdate,
) -> bool {
    match backend() {
        Some(b) => update_with_backend(b, g, xt, w, state, update),
        None => false,
    }
}

/// [`update_with_gradient`] on a given kernel (which the CPU must support).
fn update_with_backend(
    backend: Backend,
    g: View,
    xt: View,
    w: &mut [f32],
    state: &mut [Vec<f32>],
    update: &dyn StripUpdate,
) -> bool {
    let (out, inf, n) = (g.rows, xt.rows, g.cols);
    assert_eq!(xt.cols, n, "weight gradient: batch sizes differ");
    assert_eq!(w.len(), out * inf, "weight gradient: weight shape");
    assert!(state.iter().all(|s| s.len() == w.len()), "weight gradient: state shape");
    let panels = pack_panels(xt);
    let w_all = SharedMut::of(w);
    let states: Vec<SharedMut> = state.iter_mut().map(|s| SharedMut::of(s)).collect();
    let strips = out.div_ceil(MR);
    let tasks = strips.div_ceil(STRIPS_PER_TASK);
    (0..tasks).into_par_iter().for_each_init(
        || (vec![0f32; n * MR], vec![0f32; MR * inf]),
        |(g_strip, scratch), task| {
            let first = task * STRIPS_PER_TASK;
            let last = (first + STRIPS_PER_TASK).min(strips);
            for s in first..last {
                let r0 = s * MR;
                let rows = MR.min(out - r0);
                pack_strip(g, r0, rows, g_strip);
                // The next strip of this task, whose weights and state are prefetched meanwhile.
                let next = (s + 1 < last).then(|| (r0 + MR) * inf..((r0 + 2 * MR).min(out)) * inf);
                let prefetch = next.map(|r| (w_all, &states[..], r));
                // SAFETY: the CPU has the backend's instruction set (`backend()` detected it);
                // the panels, strip and scratch buffers have the sizes the strip kernels expect.
                unsafe {
                    match backend {
                        Backend::Avx512 => strip_avx512(n, inf, g_strip, &panels, scratch, prefetch),
                        Backend::Avx2 => strip_avx2(n, inf, g_strip, &panels, scratch, prefetch),
                    }
                };
                let span = r0 * inf..(r0 + rows) * inf;
                // SAFETY: strips are disjoint row ranges, each handled by exactly one task.
                let w_rows = unsafe { w_all.range(span.start, span.len()) };
                let mut st: Vec<&mut [f32]> =
                    states.iter().map(|b| unsafe { b.range(span.start, span.len()) }).collect();
                update.apply(w_rows, &scratch[..rows * inf], &mut st);
            }
        },
    );
    true
}

/// `xt` [in, n] as column panels of [`NR`] features: panel `p` holds `[n][NR]` (zero-padded).
fn pack_panels(xt: View) -> Vec<f32> {
    let (inf, n) = (xt.rows, xt.cols);
    let mut out = vec![0f32; inf.div_ceil(NR) * n * NR];
    out.par_chunks_mut((n * NR).max(1)).enumerate().for_each(|(p, panel)| {
        for c in 0..NR.min(inf - p * NR) {
            for k in 0..n {
                panel[k * NR + c] = xt.at(p * NR + c, k);
            }
        }
    });
    out
}

/// Rows `r0..r0 + rows` of `g` interleaved as `[n][MR]` (zero-padded to [`MR`] rows).
fn pack_strip(g: View, r0: usize, rows: usize, dst: &mut [f32]) {
    for k in 0..g.cols {
        for r in 0..MR {
            dst[k * MR + r] = if r < rows { g.at(r0 + r, k) } else { 0.0 };
        }
    }
}

type Prefetch<'a> = (SharedMut, &'a [SharedMut], std::ops::Range<usize>);

/// One strip: `scratch[r][c] = Σ_k strip[k][r] · panels[c / NR][k][c % NR]` for all `inf`
/// columns, by `tile` per panel, prefetching `prefetch`'s range of the weight and state buffers
/// into L2 on the way.
///
/// # Safety
/// `tile` must be runnable on this CPU. `strip` holds `n * MR` values, `panels`
/// `ceil(inf / NR) * n * NR`, `scratch` `MR * inf`; the prefetch range lies inside each buffer.
#[inline(always)]
unsafe fn strip_gradient(
    n: usize,
    inf: usize,
    strip: &[f32],
    panels: &[f32],
    scratch: &mut [f32],
    prefetch: Option<Prefetch>,
    tile: unsafe fn(usize, *const f32, *const f32, *mut f32, usize, usize),
) {
    let count = inf.div_ceil(NR);
    assert!(strip.len() >= n * MR && panels.len() >= count * n * NR && scratch.len() >= MR * inf);
    for p in 0..count {
        #[cfg(target_arch = "x86_64")]
        if let Some((w, states, range)) = &prefetch {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            // Spread the next strip's lines evenly over this strip's panels.
            let per = range.len().div_ceil(count).next_multiple_of(16);
            let lo = (range.start + p * per).min(range.end);
            let hi = (lo + per).min(range.end);
            for buf in std::iter::once(w).chain(states.iter()) {
                let mut o = lo;
                while o < hi {
                    // SAFETY: `o` lies inside the buffer (the range is in bounds); prefetching
                    // never faults anyway.
                    unsafe { _mm_prefetch::<_MM_HINT_T1>(buf.ptr.add(o) as *const i8) };
                    o += 16;
                }
            }
        }
        let cols = NR.min(inf - p * NR);
        // SAFETY: bounds asserted above; the tile writes `MR` rows of `cols` values at stride `inf`.
        unsafe {
            tile(
                n,
                strip.as_ptr(),
                panels.as_ptr().add(p * n * NR),
                scratch.as_mut_ptr().add(p * NR),
                inf,
                cols,
            )
        };
    }
}

/// [`strip_gradient`] with the AVX-512 tile.
///
/// # Safety
/// Needs AVX-512F; buffer sizes as for [`strip_gradient`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn strip_avx512(
    n: usize,
    inf: usize,
    strip: &[f32],
    panels: &[f32],
    scratch: &mut [f32],
    prefetch: Option<Prefetch>,
) {
    unsafe { strip_gradient(n, inf, strip, panels, scratch, prefetch, tile_avx512) }
}

/// [`strip_gradient`] with the AVX2 tile.
///
/// # Safety
/// Needs AVX2 and FMA; buffer sizes as for [`strip_gradient`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn strip_avx2(
    n: usize,
    inf: usize,
    strip: &[f32],
    panels: &[f32],
    scratch: &mut [f32],
    prefetch: Option<Prefetch>,
) {
    unsafe { strip_gradient(n, inf, strip, panels, scratch, prefetch, tile_avx2) }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn strip_avx512(_: usize, _: usize, _: &[f32], _: &[f32], _: &mut [f32], _: Option<Prefetch>) {
    unreachable!("the fused weight-gradient kernels need x86-64 (checked by `backend`)")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn strip_avx2(_: usize, _: usize, _: &[f32], _: &[f32], _: &mut [f32], _: Option<Prefetch>) {
    unreachable!("the fused weight-gradient kernels need x86-64 (checked by `backend`)")
}

/// The register tile: `MR × NR` accumulators (24 of the 32 zmm registers) over the batch.
///
/// # Safety
/// Needs AVX-512F; `a` holds `n * MR`, `b` `n * NR` values; `out` has `MR` rows of `cols ≤ NR`
/// writable values at stride `ld`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(n: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, cols: usize) {
    use std::arch::x86_64::*;
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for k in 0..n {
            let b0 = _mm512_loadu_ps(b.add(k * NR));
            let b1 = _mm512_loadu_ps(b.add(k * NR + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*a.add(k * MR + r));
                acc[0] = _mm512_fmadd_ps(a, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(a, b1, acc[1]);
            }
        }
        let lanes = |c: usize| -> __mmask16 {
            if c >= 16 {
                0xffff
            } else {
                ((1u32 << c) - 1) as u16
            }
        };
        let (m0, m1) = (lanes(cols), lanes(cols.saturating_sub(16)));
        for (r, acc) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(out.add(r * ld), m0, acc[0]);
            _mm512_mask_storeu_ps(out.add(r * ld + 16), m1, acc[1]);
        }
    }
}

/// The AVX2 tile: the `MR × NR` block as four 6×16 sub-tiles, each in 12 ymm accumulators.
///
/// # Safety
/// Needs AVX2 and FMA; arguments as for [`tile_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(n: usize, a: *const f32, b: *const f32, out: *mut f32, ld: usize, cols: usize) {
    use std::arch::x86_64::*;
    const SUB_ROWS: usize = MR / 2;
    for c0 in (0..cols).step_by(16) {
        let width = 16.min(cols - c0);
        for r0 in (0..MR).step_by(SUB_ROWS) {
            // SAFETY: `a` and `b` hold `n` rows of `MR` and `NR` values; `c0 + 16 <= NR`.
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 2]; SUB_ROWS];
                for k in 0..n {
                    let b0 = _mm256_loadu_ps(b.add(k * NR + c0));
                    let b1 = _mm256_loadu_ps(b.add(k * NR + c0 + 8));
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let a = _mm256_set1_ps(*a.add(k * MR + r0 + r));
                        acc[0] = _mm256_fmadd_ps(a, b0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(a, b1, acc[1]);
                    }
                }
                let mut row = [0f32; 16];
                for (r, acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(row.as_mut_ptr(), acc[0]);
                    _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[1]);
                    std::ptr::copy_nonoverlapping(row.as_ptr(), out.add((r0 + r) * ld + c0), width);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds the gradient into `w` (so the result is checkable) and counts the state it saw.
    struct AddGrad;
    impl StripUpdate for AddGrad {
        fn apply(&self, w: &mut [f32], grad: &[f32], state: &mut [&mut [f32]]) {
            for (w, g) in w.iter_mut().zip(grad) {
                *w += g;
            }
            for s in state.iter_mut() {
                s.iter_mut().for_each(|v| *v += 1.0);
            }
        }
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Odd shapes (partial strips and panels), a strided input, against a float64 reference.
    /// The kernels this CPU can run.
    fn backends() -> Vec<Backend> {
        let mut found = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                found.push(Backend::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                found.push(Backend::Avx2);
            }
        }
        found
    }

    #[test]
    fn matches_reference_on_odd_shapes() {
        if backends().is_empty() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2");
        }
        for backend in backends() {
            check_backend(backend);
        }
    }

    fn check_backend(backend: Backend) {
        for (out, inf, n, transposed) in [
            (1, 1, 1, false),
            (13, 33, 5, false),
            (12, 32, 7, true),
            (37, 70, 128, true),
            (100, 17, 3, false),
        ] {
            let gv = values(out * n, 1);
            let xv = values(inf * n, 2);
            let g = View { data: &gv, rows: out, cols: n, rs: n, cs: 1 };
            // The input either as a contiguous [in, n] or as the transpose of an [n, in] batch.
            let xt = if transposed {
                View { data: &xv, rows: inf, cols: n, rs: 1, cs: inf }
            } else {
                View { data: &xv, rows: inf, cols: n, rs: n, cs: 1 }
            };
            let w0 = values(out * inf, 3);
            let mut w = w0.clone();
            let mut state = vec![vec![0f32; out * inf]];
            assert!(update_with_backend(backend, g, xt, &mut w, &mut state, &AddGrad));
            for o in 0..out {
                for i in 0..inf {
                    let want: f64 = (0..n).map(|k| g.at(o, k) as f64 * xt.at(i, k) as f64).sum();
                    let got = (w[o * inf + i] - w0[o * inf + i]) as f64;
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{backend:?} ({out},{inf},{n}) [{o},{i}]: {got} vs {want}"
                    );
                }
            }
            assert!(state[0].iter().all(|&v| v == 1.0), "every state element is visited once");
        }
    }
}

//! Linear steps (Gemm with a constant weight, MatMul with a constant 2-D weight): the weight is
//! packed once as `[N, K]` rows (one row per output), and one of the [`LinearKernel`]
//! candidates computes `y[M, N] = x[M, K] · Wᵀ + b` followed by the fused epilogue.
//!
//! On CPUs with AVX-512 the weights are packed in panels of 32 output columns
//! ([`super::panel`]): an outer-product micro-kernel keeps up to 12 input rows in registers
//! ([`LinearKernel::DenseF32Panel`]), and batch 1, memory-bandwidth bound, streams every weight
//! once ([`LinearKernel::DenseF32PanelGemv`]); panels are split over the threads. Elsewhere the
//! `[N, K]` rows serve [`LinearKernel::DenseF32Gemv`] (row-parallel dot products, AVX2+FMA or
//! scalar) and the `gemm` crate ([`LinearKernel::DenseF32Gemm`]).

use super::epilogue::Epilogue;
use crate::eval::conv::gemm_strided;
use rayon::prelude::*;

/// The implementations a linear step may run. Int8 / int4 / sparse kernels from
/// shrink-kernels become more variants (with their packed weights in [`LinearWeights`]); the
/// one list of which apply to a step is [`candidates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearKernel {
    /// Dense f32 matrix product (the `gemm` crate, both cores on large products).
    DenseF32Gemm,
    /// Dense f32 matrix-vector products over blocks of output rows (row-parallel, SIMD).
    DenseF32Gemv,
    /// Panel-packed f32, register tiles of up to 12 input rows × 32 outputs.
    DenseF32Panel,
    /// Panel-packed f32, one input row at a time (each row streams the weights once).
    DenseF32PanelGemv,
    /// Sparse: compressed rows, f32 values (`shrink_kernels::csr_linear`).
    SparseCsrF32,
    /// Sparse: 1×4 blocks, f32 values (`shrink_kernels::block14_linear`).
    SparseBlock14F32,
    /// Int4 weights, f32 activations (`shrink_kernels::linear_i4`).
    Int4F32,
    /// Int4 weights × activations quantized to u8 per row (`shrink_kernels::linear_i4u8`).
    Int4U8,
}

impl LinearKernel {
    /// The name shown in per-layer tables.
    pub fn name(self) -> &'static str {
        match self {
            LinearKernel::DenseF32Gemm => "dense-f32-gemm",
            LinearKernel::DenseF32Gemv => "dense-f32-gemv",
            LinearKernel::DenseF32Panel => "dense-f32-panel",
            LinearKernel::DenseF32PanelGemv => "dense-f32-panel-gemv",
            LinearKernel::SparseCsrF32 => "sparse-csr-f32",
            LinearKernel::SparseBlock14F32 => "sparse-block1x4-f32",
            LinearKernel::Int4F32 => "int4-f32act",
            LinearKernel::Int4U8 => "int4-u8act",
        }
    }
}

/// A linear step's weights in the representations its kernels read.
#[derive(Debug, Clone)]
pub enum LinearWeights {
    /// f32 `[N, K]`, row `j` the weights of output `j` (alpha folded in).
    DenseF32(Vec<f32>),
    /// f32 in panels of [`super::panel::NR`] outputs (`[N/NR][K][NR]`, zero-padded).
    PanelF32(Vec<f32>),
    /// A mostly-zero weight: its dense packing plus sparse formats.
    Sparse(Box<super::sparse_linear::SparseWeights>),
    /// Int4 codes with per-output scales.
    Int4(Box<super::int4_linear::Int4Weights>),
}

impl LinearWeights {
    /// Pack `[N, K]` rows in the layout this CPU's fastest kernels read: panels with AVX-512,
    /// rows elsewhere and for fewer outputs than a panel holds (a padded panel would read and
    /// multiply `NR / N` times the weights, on one thread: simple-dnn's 10-output classifier
    /// streamed 3.2× its 250 KB).
    pub fn for_this_cpu(rows: Vec<f32>, k: usize, n: usize) -> LinearWeights {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") && n >= super::panel::NR {
            return LinearWeights::PanelF32(super::panel::pack(&rows, k, n));
        }
        let _ = (k, n);
        LinearWeights::DenseF32(rows)
    }
}

/// The kernels that can run these weights (the one place to extend).
pub fn candidates(w: &LinearWeights) -> &'static [LinearKernel] {
    match w {
        LinearWeights::DenseF32(_) => &[LinearKernel::DenseF32Gemv, LinearKernel::DenseF32Gemm],
        LinearWeights::PanelF32(_) => &[LinearKernel::DenseF32PanelGemv, LinearKernel::DenseF32Panel],
        LinearWeights::Sparse(s) => match s.dense {
            LinearWeights::PanelF32(_) => &[
                LinearKernel::DenseF32PanelGemv,
                LinearKernel::DenseF32Panel,
                LinearKernel::SparseCsrF32,
                LinearKernel::SparseBlock14F32,
            ],
            _ => &[
                LinearKernel::DenseF32Gemv,
                LinearKernel::DenseF32Gemm,
                LinearKernel::SparseCsrF32,
                LinearKernel::SparseBlock14F32,
            ],
        },
        LinearWeights::Int4(w) => w.candidates(),
    }
}

/// Environment variable naming a linear kernel ([`LinearKernel::name`]) that every step able
/// to run it uses (benchmarks and accuracy checks of one representation).
pub const FORCE_KERNEL_ENV: &str = "SHRINK_PLAN_KERNEL";

/// The kernel `SHRINK_PLAN_KERNEL` names, if it names one.
pub fn forced_kernel() -> Option<LinearKernel> {
    let name = std::env::var(FORCE_KERNEL_ENV).ok()?;
    ALL_KERNELS.into_iter().find(|k| k.name() == name.trim())
}

/// Every linear kernel.
pub const ALL_KERNELS: [LinearKernel; 8] = [
    LinearKernel::DenseF32Gemm,
    LinearKernel::DenseF32Gemv,
    LinearKernel::DenseF32Panel,
    LinearKernel::DenseF32PanelGemv,
    LinearKernel::SparseCsrF32,
    LinearKernel::SparseBlock14F32,
    LinearKernel::Int4F32,
    LinearKernel::Int4U8,
];

/// The kernel used without tuning: a GEMV for one row, a matrix kernel for more.
pub fn default_kernel(w: &LinearWeights, rows: usize) -> LinearKernel {
    match w {
        LinearWeights::DenseF32(_) if rows <= 4 => LinearKernel::DenseF32Gemv,
        LinearWeights::DenseF32(_) => LinearKernel::DenseF32Gemm,
        LinearWeights::PanelF32(_) if rows <= 1 => LinearKernel::DenseF32PanelGemv,
        LinearWeights::PanelF32(_) => LinearKernel::DenseF32Panel,
        LinearWeights::Sparse(s) => {
            super::sparse_linear::default_kernel(s, rows).unwrap_or_else(|| default_kernel(&s.dense, rows))
        }
        LinearWeights::Int4(w) => super::int4_linear::default_kernel(w),
    }
}

/// A compiled linear layer.
#[derive(Debug, Clone)]
pub struct LinearStep {
    /// Input features.
    pub k: usize,
    /// Output features.
    pub n: usize,
    pub weights: LinearWeights,
    /// Per-output bias (beta·C folded in).
    pub bias: Option<Vec<f32>>,
    pub epilogue: Epilogue,
}

impl LinearStep {
    /// `out[rows·n] = x[rows·k] · Wᵀ + b`, then the epilogue, with `kernel` (one of the
    /// weights' [`candidates`]; another runs the weights' matrix kernel).
    pub fn run(&self, kernel: LinearKernel, x: &[f32], out: &mut [f32]) {
        match &self.weights {
            LinearWeights::Sparse(s) if super::sparse_linear::SPARSE_KERNELS.contains(&kernel) => {
                super::sparse_linear::run(s, kernel, self.bias.as_deref(), self.epilogue, x, out)
            }
            LinearWeights::Sparse(s) => self.run_dense(&s.dense, kernel, x, out),
            LinearWeights::Int4(w) => {
                super::int4_linear::run(w, kernel, self.bias.as_deref(), self.epilogue, x, out)
            }
            w => self.run_dense(w, kernel, x, out),
        }
    }

    /// [`LinearStep::run`] on dense weights `weights` (this step's or a sparse step's copy).
    fn run_dense(&self, weights: &LinearWeights, kernel: LinearKernel, x: &[f32], out: &mut [f32]) {
        let rows = x.len().checked_div(self.k).unwrap_or(out.len() / self.n.max(1));
        let out = &mut out[..rows * self.n];
        let bias = self.bias.as_deref();
        let w = match weights {
            LinearWeights::PanelF32(p) => {
                if kernel == LinearKernel::DenseF32PanelGemv && self.k > 0 {
                    for (xr, or) in x.chunks(self.k).zip(out.chunks_mut(self.n.max(1))) {
                        super::panel::run(p, bias, xr, or, self.k, self.n, self.epilogue);
                    }
                } else {
                    super::panel::run(p, bias, x, out, self.k, self.n, self.epilogue);
                }
                return;
            }
            LinearWeights::DenseF32(w) => w,
            LinearWeights::Sparse(_) | LinearWeights::Int4(_) => {
                unreachable!("run dispatches sparse and int4 weights before")
            }
        };
        match kernel {
            LinearKernel::DenseF32Gemv => gemv_rows(w, bias, x, out, self.k, self.n, self.epilogue),
            _ => {
                match &self.bias {
                    Some(b) => out.chunks_mut(self.n.max(1)).for_each(|r| r.copy_from_slice(b)),
                    None => out.fill(0.0),
                }
                // rhs (k, j) is w[j·K + k]: row stride 1, column stride K.
                gemm_strided(rows, self.n, self.k, out, x, (self.k, 1), w, (1, self.k), 1.0, true);
                self.epilogue.apply(out);
            }
        }
    }
}

/// A pointer the row-block tasks share; each task writes only its own columns.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (their own output columns) of one live buffer.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Output rows per parallel task: about eight tasks per thread, a multiple of 4.
fn block_rows(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    (n.div_ceil(threads * 8)).next_multiple_of(4).max(16)
}

/// GEMV for each of the `rows` inputs, parallel over blocks of outputs: each block of weights is
/// read from memory once and reused (from cache) by every input row.
fn gemv_rows(w: &[f32], bias: Option<&[f32]>, x: &[f32], out: &mut [f32], k: usize, n: usize, ep: Epilogue) {
    if n == 0 {
        return;
    }
    let rows = out.len() / n;
    let block = block_rows(n);
    let ptr = OutPtr(out.as_mut_ptr());
    let task = |b: usize| {
        let p = ptr;
        let (j0, j1) = (b * block, ((b + 1) * block).min(n));
        let wb = &w[j0 * k..j1 * k];
        for r in 0..rows {
            // SAFETY: row r, columns j0..j1 of the rows × n output; blocks are disjoint.
            let o = unsafe { std::slice::from_raw_parts_mut(p.0.add(r * n + j0), j1 - j0) };
            dot_rows(wb, &x[r * k..(r + 1) * k], o);
            if let Some(b) = bias {
                o.iter_mut().zip(&b[j0..j1]).for_each(|(v, b)| *v += b);
            }
            ep.apply(o);
        }
    };
    let blocks = n.div_ceil(block);
    if (n * k) < (1 << 16) || blocks == 1 {
        (0..blocks).for_each(task);
    } else {
        (0..blocks).into_par_iter().for_each(task);
    }
}

/// `o[j] = w[j·K..] · x` for every row of `w` (`o.len()` rows of `x.len()`), the fastest path the
/// CPU has.
pub fn dot_rows(w: &[f32], x: &[f32], o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { x86::dot_rows_avx512(w, x, o) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { x86::dot_rows_avx2(w, x, o) };
        }
    }
    dot_rows_scalar(w, x, o)
}

/// The portable path (and the reference of the SIMD ones): eight partial sums per row.
pub fn dot_rows_scalar(w: &[f32], x: &[f32], o: &mut [f32]) {
    let k = x.len();
    for (j, oj) in o.iter_mut().enumerate() {
        let row = &w[j * k..(j + 1) * k];
        let mut acc = [0f32; 8];
        let mut rc = row.chunks_exact(8);
        let mut xc = x.chunks_exact(8);
        for (a, b) in (&mut rc).zip(&mut xc) {
            for l in 0..8 {
                acc[l] += a[l] * b[l];
            }
        }
        let tail: f32 = rc.remainder().iter().zip(xc.remainder()).map(|(a, b)| a * b).sum();
        *oj = acc.iter().sum::<f32>() + tail;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Four rows at a time (the x vector loaded once for four rows), two 16-lane accumulators
    /// per row.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot_rows_avx512(w: &[f32], x: &[f32], o: &mut [f32]) {
        let k = x.len();
        let n = o.len();
        assert!(w.len() >= n * k);
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let k32 = k / 32 * 32;
        let mut j = 0;
        while j + 4 <= n {
            let r = [wp.add(j * k), wp.add((j + 1) * k), wp.add((j + 2) * k), wp.add((j + 3) * k)];
            let mut acc = [_mm512_setzero_ps(); 8];
            let mut i = 0;
            while i < k32 {
                let x0 = _mm512_loadu_ps(xp.add(i));
                let x1 = _mm512_loadu_ps(xp.add(i + 16));
                for q in 0..4 {
                    acc[2 * q] = _mm512_fmadd_ps(_mm512_loadu_ps(r[q].add(i)), x0, acc[2 * q]);
                    acc[2 * q + 1] = _mm512_fmadd_ps(_mm512_loadu_ps(r[q].add(i + 16)), x1, acc[2 * q + 1]);
                }
                i += 32;
            }
            for q in 0..4 {
                let mut s = _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * q], acc[2 * q + 1]));
                for t in k32..k {
                    s += *r[q].add(t) * *xp.add(t);
                }
                o[j + q] = s;
            }
            j += 4;
        }
        while j < n {
            let r = wp.add(j * k);
            let mut a0 = _mm512_setzero_ps();
            let mut i = 0;
            while i + 16 <= k {
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r.add(i)), _mm512_loadu_ps(xp.add(i)), a0);
                i += 16;
            }
            let mut s = _mm512_reduce_add_ps(a0);
            for t in i..k {
                s += *r.add(t) * *xp.add(t);
            }
            o[j] = s;
            j += 1;
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum256(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Four rows at a time, two 8-lane accumulators per row.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_rows_avx2(w: &[f32], x: &[f32], o: &mut [f32]) {
        let k = x.len();
        let n = o.len();
        assert!(w.len() >= n * k);
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        let k16 = k / 16 * 16;
        let mut j = 0;
        while j + 4 <= n {
            let r = [wp.add(j * k), wp.add((j + 1) * k), wp.add((j + 2) * k), wp.add((j + 3) * k)];
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut i = 0;
            while i < k16 {
                let x0 = _mm256_loadu_ps(xp.add(i));
                let x1 = _mm256_loadu_ps(xp.add(i + 8));
                for q in 0..4 {
                    acc[2 * q] = _mm256_fmadd_ps(_mm256_loadu_ps(r[q].add(i)), x0, acc[2 * q]);
                    acc[2 * q + 1] = _mm256_fmadd_ps(_mm256_loadu_ps(r[q].add(i + 8)), x1, acc[2 * q + 1]);
                }
                i += 16;
            }
            for q in 0..4 {
                let mut s = hsum256(_mm256_add_ps(acc[2 * q], acc[2 * q + 1]));
                for t in k16..k {
                    s += *r[q].add(t) * *xp.add(t);
                }
                o[j + q] = s;
            }
            j += 4;
        }
        while j < n {
            let r = wp.add(j * k);
            let mut s = 0.0;
            for t in 0..k {
                s += *r.add(t) * *xp.add(t);
            }
            o[j] = s;
            j += 1;
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::dot_rows_scalar;

        #[test]
        fn every_simd_path_the_cpu_has_matches_scalar() {
            for (n, k) in [(1, 1), (3, 5), (4, 32), (7, 33), (9, 100), (17, 257), (0, 8), (5, 0)] {
                let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let x: Vec<f32> = (0..k).map(|i| (i as f32 * 0.11).cos()).collect();
                let mut want = vec![0f32; n];
                dot_rows_scalar(&w, &x, &mut want);
                let mut paths: Vec<(&str, Vec<f32>)> = Vec::new();
                if std::arch::is_x86_feature_detected!("avx512f") {
                    let mut o = vec![0f32; n];
                    unsafe { super::dot_rows_avx512(&w, &x, &mut o) };
                    paths.push(("avx512", o));
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    let mut o = vec![0f32; n];
                    unsafe { super::dot_rows_avx2(&w, &x, &mut o) };
                    paths.push(("avx2", o));
                }
                for (name, got) in paths {
                    for (a, b) in got.iter().zip(&want) {
                        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{name} n={n} k={k}: {a} vs {b}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(k: usize, n: usize, ep: Epilogue) -> LinearStep {
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.37).sin()).collect();
        LinearStep {
            k,
            n,
            weights: LinearWeights::DenseF32(w),
            bias: Some((0..n).map(|j| j as f32 * 0.1).collect()),
            epilogue: ep,
        }
    }

    #[test]
    fn fewer_outputs_than_a_panel_keep_the_rows_layout() {
        let nr = super::super::panel::NR;
        let small = LinearWeights::for_this_cpu(vec![0.5; 7 * 10], 7, 10);
        assert!(matches!(small, LinearWeights::DenseF32(ref w) if w.len() == 70), "{small:?}");
        let wide = LinearWeights::for_this_cpu(vec![0.5; 7 * nr], 7, nr);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert!(matches!(wide, LinearWeights::PanelF32(_)));
            return;
        }
        assert!(matches!(wide, LinearWeights::DenseF32(_)));
    }

    #[test]
    fn gemv_and_gemm_agree_with_a_naive_product() {
        for (rows, k, n) in [(1, 300, 2000), (3, 17, 9), (8, 64, 40), (2, 0, 3)] {
            let dense = step(k, n, Epilogue::Relu);
            let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.13).cos()).collect();
            let LinearWeights::DenseF32(w) = &dense.weights else { unreachable!() };
            let panel = LinearStep {
                weights: LinearWeights::PanelF32(super::super::panel::pack(w, k, n)),
                ..dense.clone()
            };
            let mut want = vec![0f32; rows * n];
            for r in 0..rows {
                for j in 0..n {
                    let d: f32 = (0..k).map(|t| x[r * k + t] * w[j * k + t]).sum();
                    want[r * n + j] = (d + j as f32 * 0.1).max(0.0);
                }
            }
            for (s, kern) in
                [&dense, &panel].into_iter().flat_map(|s| candidates(&s.weights).iter().map(move |&k| (s, k)))
            {
                let mut out = vec![f32::NAN; rows * n];
                s.run(kern, &x, &mut out);
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{kern:?} {rows}x{k}x{n}: {a} vs {b}");
                }
            }
        }
    }
}

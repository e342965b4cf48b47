//! Dense weights times *sparse activations*: after a ReLU most inputs of the next fully-connected
//! layer are exactly zero (simple-dnn on MNIST: 94 % before fc2, 89 % before fc3), and a zero
//! input contributes nothing, so this kernel multiplies only the nonzero inputs.
//!
//! Layouts match shrink's dense linear op. Activations are feature-major (`Xᵀ`, `[features, n]`
//! row-major) and are compressed once per layer into per-sample lists of nonzeros
//! ([`SparseActs`]). A weight block `W` (`[rows, features]` row-major, PyTorch's layout) is
//! transposed into panels of [`TILE`] outputs (`[features, TILE]`), so every nonzero input `x_i` of a
//! sample adds `x_i · panel[i]` to a register-resident accumulator of `TILE` outputs. The panel of
//! the widest layer (3136 inputs) is 392 KB and stays in L2 while a thread sweeps its samples.
//! AVX-512 or AVX2+FMA code paths are chosen at run time by CPU feature detection.
use rayon::prelude::*;

/// Outputs computed together per sample: 32 f32 = 4 AVX2 (2 AVX-512) registers, kept twice
/// (even and odd nonzeros) so consecutive multiply-adds do not wait on each other.
pub const TILE: usize = 32;

/// Weights transposed into panels per pass of [`SparseActs::matmul_block`] (4 MB).
pub const PANEL_ELEMS: usize = 1 << 20;

/// Samples per task: their nonzero lists are built together and swept per panel.
const CHUNK: usize = 64;

/// A feature-major batch of activations `Xᵀ` (`[features, n]`) stored as per-sample lists of
/// nonzero `(feature, value)` pairs, in chunks of [`CHUNK`] samples.
#[derive(Debug, Clone)]
pub struct SparseActs {
    pub features: usize,
    pub n: usize,
    chunks: Vec<Chunk>,
}

/// The nonzeros of samples `start .. start + indptr.len() - 1`.
#[derive(Debug, Clone)]
struct Chunk {
    start: usize,
    indptr: Vec<u32>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseActs {
    /// Compresses `xt` (`[features, n]` row-major), keeping entries that are not `0.0`.
    ///
    /// # Panics
    /// If `xt.len() != features * n` or `features` does not fit in `u32`.
    pub fn from_feature_major(xt: &[f32], features: usize, n: usize) -> SparseActs {
        assert_eq!(xt.len(), features * n, "xt must be [features, n]");
        assert!(u32::try_from(features).is_ok(), "too many features for u32 indices");
        let starts: Vec<usize> = (0..n).step_by(CHUNK).collect();
        let chunks = starts.into_par_iter().map(|start| Chunk::build(xt, features, n, start)).collect();
        SparseActs { features, n, chunks }
    }

    /// Number of nonzero activations.
    pub fn nnz(&self) -> usize {
        self.chunks.iter().map(|c| c.values.len()).sum()
    }

    /// Fraction of activations that are nonzero.
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / (self.features * self.n).max(1) as f64
    }

    /// `out = W · Xᵀ` for a weight block `w` (`[rows, features]` row-major); `out` is
    /// `[rows, n]` row-major (feature-major outputs), fully overwritten. The transposed panels
    /// are built for [`PANEL_ELEMS`] weights at a time, so any `w` (a whole layer too) needs
    /// only that much scratch memory.
    ///
    /// # Panics
    /// If a slice length does not match.
    pub fn matmul_block(&self, w: &[f32], rows: usize, out: &mut [f32]) {
        let (features, n) = (self.features, self.n);
        assert_eq!(w.len(), rows * features, "w must be [rows, features]");
        assert_eq!(out.len(), rows * n, "out must be [rows, n]");
        if rows == 0 || n == 0 {
            return;
        }
        let per = (PANEL_ELEMS / features.max(1)).max(1).div_ceil(TILE) * TILE;
        for (wb, ob) in w.chunks(per * features).zip(out.chunks_mut(per * n)) {
            self.panel_pass(wb, ob.len() / n, ob);
        }
    }

    /// [`SparseActs::matmul_block`] for at most a few [`PANEL_ELEMS`] weights, all transposed
    /// at once.
    fn panel_pass(&self, w: &[f32], rows: usize, out: &mut [f32]) {
        let (features, n) = (self.features, self.n);
        let tiles = rows.div_ceil(TILE);
        let mut panels = vec![0f32; tiles * features * TILE];
        panels.par_chunks_mut(features * TILE).enumerate().for_each(|(t, panel)| {
            let r0 = t * TILE;
            transpose_into_panel(&w[r0 * features..(r0 + TILE.min(rows - r0)) * features], features, panel);
        });
        let dst = SharedOut(out.as_mut_ptr());
        let tasks: Vec<(usize, usize)> =
            (0..tiles).flat_map(|t| (0..self.chunks.len()).map(move |c| (t, c))).collect();
        tasks.into_par_iter().for_each(|(t, c)| {
            let panel = &panels[t * features * TILE..(t + 1) * features * TILE];
            let chunk = &self.chunks[c];
            let mut local = [[0f32; CHUNK]; TILE];
            sweep(chunk, panel, &mut local);
            let len = chunk.indptr.len() - 1;
            for (k, vals) in local.iter().enumerate().take(TILE.min(rows - t * TILE)) {
                // SAFETY: task (t, c) writes only rows t*TILE .. t*TILE + TILE (< rows) at the
                // columns of chunk c's samples (< n); tasks are distinct pairs, so their writes
                // never overlap.
                unsafe { dst.write((t * TILE + k) * n + chunk.start, &vals[..len]) };
            }
        });
    }
}

/// Writes `block` (`[k < TILE, features]` row-major) transposed into `panel` (`[features, TILE]`),
/// in 8×8 tiles so both sides touch whole cache-line segments.
fn transpose_into_panel(block: &[f32], features: usize, panel: &mut [f32]) {
    let rows = block.len() / features.max(1);
    let (full_rows, full_feats) = (rows / 8 * 8, features / 8 * 8);
    for k0 in (0..full_rows).step_by(8) {
        for i0 in (0..full_feats).step_by(8) {
            let mut tile = [[0f32; 8]; 8];
            for (a, t) in tile.iter_mut().enumerate() {
                let at = (k0 + a) * features + i0;
                t.copy_from_slice(&block[at..at + 8]);
            }
            for (b, seg) in panel[i0 * TILE..].chunks_exact_mut(TILE).take(8).enumerate() {
                seg[k0..k0 + 8].copy_from_slice(&std::array::from_fn::<f32, 8, _>(|a| tile[a][b]));
            }
        }
    }
    // The ragged edges (fewer than 8 rows or features left).
    for k in 0..rows {
        let from = if k < full_rows { full_feats } else { 0 };
        for i in from..features {
            panel[i * TILE + k] = block[k * features + i];
        }
    }
}

impl Chunk {
    fn build(xt: &[f32], features: usize, n: usize, start: usize) -> Chunk {
        let len = CHUNK.min(n - start);
        let mut counts = [0u32; CHUNK];
        for i in 0..features {
            for (c, &v) in counts.iter_mut().zip(&xt[i * n + start..i * n + start + len]) {
                *c += (v != 0.0) as u32;
            }
        }
        let mut indptr = Vec::with_capacity(len + 1);
        indptr.push(0u32);
        for c in &counts[..len] {
            indptr.push(indptr.last().copied().unwrap_or(0) + c);
        }
        let nnz = indptr[len] as usize;
        let (mut indices, mut values) = (vec![0u32; nnz], vec![0f32; nnz]);
        let mut cursor: Vec<usize> = indptr[..len].iter().map(|&p| p as usize).collect();
        for i in 0..features {
            for (s, &v) in xt[i * n + start..i * n + start + len].iter().enumerate() {
                if v != 0.0 {
                    indices[cursor[s]] = i as u32;
                    values[cursor[s]] = v;
                    cursor[s] += 1;
                }
            }
        }
        Chunk { start, indptr, indices, values }
    }
}

/// One task's outputs, `[TILE][CHUNK]`.
type Local = [[f32; CHUNK]; TILE];

/// The output pointer shared by the tasks of [`SparseActs::matmul_block`].
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint elements (see `matmul_block`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// Copies `vals` to `at ..`.
    ///
    /// # Safety
    /// The range must be in bounds and written by no other thread.
    unsafe fn write(self, at: usize, vals: &[f32]) {
        unsafe { std::ptr::copy_nonoverlapping(vals.as_ptr(), self.0.add(at), vals.len()) }
    }
}

/// One chunk against one panel into `out[k][s]` (output `k` of the chunk's sample `s`),
/// dispatching on CPU features.
fn sweep(chunk: &Chunk, panel: &[f32], out: &mut Local) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked above).
            return unsafe { sweep_avx512(chunk, panel, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked above).
            return unsafe { sweep_avx2(chunk, panel, out) };
        }
    }
    sweep_impl::<false>(chunk, panel, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sweep_avx512(chunk: &Chunk, panel: &[f32], out: &mut Local) {
    sweep_impl::<true>(chunk, panel, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sweep_avx2(chunk: &Chunk, panel: &[f32], out: &mut Local) {
    sweep_impl::<true>(chunk, panel, out)
}

/// Nonzeros between a panel row's prefetch and its use.
const PREFETCH: usize = 8;

/// Asks for the cache lines of one panel row (`TILE` f32 = 128 bytes) ahead of use.
#[inline(always)]
fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint and never faults; both addresses lie inside `row`'s first
    // TILE entries, which the caller takes from in-bounds panel rows.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().cast());
        _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(16).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// The kernel body, inlined into each feature-specific wrapper; `FMA` selects fused
/// multiply-adds (without hardware FMA, `mul_add` is a libm call).
#[inline(always)]
fn sweep_impl<const FMA: bool>(chunk: &Chunk, panel: &[f32], out: &mut Local) {
    let row = |i: u32| -> &[f32; TILE] {
        let at = i as usize * TILE;
        panel[at..at + TILE].try_into().expect("panel row")
    };
    let fma = |acc: &mut [f32; TILE], v: f32, p: &[f32; TILE]| {
        for j in 0..TILE {
            acc[j] = if FMA { v.mul_add(p[j], acc[j]) } else { acc[j] + v * p[j] };
        }
    };
    for s in 0..chunk.indptr.len() - 1 {
        let (a, b) = (chunk.indptr[s] as usize, chunk.indptr[s + 1] as usize);
        let (idx, val) = (&chunk.indices[a..b], &chunk.values[a..b]);
        let (mut even, mut odd) = ([0f32; TILE], [0f32; TILE]);
        let pairs = idx.len() / 2;
        for q in 0..pairs {
            // Panel rows are picked at random: fetch a few nonzeros ahead so the loads overlap.
            if let Some(&ahead) = idx.get(2 * q + PREFETCH) {
                prefetch(&panel[ahead as usize * TILE..]);
            }
            if let Some(&ahead) = idx.get(2 * q + PREFETCH + 1) {
                prefetch(&panel[ahead as usize * TILE..]);
            }
            fma(&mut even, val[2 * q], row(idx[2 * q]));
            fma(&mut odd, val[2 * q + 1], row(idx[2 * q + 1]));
        }
        if idx.len() % 2 == 1 {
            fma(&mut even, val[idx.len() - 1], row(idx[idx.len() - 1]));
        }
        for (k, o) in out.iter_mut().enumerate() {
            o[s] = even[k] + odd[k];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Random `[rows, cols]` values where about `keep` of them are nonzero.
    fn sparse_values(rows: usize, cols: usize, keep: f32, seed: &mut u64) -> Vec<f32> {
        (0..rows * cols)
            .map(|_| {
                let v = lcg(seed);
                if (lcg(seed) + 1.0) / 2.0 < keep {
                    v
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn matches_dense_product_for_odd_shapes_and_densities() {
        let mut seed = 11;
        for &(rows, features, n, keep) in &[
            (1, 1, 1, 1.0),
            (10, 53, 5, 0.1),
            (33, 129, 130, 0.3),
            (64, 64, 64, 0.0),
            (70, 300, 200, 1.0),
            (5, 7, 129, 0.5),
            // Wide enough that the panels are built in several passes (32 rows each).
            (70, PANEL_ELEMS / 32, 3, 0.05),
        ] {
            let w = sparse_values(rows, features, 1.0, &mut seed);
            let xt = sparse_values(features, n, keep, &mut seed);
            let acts = SparseActs::from_feature_major(&xt, features, n);
            assert_eq!(acts.nnz(), xt.iter().filter(|v| **v != 0.0).count());
            let mut out = vec![f32::NAN; rows * n];
            acts.matmul_block(&w, rows, &mut out);
            for r in 0..rows {
                for s in 0..n {
                    let want: f64 =
                        (0..features).map(|i| w[r * features + i] as f64 * xt[i * n + s] as f64).sum();
                    let got = out[r * n + s];
                    assert!(
                        (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{rows}x{features} n={n} [{r},{s}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn density_counts_nonzeros_only() {
        let xt = [0.0, 1.0, -0.0, 2.0, 0.0, 0.0]; // [3, 2]
        let acts = SparseActs::from_feature_major(&xt, 3, 2);
        assert_eq!(acts.nnz(), 2);
        assert!((acts.density() - 1.0 / 3.0).abs() < 1e-12);
        let mut out = [9.0; 2];
        acts.matmul_block(&[1.0, 10.0, 100.0], 1, &mut out);
        assert_eq!(out, [0.0, 21.0]);
    }
}

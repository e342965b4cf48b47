//! Dense weights times *sparse activations*: after a ReLU most inputs of the next fully-connected
//! layer are exactly zero (simple-dnn on MNIST: 60–95 % before fc2 and fc3, depending on how it
//! was trained), and a zero input contributes nothing, so this kernel multiplies only the nonzero
//! inputs.
//!
//! Layouts match shrink's dense linear op. Activations are feature-major (`Xᵀ`, `[features, n]`
//! row-major) and are compressed once per layer into [`SparseActs`]: chunks of [`CHUNK`] samples
//! whose nonzeros are grouped by *feature block* ([`FEATURE_BLOCK`] features), then by sample.
//! A weight block `W` (`[rows, features]` row-major, PyTorch's layout) is transposed into
//! line-aligned panels of [`TILE`] outputs (`[features, TILE]`). One task takes one panel and
//! one chunk and walks the feature blocks in order: the panel's slice for a block (16 KB) stays
//! in L1 while every sample of the chunk adds `x_i · panel[i]` for its nonzeros `x_i` in that
//! block to its `TILE` register-resident outputs. Each multiply-add thus reads its weights from
//! L1 and the nonzero lists stream in order (the previous layout, one sample's nonzeros over the
//! whole 392 KB panel at a time, read every weight from L2 and ran 1.5x slower at 30 % density).
//! AVX-512 or AVX2+FMA code paths are chosen at run time by CPU feature detection.
use rayon::prelude::*;

/// Outputs computed together per sample: 64 f32 = 4 AVX-512 (8 AVX2) registers.
pub const TILE: usize = 64;

/// Features per block: a block's panel slice is `FEATURE_BLOCK · TILE` f32 = 16 KB, half of a
/// typical L1 data cache (measured at 30 % density: 128 features +7 % time, 32 features +8 %).
pub const FEATURE_BLOCK: usize = 64;

/// Weights transposed into panels per pass of [`SparseActs::matmul_block`] (4 MB).
pub const PANEL_ELEMS: usize = 1 << 20;

/// Samples per chunk (at most 64, one bit each in `Chunk::build`): their nonzeros are swept
/// together per panel. 16 measured fastest on the Zen 4 dev machine (time at 30 % density:
/// 8 samples +30 %, 32 +13 %, 64 +9 %).
const CHUNK: usize = 16;
const _: () = assert!(CHUNK <= 64, "Chunk::build marks a chunk's samples in one u64");

/// A feature-major batch of activations `Xᵀ` (`[features, n]`) stored as lists of nonzero
/// `(feature, value)` pairs, in chunks of [`CHUNK`] samples.
#[derive(Debug, Clone)]
pub struct SparseActs {
    pub features: usize,
    pub n: usize,
    chunks: Vec<Chunk>,
}

/// The nonzeros of samples `start .. start + len`, ordered by (feature block, sample, feature):
/// entries `indptr[b·len + s] .. indptr[b·len + s + 1]` are sample `s`'s nonzeros in feature
/// block `b`. `offsets` holds `feature · TILE`, the entry's row offset in a panel.
#[derive(Debug, Clone)]
struct Chunk {
    start: usize,
    len: usize,
    indptr: Vec<u32>,
    offsets: Vec<u32>,
    values: Vec<f32>,
}

impl SparseActs {
    /// Compresses `xt` (`[features, n]` row-major), keeping entries that are not `0.0`.
    ///
    /// # Panics
    /// If `xt.len() != features * n` or `features · TILE` does not fit in `u32`.
    pub fn from_feature_major(xt: &[f32], features: usize, n: usize) -> SparseActs {
        assert_eq!(xt.len(), features * n, "xt must be [features, n]");
        assert!(u32::try_from(features * TILE).is_ok(), "too many features for u32 offsets");
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
        let mut buffer = vec![0f32; tiles * features * TILE + ALIGN_FLOATS];
        let panels = aligned_mut(&mut buffer, tiles * features * TILE);
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
            let mut local = [[0f32; TILE]; CHUNK];
            sweep(chunk, panel, features, &mut local);
            (0..TILE.min(rows - t * TILE)).for_each(|k| {
                let column: [f32; CHUNK] = std::array::from_fn(|s| local[s][k]);
                // SAFETY: task (t, c) writes only rows t*TILE .. t*TILE + TILE (< rows) at the
                // columns of chunk c's samples (< n); tasks are distinct pairs, so their writes
                // never overlap.
                unsafe { dst.write((t * TILE + k) * n + chunk.start, &column[..chunk.len]) };
            });
        });
    }
}

/// f32 per cache line: panel rows start on a line so no vector load straddles two.
const ALIGN_FLOATS: usize = 16;

/// The `len` floats of `buffer` (which has [`ALIGN_FLOATS`] to spare) that start at a
/// 64-byte boundary. Every panel row is `TILE · 4` bytes, a multiple of 64, so all rows of
/// the panels built there are line-aligned as well.
fn aligned_mut(buffer: &mut [f32], len: usize) -> &mut [f32] {
    let skip = buffer.as_ptr().align_offset(ALIGN_FLOATS * 4).min(ALIGN_FLOATS);
    &mut buffer[skip..skip + len]
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
    /// One pass over the chunk's `[features, len]` slice of `xt`, a feature block at a time:
    /// the block's rows (4 KB) are read once to count and mark the nonzeros, and once more,
    /// from L1, to copy them out.
    fn build(xt: &[f32], features: usize, n: usize, start: usize) -> Chunk {
        let len = CHUNK.min(n - start);
        let blocks = features.div_ceil(FEATURE_BLOCK);
        let segment = |i: usize| &xt[i * n + start..i * n + start + len];
        let mut indptr = Vec::with_capacity(blocks * len + 1);
        indptr.push(0u32);
        let (mut offsets, mut values) = (Vec::new(), Vec::new());
        let mut marks = [0u64; FEATURE_BLOCK];
        for b in 0..blocks {
            let rows = b * FEATURE_BLOCK..features.min((b + 1) * FEATURE_BLOCK);
            let mut counts = [0u32; CHUNK];
            for (mark, i) in marks.iter_mut().zip(rows.clone()) {
                let seg = segment(i);
                counts.iter_mut().zip(seg).for_each(|(c, &v)| *c += (v != 0.0) as u32);
                // One bit per sample: the copy below walks the set bits, where a branch per
                // element would be mispredicted at the 20–50 % densities this kernel serves.
                *mark = seg.iter().enumerate().fold(0u64, |m, (s, &v)| m | ((v != 0.0) as u64) << s);
            }
            let mut cursor = [0usize; CHUNK];
            let mut end = offsets.len();
            for (c, &count) in cursor.iter_mut().zip(&counts[..len]) {
                *c = end;
                end += count as usize;
                indptr.push(u32::try_from(end).expect("more than u32::MAX nonzeros in a chunk"));
            }
            offsets.resize(end, 0u32);
            values.resize(end, 0f32);
            for (&mark, i) in marks.iter().zip(rows) {
                let seg = segment(i);
                let mut nonzero = mark;
                while nonzero != 0 {
                    let s = nonzero.trailing_zeros() as usize;
                    nonzero &= nonzero - 1;
                    offsets[cursor[s]] = (i * TILE) as u32;
                    values[cursor[s]] = seg[s];
                    cursor[s] += 1;
                }
            }
        }
        Chunk { start, len, indptr, offsets, values }
    }

    /// Feature blocks of this chunk.
    fn blocks(&self) -> usize {
        (self.indptr.len() - 1) / self.len.max(1)
    }

    /// Calls `f(out[s], entries)` for each feature block in order, then each sample `s` with
    /// nonzeros in that block: the loop every sweep kernel shares (inlined into each, so it is
    /// compiled with that kernel's CPU features).
    #[inline(always)]
    fn for_each_run(&self, out: &mut Local, mut f: impl FnMut(&mut [f32; TILE], std::ops::Range<usize>)) {
        let len = self.len;
        for b in 0..self.blocks() {
            for (s, acc) in out.iter_mut().enumerate().take(len) {
                let (lo, hi) = (self.indptr[b * len + s] as usize, self.indptr[b * len + s + 1] as usize);
                if lo < hi {
                    f(acc, lo..hi);
                }
            }
        }
    }
}

/// One task's outputs, `[CHUNK][TILE]` (sample-major).
type Local = [[f32; TILE]; CHUNK];

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

/// The code paths of the sweep, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Avx512,
    Avx2,
    Portable,
}

impl Backend {
    /// Whether this CPU runs the backend.
    fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            }
            Backend::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The backends this CPU runs, fastest first.
    fn available() -> Vec<Backend> {
        [Backend::Avx512, Backend::Avx2, Backend::Portable].into_iter().filter(|b| b.supported()).collect()
    }

    /// The fastest backend of this CPU (detected once).
    fn best() -> Backend {
        static BEST: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Backend::available()[0])
    }
}

/// One chunk against one panel (`[features, TILE]`) into `out[s]` (the chunk's sample `s`),
/// on the fastest code path of this CPU. `out` starts at zero.
fn sweep(chunk: &Chunk, panel: &[f32], features: usize, out: &mut Local) {
    sweep_on(Backend::best(), chunk, panel, features, out)
}

/// [`sweep`] on a given backend, which must be one of [`Backend::available`].
fn sweep_on(backend: Backend, chunk: &Chunk, panel: &[f32], features: usize, out: &mut Local) {
    // `Chunk::build` keeps every offset below `features · TILE`, so this bounds them all.
    assert_eq!(panel.len(), features * TILE, "panel must be [features, TILE]");
    assert!(backend.supported(), "{backend:?} is not supported by this CPU");
    match backend {
        // SAFETY: the CPU supports AVX-512F (asserted above); offsets are in bounds.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => unsafe { x86::sweep_avx512(chunk, panel, out) },
        // SAFETY: the CPU supports AVX2 and FMA (asserted above); offsets are in bounds.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => unsafe { x86::sweep_avx2(chunk, panel, out) },
        _ => sweep_portable(chunk, panel, out),
    }
}

/// The kernel in plain Rust (CPUs without AVX2, other architectures).
fn sweep_portable(chunk: &Chunk, panel: &[f32], out: &mut Local) {
    chunk.for_each_run(out, |acc, run| {
        for (&off, &v) in chunk.offsets[run.clone()].iter().zip(&chunk.values[run]) {
            let row = &panel[off as usize..off as usize + TILE];
            acc.iter_mut().zip(row).for_each(|(a, &p)| *a += v * p);
        }
    });
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Chunk, Local};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F and every `offset + TILE` must lie inside `panel`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sweep_avx512(chunk: &Chunk, panel: &[f32], out: &mut Local) {
        let (p, offs, vals) = (panel.as_ptr(), chunk.offsets.as_ptr(), chunk.values.as_ptr());
        chunk.for_each_run(out, |acc, run| {
            let o = acc.as_mut_ptr();
            // SAFETY (all below): `acc` holds TILE = 64 f32; entries `run` exist; offsets plus
            // TILE lie inside `panel` (the caller's contract).
            unsafe {
                let mut a: [__m512; 4] = std::array::from_fn(|j| _mm512_loadu_ps(o.add(16 * j)));
                let mut c = [_mm512_setzero_ps(); 4];
                let mut q = run.start;
                // Two nonzeros per turn into two accumulator sets, so consecutive multiply-adds
                // do not wait on each other.
                while q + 2 <= run.end {
                    let (v0, r0) = (_mm512_set1_ps(*vals.add(q)), p.add(*offs.add(q) as usize));
                    let (v1, r1) = (_mm512_set1_ps(*vals.add(q + 1)), p.add(*offs.add(q + 1) as usize));
                    for j in 0..4 {
                        a[j] = _mm512_fmadd_ps(v0, _mm512_loadu_ps(r0.add(16 * j)), a[j]);
                        c[j] = _mm512_fmadd_ps(v1, _mm512_loadu_ps(r1.add(16 * j)), c[j]);
                    }
                    q += 2;
                }
                if q < run.end {
                    let (v0, r0) = (_mm512_set1_ps(*vals.add(q)), p.add(*offs.add(q) as usize));
                    for (j, aj) in a.iter_mut().enumerate() {
                        *aj = _mm512_fmadd_ps(v0, _mm512_loadu_ps(r0.add(16 * j)), *aj);
                    }
                }
                for j in 0..4 {
                    _mm512_storeu_ps(o.add(16 * j), _mm512_add_ps(a[j], c[j]));
                }
            }
        });
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA and every `offset + TILE` must lie inside `panel`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sweep_avx2(chunk: &Chunk, panel: &[f32], out: &mut Local) {
        let (p, offs, vals) = (panel.as_ptr(), chunk.offsets.as_ptr(), chunk.values.as_ptr());
        chunk.for_each_run(out, |acc, run| {
            let o = acc.as_mut_ptr();
            // SAFETY (all below): as in `sweep_avx512`, with 8 registers of 8 lanes.
            unsafe {
                let mut a: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(o.add(8 * j)));
                for q in run {
                    let (v, r) = (_mm256_set1_ps(*vals.add(q)), p.add(*offs.add(q) as usize));
                    for (j, aj) in a.iter_mut().enumerate() {
                        *aj = _mm256_fmadd_ps(v, _mm256_loadu_ps(r.add(8 * j)), *aj);
                    }
                }
                for (j, aj) in a.iter().enumerate() {
                    _mm256_storeu_ps(o.add(8 * j), *aj);
                }
            }
        });
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
            // Wide enough that the panels are built in several passes (64 rows each).
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

    /// Every code path this CPU has gives the portable path's sums (up to rounding order).
    #[test]
    fn every_backend_matches_the_portable_sweep() {
        let mut seed = 5;
        let (features, n) = (200, 37);
        let xt = sparse_values(features, n, 0.3, &mut seed);
        let panel = sparse_values(features, TILE, 1.0, &mut seed);
        let acts = SparseActs::from_feature_major(&xt, features, n);
        let sweep_all = |backend| -> Vec<Local> {
            acts.chunks
                .iter()
                .map(|chunk| {
                    let mut out = [[0f32; TILE]; CHUNK];
                    sweep_on(backend, chunk, &panel, features, &mut out);
                    out
                })
                .collect()
        };
        let want = sweep_all(Backend::Portable);
        for backend in Backend::available() {
            let got = sweep_all(backend);
            for (g, w) in got.iter().flatten().flatten().zip(want.iter().flatten().flatten()) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{backend:?}: {g} vs {w}");
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

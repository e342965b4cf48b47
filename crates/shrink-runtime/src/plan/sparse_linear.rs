//! Sparse linear steps: a Gemm / MatMul whose constant weight is mostly zeros (pruned) keeps
//! its dense packing and gets CSR f32 and 1×4 block-sparse f32 copies ([`SparseWeights`]); the
//! kernels of `shrink-kernels` read only the nonzeros. Which one runs: a density / batch rule
//! ([`default_kernel`]) or the session's tuning (`--tune`), which times all of them.

use super::epilogue::Epilogue;
use super::linear::{LinearKernel, LinearWeights};
use shrink_kernels::{block14_linear, csr_linear, Activation, Block14, Csr, Isa};

/// Fraction of zeros from which a weight gets sparse candidates.
pub const MIN_ZEROS: f64 = 0.5;

/// Density at or below which a sparse kernel is the default for more than [`GEMV_ROWS`] rows
/// (batch 1 wins from [`MIN_ZEROS`] on; a batch reuses each dense weight from cache, so the
/// dense matrix kernels stay faster down to lower densities: on simple-dnn at 10 % density and
/// batch 64, CSR took 0.45× the dense panel kernel's time, bench/results/runtime_sparse_int4.md).
pub const BATCH_MAX_DENSITY: f64 = 0.2;

/// Rows up to which a call counts as matrix-vector work.
pub const GEMV_ROWS: usize = 4;

/// A pruned weight in every representation its candidates read.
#[derive(Debug, Clone)]
pub struct SparseWeights {
    /// The dense packing (what the dense kernels read).
    pub dense: LinearWeights,
    /// Compressed sparse rows (f32 values, u16 column indices).
    pub csr: Csr,
    /// 1×4 blocks (those with any nonzero).
    pub block: Block14,
    /// Nonzeros / (N·K).
    pub density: f64,
    /// Nonzeros / stored block entries (1 when every stored block is full).
    pub block_fill: f64,
}

/// `[N, K]` rows in the representations the plan runs: [`LinearWeights::Sparse`] when at
/// least [`MIN_ZEROS`] of the weights are zero (and the sparse formats can index K), else the
/// dense packing of [`LinearWeights::for_this_cpu`].
pub fn weights_for(rows: Vec<f32>, k: usize, n: usize) -> LinearWeights {
    let total = n * k;
    let nnz = rows.iter().filter(|v| **v != 0.0).count();
    if total == 0 || ((total - nnz) as f64) < MIN_ZEROS * total as f64 {
        return LinearWeights::for_this_cpu(rows, k, n);
    }
    let (Ok(csr), Ok(block)) = (Csr::from_dense(&rows, n, k), Block14::from_dense(&rows, n, k)) else {
        return LinearWeights::for_this_cpu(rows, k, n);
    };
    let block_fill = if block.nblocks() == 0 { 1.0 } else { nnz as f64 / (4 * block.nblocks()) as f64 };
    let density = nnz as f64 / total as f64;
    let dense = LinearWeights::for_this_cpu(rows, k, n);
    LinearWeights::Sparse(Box::new(SparseWeights { dense, csr, block, density, block_fill }))
}

/// The sparse kernels (after the dense packing's own candidates).
pub const SPARSE_KERNELS: [LinearKernel; 2] = [LinearKernel::SparseCsrF32, LinearKernel::SparseBlock14F32];

/// The untuned choice: the sparse format that reads fewer bytes (1×4 blocks when they are at
/// least half full, else CSR) when the batch is small or the weight very sparse; otherwise
/// the dense packing's default.
pub fn default_kernel(s: &SparseWeights, rows: usize) -> Option<LinearKernel> {
    if rows > GEMV_ROWS && s.density > BATCH_MAX_DENSITY {
        return None;
    }
    Some(if s.block_fill >= 0.5 { LinearKernel::SparseBlock14F32 } else { LinearKernel::SparseCsrF32 })
}

/// The kernels' activation for a plan epilogue.
pub fn activation(ep: Epilogue) -> Activation {
    match ep {
        Epilogue::None => Activation::None,
        Epilogue::Relu => Activation::Relu,
        Epilogue::Clip { lo, hi } => Activation::Clip { lo, hi },
    }
}

/// Run sparse `kernel` (one of [`SPARSE_KERNELS`]) on `x` (`rows·K`) into `out` (`rows·N`).
pub fn run(
    s: &SparseWeights,
    kernel: LinearKernel,
    bias: Option<&[f32]>,
    ep: Epilogue,
    x: &[f32],
    out: &mut [f32],
) {
    let (k, n) = (s.csr.k(), s.csr.n());
    let rows = x.len().checked_div(k).unwrap_or(out.len() / n.max(1));
    let out = &mut out[..rows * n];
    let act = activation(ep);
    let r = if kernel == LinearKernel::SparseBlock14F32 {
        block14_linear(Isa::detect(), x, rows, &s.block, bias, act, out)
    } else {
        csr_linear(Isa::detect(), x, rows, &s.csr, bias, act, out)
    };
    // The step's shapes were checked when the session was made: lengths always agree.
    r.expect("sparse kernel: operand lengths checked by the session");
}

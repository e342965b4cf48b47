//! Inference kernels prepared once from a model's current weights: fully-connected layers whose
//! effective weight (after masks and fake quant) is sparse enough run as CSR products
//! ([`shrink_runtime::Csr`]) instead of dense GEMMs, so pruned zeros are not multiplied.
//!
//! A layer's weight can also come from a [`WeightRows`] source instead of the parameter store:
//! the forward pass then asks it for blocks of output rows just before they are multiplied, so a
//! sweep over quantizers evaluates every cell from the one pristine copy of the weights, never
//! holding a quantized copy of the model ([`Prepared::streamed`]).
//!
//! A [`Prepared`] is a snapshot: build it after the last weight change and use it with
//! [`crate::Model::forward_prepared`] (eval mode only). It checks on use that it belongs to a
//! graph of the same size, but not that the weights are unchanged.
use crate::error::{IrError, Result};
use crate::graph::Op;
use crate::model::Model;
use crate::view::with_f32_values;
use shrink_runtime::Csr;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Rows of weight handed out per [`WeightRows::fill`] call by the streaming kernels (4 MB).
pub const STREAM_BLOCK_ELEMS: usize = 1 << 20;

/// A layer's effective weight (masked, quantized, ...), produced on demand a block of output
/// rows (axis 0) at a time.
pub trait WeightRows: Send + Sync {
    /// Writes rows `start .. start + out.len() / row_len` into `out` (row-major).
    fn fill(&self, start: usize, out: &mut [f32]);
}

/// How one node runs in a [`Prepared`] forward.
#[derive(Clone)]
pub enum Kernel {
    /// A linear layer as a CSR product.
    Sparse(Arc<Csr>),
    /// A linear or conv layer whose weight is streamed from a source.
    Streamed(Arc<dyn WeightRows>),
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kernel::Sparse(c) => write!(f, "Sparse({}x{}, nnz {})", c.rows, c.cols, c.nnz()),
            Kernel::Streamed(_) => f.write_str("Streamed"),
        }
    }
}

/// Density at or below which a linear layer runs sparse by default. Measured on the 2-core dev
/// machine (`shrink bench --mode eval --density D --sparse-threshold 1|-1`): the CSR kernel
/// overtakes the dense GEMM at about 18 % nonzeros on simple-dnn at batch 128 (3.3x faster at 5 %).
pub const DEFAULT_MAX_DENSITY: f64 = 0.15;

/// Per-node inference kernels (`None` = the ordinary dense op).
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(crate) kernels: Vec<Option<Kernel>>,
}

impl Prepared {
    /// No special kernels: [`crate::Model::forward_prepared`] equals the plain eval forward.
    pub fn none(model: &Model) -> Prepared {
        Prepared { kernels: vec![None; model.graph.nodes.len()] }
    }

    /// CSR kernels for every linear layer whose effective weight has at most `max_density`
    /// nonzeros (CPU models only; a GPU model gets none).
    pub fn sparse(model: &Model, max_density: f64) -> Result<Prepared> {
        let mut p = Prepared::none(model);
        if !model.device().is_cpu() {
            return Ok(p);
        }
        for (id, node) in model.graph.nodes.iter().enumerate() {
            let Op::Linear { in_features, out_features, .. } = node.op else { continue };
            let w = model.effective_param(&format!("{}.weight", node.name))?;
            // Read the weight where it lives: a dense copy of a 100 MB model per evaluation
            // would double its memory.
            let csr = with_f32_values(&w, |values| {
                let nnz = values.iter().filter(|v| **v != 0.0).count();
                ((nnz as f64) <= max_density * values.len() as f64)
                    .then(|| Csr::from_dense(values, out_features, in_features))
            })?;
            p.kernels[id] = csr.map(|c| Kernel::Sparse(Arc::new(c)));
        }
        Ok(p)
    }

    /// Kernels whose weights come from `sources` (by weight name, e.g. `fc1.weight`) instead of
    /// the model: a streamed linear layer with at most `max_density` nonzeros becomes a CSR
    /// product (built by streaming its rows once), any other streamed layer asks its source for
    /// rows on every forward pass. Layers without a source get [`Prepared::sparse`]'s kernels.
    pub fn streamed(
        model: &Model,
        sources: &HashMap<String, Arc<dyn WeightRows>>,
        max_density: f64,
    ) -> Result<Prepared> {
        let mut p = Prepared::sparse(model, max_density)?;
        for (id, node) in model.graph.nodes.iter().enumerate() {
            let name = format!("{}.weight", node.name);
            let Some(src) = sources.get(&name) else { continue };
            let dims = model.params.get(&name)?.var.dims().to_vec();
            let rows = dims.first().copied().unwrap_or(1);
            let row_len = dims.iter().skip(1).product::<usize>();
            p.kernels[id] = match node.op {
                Op::Linear { .. } if model.device().is_cpu() => {
                    let mut nnz = 0usize;
                    for_each_block(src.as_ref(), rows, row_len, |_, block| {
                        nnz += block.iter().filter(|v| **v != 0.0).count()
                    });
                    if nnz as f64 <= max_density * (rows * row_len) as f64 {
                        let mut csr = Csr::with_capacity(row_len, rows, nnz);
                        for_each_block(src.as_ref(), rows, row_len, |_, block| {
                            block.chunks_exact(row_len.max(1)).for_each(|r| csr.push_row(r))
                        });
                        Some(Kernel::Sparse(Arc::new(csr)))
                    } else {
                        Some(Kernel::Streamed(src.clone()))
                    }
                }
                Op::Linear { .. } | Op::Conv2d { .. } => Some(Kernel::Streamed(src.clone())),
                _ => return Err(IrError::Invalid(format!("`{name}`: only linear and conv weights stream"))),
            };
        }
        Ok(p)
    }

    /// Number of layers that run sparse.
    pub fn sparse_layers(&self) -> usize {
        self.kernels.iter().flatten().filter(|k| matches!(k, Kernel::Sparse(_))).count()
    }

    /// The kernel of node `id`, if it has one.
    pub(crate) fn kernel(&self, id: usize) -> Option<&Kernel> {
        self.kernels.get(id).and_then(Option::as_ref)
    }
}

/// Streams all `rows` of `src` through `f(start_row, block)` in blocks of about
/// [`STREAM_BLOCK_ELEMS`] values, reusing one buffer.
pub fn for_each_block(src: &dyn WeightRows, rows: usize, row_len: usize, mut f: impl FnMut(usize, &[f32])) {
    let per = (STREAM_BLOCK_ELEMS / row_len.max(1)).clamp(1, rows.max(1));
    let mut buf = vec![0f32; per * row_len];
    let mut start = 0;
    while start < rows {
        let n = per.min(rows - start);
        let block = &mut buf[..n * row_len];
        src.fill(start, block);
        f(start, block);
        start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{zoo, Mode};
    use candle_core::{Device, Tensor};

    #[test]
    fn sparse_forward_matches_dense_on_a_masked_model() {
        let dev = Device::Cpu;
        let mut model = zoo::build("lenet-300-100", 3, &dev).unwrap();
        // Keep every 10th weight of fc1 and fc2 (masks), leave fc3 dense.
        for name in ["fc1.weight", "fc2.weight"] {
            let dims = model.params.tensor(name).unwrap().dims().to_vec();
            let n: usize = dims.iter().product();
            let keep: Vec<f32> = (0..n).map(|i| if i % 10 == 0 { 1.0 } else { 0.0 }).collect();
            model.params.set_mask(name, Tensor::from_vec(keep, dims.as_slice(), &dev).unwrap()).unwrap();
        }
        let p = Prepared::sparse(&model, DEFAULT_MAX_DENSITY).unwrap();
        assert_eq!(p.sparse_layers(), 2);
        let x = Tensor::randn(0f32, 1.0, (37, 1, 28, 28), &dev).unwrap();
        let dense = model.forward(&x, Mode::Eval).unwrap();
        let sparse = model.forward_prepared(&x, &p).unwrap();
        let d = (dense - sparse).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        let other = zoo::build("lenet5", 0, &dev).unwrap();
        assert!(other
            .forward_prepared(&Tensor::zeros((1, 1, 28, 28), candle_core::DType::F32, &dev).unwrap(), &p)
            .is_err());
        assert_eq!(Prepared::sparse(&model, -1.0).unwrap().sparse_layers(), 0);
    }
}

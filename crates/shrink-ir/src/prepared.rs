//! Inference kernels prepared once from a model's current weights: fully-connected layers whose
//! effective weight (after masks and fake quant) is sparse enough run as CSR products
//! ([`shrink_runtime::Csr`]) instead of dense GEMMs, so pruned zeros are not multiplied.
//!
//! A [`Prepared`] is a snapshot: build it after the last weight change and use it with
//! [`crate::Model::forward_prepared`] (eval mode only). It checks on use that it belongs to a
//! graph of the same size, but not that the weights are unchanged.
use crate::error::Result;
use crate::graph::Op;
use crate::model::Model;
use candle_core::{CpuStorage, Storage};
use shrink_runtime::Csr;
use std::sync::Arc;

/// Density at or below which a linear layer runs sparse by default. Measured on the 2-core dev
/// machine (`shrink bench --mode eval --density D --sparse-threshold 1|-1`): the CSR kernel
/// overtakes the dense GEMM at about 18 % nonzeros on simple-dnn at batch 128 (3.3x faster at 5 %).
pub const DEFAULT_MAX_DENSITY: f64 = 0.15;

/// Per-node inference kernels (`None` = the ordinary dense op).
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(crate) linear: Vec<Option<Arc<Csr>>>,
}

impl Prepared {
    /// No special kernels: [`crate::Model::forward_prepared`] equals the plain eval forward.
    pub fn none(model: &Model) -> Prepared {
        Prepared { linear: vec![None; model.graph.nodes.len()] }
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
            let w = model.effective_param(&format!("{}.weight", node.name))?.contiguous()?;
            // Read the weight where it lives: a dense copy of a 100 MB model per evaluation
            // would double its memory.
            let (storage, layout) = w.storage_and_layout();
            let Storage::Cpu(CpuStorage::F32(data)) = &*storage else { continue };
            let Some((a, b)) = layout.contiguous_offsets() else { continue };
            let values = &data[a..b];
            let nnz = values.iter().filter(|v| **v != 0.0).count();
            if (nnz as f64) <= max_density * values.len() as f64 {
                p.linear[id] = Some(Arc::new(Csr::from_dense(values, out_features, in_features)));
            }
        }
        Ok(p)
    }

    /// Number of layers that run sparse.
    pub fn sparse_layers(&self) -> usize {
        self.linear.iter().flatten().count()
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

//! Weight sharing (Deep Compression, Han et al., ICLR 2016, §3): each conv/linear weight's
//! surviving (unpruned) values are clustered by 1-D k-means into `2^bits` centroids (`2^bits − 1`
//! when the layer is pruned: one code stays for the zeros) and replaced by their centroid; the
//! layer is then stored as a codebook plus `bits`-bit indices. Pruned weights (mask 0, or
//! exactly 0 without a mask) stay exactly zero.
//!
//! After [`share_weights`] a layer holds at most `2^bits` distinct nonzero values, so its
//! codebook can be recovered from the weights alone ([`Codebook::recover`]): centroid
//! fine-tuning and the deploy encoder need no side file.
pub mod kmeans;

pub use kmeans::{kmeans_1d, Clusters, Init};

use crate::prune::unstructured::prunable_weights;
use crate::prune::{PruneError, Result};
use shrink_ir::Model;
use std::collections::BTreeMap;

/// What [`share_weights`] does.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareConfig {
    /// Index width for every conv/linear weight not in `layer_bits` (1..=8).
    pub bits: u32,
    /// Per-layer index widths, keyed by layer (`fc1`) or weight (`fc1.weight`) name.
    pub layer_bits: BTreeMap<String, u32>,
    pub init: Init,
}

/// One shared layer.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedLayer {
    /// Weight name (`fc1.weight`).
    pub name: String,
    pub bits: u32,
    /// Weights in the tensor.
    pub total: usize,
    /// Weights that were clustered (the unpruned ones).
    pub kept: usize,
    pub centroids: Vec<f32>,
    pub iterations: usize,
}

/// A layer's codebook: sorted distinct nonzero values and, per weight, its index (`None`
/// where the weight is zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    pub centroids: Vec<f32>,
    pub index: Vec<Option<u8>>,
}

impl Codebook {
    /// The codebook of weights that hold at most `max` distinct nonzero values, else `None`.
    pub fn recover(weights: &[f32], max: usize) -> Option<Codebook> {
        let mut distinct: Vec<f32> = Vec::new();
        for &w in weights {
            if w != 0.0 {
                if let Err(pos) = distinct.binary_search_by(|c| c.total_cmp(&w)) {
                    if distinct.len() == max.min(256) {
                        return None;
                    }
                    distinct.insert(pos, w);
                }
            }
        }
        let index = weights
            .iter()
            .map(|&w| (w != 0.0).then(|| distinct.binary_search_by(|c| c.total_cmp(&w)).unwrap_or(0) as u8))
            .collect();
        Some(Codebook { centroids: distinct, index })
    }
}

/// The gradient of each shared value: `∂L/∂C_k = Σ_{i : index_i = k} ∂L/∂W_i` (eq. 3 of the
/// paper), summed in f64 over the unpruned weights.
pub fn centroid_gradients(index: &[Option<u8>], weight_grad: &[f32], centroids: usize) -> Vec<f64> {
    let mut sum = vec![0f64; centroids];
    for (g, idx) in weight_grad.iter().zip(index) {
        if let Some(k) = idx {
            sum[*k as usize] += *g as f64;
        }
    }
    sum
}

/// Resolves the index width of every conv/linear weight; an unknown layer or a width outside
/// 1..=8 is an error naming it.
pub fn layer_widths(model: &Model, cfg: &ShareConfig) -> Result<Vec<(String, u32)>> {
    let known = prunable_weights(model);
    let check = |what: &str, b: u32| {
        if (1..=8).contains(&b) {
            Ok(())
        } else {
            Err(PruneError::Invalid(format!("{what} must be in 1..=8 bits, got {b}")))
        }
    };
    check("--bits", cfg.bits)?;
    let mut widths: BTreeMap<String, u32> = BTreeMap::new();
    for (k, &b) in &cfg.layer_bits {
        let w = if k.ends_with(".weight") { k.clone() } else { format!("{k}.weight") };
        if !known.contains(&w) {
            let names: Vec<&str> = known.iter().map(|n| n.trim_end_matches(".weight")).collect();
            return Err(PruneError::UnknownLayer { layer: k.clone(), known: names.join(", ") });
        }
        check(&format!("index width of `{k}`"), b)?;
        widths.insert(w, b);
    }
    Ok(known.into_iter().map(|n| (n.clone(), widths.get(&n).copied().unwrap_or(cfg.bits))).collect())
}

/// Clusters every conv/linear weight of `model` in place (see the module docs) and reports
/// each layer's codebook.
pub fn share_weights(model: &mut Model, cfg: &ShareConfig) -> Result<Vec<SharedLayer>> {
    let mut out = Vec::new();
    for (name, bits) in layer_widths(model, cfg)? {
        let w: Vec<f32> = model.params.tensor(&name)?.flatten_all()?.to_vec1()?;
        let keep: Vec<bool> = match model.params.mask(&name) {
            Some(m) => m.flatten_all()?.to_vec1::<f32>()?.iter().map(|&m| m != 0.0).collect(),
            None => w.iter().map(|&v| v != 0.0).collect(),
        };
        let kept: Vec<f32> = w.iter().zip(&keep).filter(|(_, &k)| k).map(|(&v, _)| v).collect();
        // A pruned layer keeps one of its 2^bits codes for 0 (sparse storage needs it).
        let k = if kept.len() < w.len() { ((1usize << bits) - 1).max(1) } else { 1usize << bits };
        let clusters = kmeans_1d(&kept, k, cfg.init);
        let mut next = clusters.assignment.iter();
        let shared: Vec<f32> = w
            .iter()
            .zip(&keep)
            .map(|(_, &k)| if k { next.next().map_or(0.0, |&a| clusters.centroids[a as usize]) } else { 0.0 })
            .collect();
        model.params.update_in_place(&name, |buf| buf.copy_from_slice(&shared))?;
        out.push(SharedLayer {
            name,
            bits,
            total: w.len(),
            kept: kept.len(),
            centroids: clusters.centroids,
            iterations: clusters.iterations,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebook_recovers_values_and_zeros() {
        let w = [0.5, 0.0, -1.0, 0.5, 2.0, 0.0];
        let c = Codebook::recover(&w, 4).unwrap();
        assert_eq!(c.centroids, vec![-1.0, 0.5, 2.0]);
        assert_eq!(c.index, vec![Some(1), None, Some(0), Some(1), Some(2), None]);
        assert!(Codebook::recover(&w, 2).is_none());
    }
}

//! `torch.nn.utils.prune` semantics as masks on the layer IR, for the labs that use them:
//!
//! | function | reference |
//! |---|---|
//! | [`ln_structured_mask`], [`prune_ln_structured`] | `prune.ln_structured(m, "weight", amount, n, dim)`: whole slices along `dim` zeroed in place (`--keep-shape`), the tensor keeps its shape |
//! | [`global_unstructured_l1`] | `prune.global_unstructured(params, L1Unstructured, amount)`: repeated calls prune `round(amount·remaining)` more weights (the `PruningContainer`'s cumulative amounts) |
//! | [`naive_first_k_keep`] | seed 002's naive channel pruning: keep the first `round((1 − p)·n)` channels |
//!
//! Repeated structured calls behave as torch's container too: the amount applies to the slices
//! the existing mask still keeps.
use super::select::{ascending_order, lp_norm, round_half_even, topk_prune_count};
use super::{check_ratio, PruneError, Result};
use candle_core::Tensor;
use shrink_ir::Model;
use std::collections::BTreeMap;

/// The 0/1 mask `prune.ln_structured(amount, n, dim)` puts on a tensor of `dims` holding
/// `values` that already carries `mask` (all ones when `None`): among the slices along `dim`
/// the mask keeps, the `round(amount·count)` of lowest `‖·‖_n` are zeroed (ties: lower index
/// first).
pub fn ln_structured_mask(
    values: &[f32],
    dims: &[usize],
    mask: Option<&[f32]>,
    amount: f64,
    n: f64,
    dim: usize,
) -> Result<Vec<f32>> {
    check_ratio("amount", amount)?;
    if dim >= dims.len() {
        return Err(PruneError::Invalid(format!("dim {dim} out of range for a {}-d weight", dims.len())));
    }
    let size = dims[dim];
    let inner: usize = dims[dim + 1..].iter().product();
    let slice_of = |i: usize| (i / inner) % size;
    let mut mask: Vec<f32> = mask.map(<[f32]>::to_vec).unwrap_or_else(|| vec![1.0; values.len()]);
    let mut alive = vec![false; size];
    for (i, m) in mask.iter().enumerate() {
        if *m != 0.0 {
            alive[slice_of(i)] = true;
        }
    }
    let live: Vec<usize> = (0..size).filter(|&c| alive[c]).collect();
    let mut members: Vec<Vec<f32>> = vec![vec![]; size];
    for (i, v) in values.iter().enumerate() {
        members[slice_of(i)].push(*v * mask[i]);
    }
    let norms: Vec<f32> = live.iter().map(|&c| lp_norm(members[c].iter().copied(), n)).collect();
    let prune = topk_prune_count(live.len(), amount);
    let mut dead = vec![false; size];
    for &k in ascending_order(&norms).iter().take(prune) {
        dead[live[k]] = true;
    }
    for (i, m) in mask.iter_mut().enumerate() {
        if dead[slice_of(i)] {
            *m = 0.0;
        }
    }
    Ok(mask)
}

/// [`ln_structured_mask`] on each weight of `amounts` (`{layer}.weight` → amount): filters
/// (`dim` 0) or input channels (`dim` 1) zeroed in place, the model keeps its shapes.
pub fn prune_ln_structured(
    model: &mut Model,
    amounts: &BTreeMap<String, f64>,
    n: f64,
    dim: usize,
) -> Result<()> {
    for (name, &amount) in amounts {
        let t = model.params.tensor(name)?;
        let dims = t.dims().to_vec();
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        let old = model.params.mask(name).map(|m| m.flatten_all()?.to_vec1::<f32>()).transpose()?;
        let mask = ln_structured_mask(&values, &dims, old.as_deref(), amount, n, dim)
            .map_err(|e| PruneError::Invalid(format!("`{name}`: {e}")))?;
        let mask = Tensor::from_vec(mask, dims.as_slice(), &model.device())?;
        model.params.set_mask(name, mask)?;
    }
    Ok(())
}

/// One `prune.global_unstructured(weights, L1Unstructured, amount)` call: over the weights the
/// masks still keep, the `round(amount·remaining)` of smallest |w| are masked (ties: earlier
/// weight, then lower index). Calling it k times leaves `≈ 1 − (1 − amount)^k` sparsity.
pub fn global_unstructured_l1(model: &mut Model, weights: &[String], amount: f64) -> Result<()> {
    check_ratio("amount", amount)?;
    let mut masks = Vec::with_capacity(weights.len());
    let mut scores = Vec::new();
    let mut at = Vec::new();
    for (k, name) in weights.iter().enumerate() {
        let t = model.params.tensor(name)?;
        let values = t.flatten_all()?.to_vec1::<f32>()?;
        let mask = match model.params.mask(name) {
            Some(m) => m.flatten_all()?.to_vec1::<f32>()?,
            None => vec![1.0; values.len()],
        };
        for (i, (v, m)) in values.iter().zip(&mask).enumerate() {
            if *m != 0.0 {
                scores.push(v.abs());
                at.push((k, i));
            }
        }
        masks.push((t.dims().to_vec(), mask));
    }
    let prune = round_half_even(amount * scores.len() as f64) as usize;
    for &j in ascending_order(&scores).iter().take(prune) {
        let (k, i) = at[j];
        masks[k].1[i] = 0.0;
    }
    for (name, (dims, mask)) in weights.iter().zip(masks) {
        let mask = Tensor::from_vec(mask, dims.as_slice(), &model.device())?;
        model.params.set_mask(name, mask)?;
    }
    Ok(())
}

/// Seed 002's naive channel pruning: keep the first `round((1 − amount)·n)` of `n` units.
pub fn naive_first_k_keep(n: usize, amount: f64) -> Vec<bool> {
    let keep = (round_half_even((1.0 - amount) * n as f64) as usize).min(n);
    (0..n).map(|i| i < keep).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_structured_zeroes_whole_filters_and_keeps_the_shape() {
        // 3 filters of 2 weights: norms 5, 1, 3 → amount 1/3 removes filter 1.
        let v = [3.0, 4.0, 1.0, 0.0, 0.0, 3.0];
        let m = ln_structured_mask(&v, &[3, 2], None, 1.0 / 3.0, 2.0, 0).unwrap();
        assert_eq!(m, vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        // A second call prunes among the two live filters: round(0.5·2) = 1 more (filter 2).
        let m2 = ln_structured_mask(&v, &[3, 2], Some(&m), 0.5, 2.0, 0).unwrap();
        assert_eq!(m2, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // Columns (dim 1): norms sqrt(9+1+0)=3.16, sqrt(16+0+9)=5 → column 0 goes.
        let c = ln_structured_mask(&v, &[3, 2], None, 0.5, 2.0, 1).unwrap();
        assert_eq!(c, vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn naive_keeps_the_first_channels() {
        assert_eq!(naive_first_k_keep(4, 0.5), vec![true, true, false, false]);
        assert_eq!(naive_first_k_keep(10, 0.25), [vec![true; 8], vec![false; 2]].concat());
    }
}

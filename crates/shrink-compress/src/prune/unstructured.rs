//! Unstructured magnitude pruning: 0/1 masks on conv/linear weights, kept in the model (and its
//! file) so later fine-tuning keeps pruned weights at zero.
use super::select::{exact_count_threshold, percentile};
use super::{check_ratio, PruneError, Result};
use candle_core::Tensor;
use shrink_ir::{Model, Op};
use std::collections::BTreeMap;

/// How per-weight importance is measured (seed 004 uses the square).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightImportance {
    Abs,
    Square,
}

impl WeightImportance {
    fn of(self, w: f32) -> f32 {
        match self {
            WeightImportance::Abs => w.abs(),
            WeightImportance::Square => w * w,
        }
    }
}

/// Which thresholding semantics to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MagnitudeRule {
    /// Seed 001 `prune_by_percentage`: per layer, `t = np.percentile(imp, 100·s)`, keep `imp >= t`.
    LayerPercentile,
    /// Seed 001 `global_prune_by_percentage`: one percentile over all selected weights, keep `>`.
    GlobalPercentile,
    /// Seed 002 `fine_grained_prune`: `round(n·s)` zeros per tensor via kthvalue, keep `>`.
    ExactCount,
    /// [`MagnitudeRule::ExactCount`] over all selected weights together: `round(N·s)` zeros
    /// in total (one threshold), so the overall sparsity is exactly the request.
    GlobalExactCount,
}

/// Names (`{layer}.weight`) of the conv/linear weights, in graph order.
pub fn prunable_weights(model: &Model) -> Vec<String> {
    model
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Linear { .. } | Op::Conv2d { .. }))
        .map(|n| format!("{}.weight", n.name))
        .collect()
}

/// Resolves a per-layer sparsity map; keys may be layer names (`fc1`) or weight names
/// (`fc1.weight`). Unknown names are an error naming the layer.
pub fn resolve_layers(model: &Model, map: &BTreeMap<String, f64>) -> Result<BTreeMap<String, f64>> {
    let known = prunable_weights(model);
    let mut out = BTreeMap::new();
    for (k, &s) in map {
        let w = if k.ends_with(".weight") { k.clone() } else { format!("{k}.weight") };
        if !known.contains(&w) {
            let names: Vec<&str> = known.iter().map(|n| n.trim_end_matches(".weight")).collect();
            return Err(PruneError::UnknownLayer { layer: k.clone(), known: names.join(", ") });
        }
        check_ratio(&format!("sparsity of `{k}`"), s)?;
        out.insert(w, s);
    }
    Ok(out)
}

/// Prunes `model` in place: sets masks on the weights in `sparsity` (weight name → fraction).
/// For [`MagnitudeRule::GlobalPercentile`] every entry must carry the same sparsity.
/// Weights that already have a mask keep their pruned entries pruned.
pub fn prune_magnitude(
    model: &mut Model,
    sparsity: &BTreeMap<String, f64>,
    rule: MagnitudeRule,
    importance: WeightImportance,
) -> Result<()> {
    let mut values: BTreeMap<String, (Vec<f32>, Vec<usize>)> = BTreeMap::new();
    for (name, &s) in sparsity {
        check_ratio(&format!("sparsity of `{name}`"), s)?;
        let t = model.effective_param(name)?;
        values.insert(name.clone(), (t.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()));
    }
    let global = matches!(rule, MagnitudeRule::GlobalPercentile | MagnitudeRule::GlobalExactCount);
    let global_threshold = if global {
        let mut all = Vec::new();
        let mut level = None;
        for (name, (v, _)) in &values {
            let s = sparsity[name];
            if level.is_some_and(|l: f64| l != s) {
                return Err(PruneError::Invalid("global pruning takes one sparsity for all layers".into()));
            }
            level = Some(s);
            all.extend(v.iter().map(|w| importance.of(*w)));
        }
        match level {
            Some(s) if !all.is_empty() && rule == MagnitudeRule::GlobalPercentile => {
                Some(percentile(&all, 100.0 * s))
            }
            Some(s) if !all.is_empty() && s >= 1.0 => Some(f32::INFINITY),
            Some(s) if !all.is_empty() => exact_count_threshold(&all, s),
            _ => None,
        }
    } else {
        None
    };
    for (name, (v, dims)) in values {
        let s = sparsity[&name];
        let imp: Vec<f32> = v.iter().map(|w| importance.of(*w)).collect();
        let keep: Vec<f32> = match rule {
            MagnitudeRule::LayerPercentile => {
                let t = percentile(&imp, 100.0 * s);
                imp.iter().map(|x| (*x >= t) as u8 as f32).collect()
            }
            MagnitudeRule::GlobalPercentile | MagnitudeRule::GlobalExactCount => {
                let t = global_threshold.unwrap_or(f32::NEG_INFINITY);
                imp.iter().map(|x| (*x > t) as u8 as f32).collect()
            }
            MagnitudeRule::ExactCount => {
                if s >= 1.0 {
                    vec![0.0; imp.len()]
                } else {
                    match exact_count_threshold(&imp, s) {
                        Some(t) => imp.iter().map(|x| (*x > t) as u8 as f32).collect(),
                        None => vec![1.0; imp.len()],
                    }
                }
            }
        };
        let mut mask = Tensor::from_vec(keep, dims.as_slice(), &model.device())?;
        if let Some(old) = model.params.mask(&name) {
            mask = mask.mul(old)?;
        }
        model.params.set_mask(&name, mask)?;
    }
    Ok(())
}

/// Per-weight sparsity rows `(weight name, elements, zeros)` for the lab-style table.
pub fn sparsity_table(model: &Model) -> Result<Vec<(String, usize, usize)>> {
    let mut rows = Vec::new();
    for name in prunable_weights(model) {
        let v = model.effective_param(&name)?.flatten_all()?.to_vec1::<f32>()?;
        let zeros = v.iter().filter(|x| **x == 0.0).count();
        rows.push((name, v.len(), zeros));
    }
    Ok(rows)
}

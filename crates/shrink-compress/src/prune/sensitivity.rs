//! Per-layer sensitivity (seed 002): accuracy of the model with one layer pruned at a time, and
//! a per-layer sparsity allocation that meets a size target with the smallest predicted drop.

/// Accuracy of the model when only `layer` is pruned, at each scanned sparsity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerCurve {
    pub layer: String,
    /// Number of prunable weights of the layer.
    pub weights: usize,
    /// `(sparsity, accuracy)` pairs, sparsity ascending.
    pub points: Vec<(f64, f64)>,
}

/// Chooses one scanned sparsity per layer so that the kept fraction of all listed weights is at
/// most `keep_fraction`, greedily taking the step with the smallest predicted accuracy drop per
/// weight removed (drops of different layers are assumed to add up). Returns `None` when even
/// the highest scanned sparsity everywhere cannot reach the target.
pub fn allocate(curves: &[LayerCurve], base_accuracy: f64, keep_fraction: f64) -> Option<Vec<(String, f64)>> {
    let total: usize = curves.iter().map(|c| c.weights).sum();
    let budget = keep_fraction * total as f64;
    // level[i] = index into curves[i].points, or None for "unpruned".
    let mut level: Vec<Option<usize>> = vec![None; curves.len()];
    let kept = |level: &[Option<usize>]| -> f64 {
        curves
            .iter()
            .zip(level)
            .map(|(c, l)| c.weights as f64 * (1.0 - l.map_or(0.0, |i| c.points[i].0)))
            .sum()
    };
    let acc_at = |c: &LayerCurve, l: Option<usize>| l.map_or(base_accuracy, |i| c.points[i].1);
    while kept(&level) > budget + 1e-9 {
        let mut best: Option<(f64, usize, usize)> = None;
        for (i, c) in curves.iter().enumerate() {
            let next = level[i].map_or(0, |l| l + 1);
            // Consider every further level, so a flat stretch after a bump is still found.
            for j in next..c.points.len() {
                let (s_now, s_new) = (level[i].map_or(0.0, |l| c.points[l].0), c.points[j].0);
                let removed = c.weights as f64 * (s_new - s_now);
                if removed <= 0.0 {
                    continue;
                }
                let drop = (acc_at(c, level[i]) - c.points[j].1).max(0.0);
                let cost = drop / removed;
                if best.is_none_or(|(b, _, _)| cost < b) {
                    best = Some((cost, i, j));
                }
            }
        }
        let (_, i, j) = best?;
        level[i] = Some(j);
    }
    Some(
        curves.iter().zip(&level).map(|(c, l)| (c.layer.clone(), l.map_or(0.0, |i| c.points[i].0))).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(layer: &str, weights: usize, acc: &[f64]) -> LayerCurve {
        let points = [0.5, 0.7, 0.9].iter().zip(acc).map(|(s, a)| (*s, *a)).collect();
        LayerCurve { layer: layer.into(), weights, points }
    }

    #[test]
    fn insensitive_big_layers_are_pruned_first() {
        let curves = [curve("big", 900, &[0.99, 0.99, 0.98]), curve("small", 100, &[0.90, 0.5, 0.1])];
        let plan = allocate(&curves, 0.99, 0.2).unwrap();
        assert_eq!(plan, vec![("big".into(), 0.9), ("small".into(), 0.0)]);
        // Kept: 90 + 100 = 190 ≤ 200.
    }

    #[test]
    fn unreachable_target_is_none() {
        let curves = [curve("a", 10, &[1.0, 1.0, 1.0])];
        assert!(allocate(&curves, 1.0, 0.05).is_none());
    }
}

//! Pure selection rules shared by the pruners, each matching one PyTorch/NumPy idiom exactly.
//!
//! | rule | reference | keeps |
//! |---|---|---|
//! | [`percentile`] | `np.percentile(x, q)` (linear interpolation) | caller compares `>=` or `>` |
//! | [`exact_count_threshold`] | `num_zeros = round(n·s)`; `torch.kthvalue(x, num_zeros)` | `x > t` |
//! | [`kth_keep_ge`] | seed 000 `prune_layer`: `k = int(n·p)`, `kthvalue(x, k)` | `x >= t` |
//! | [`topk_keep`] | `torch.nn.utils.prune`: prune `round(p·n)` smallest | the rest |

/// Python's `round()` on a float: nearest integer, ties to even (like `torch.round`).
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// Values sorted ascending with NaN last (the order of `np.sort` / `torch.sort`).
fn sorted(values: &[f32]) -> Vec<f32> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// `np.percentile(values, q)` with NumPy's default linear interpolation, computed the way
/// NumPy's `_lerp` does (in the input's float32 precision). `q` is in [0, 100].
pub fn percentile(values: &[f32], q: f64) -> f32 {
    assert!(!values.is_empty(), "percentile of an empty slice");
    let v = sorted(values);
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let t = (pos - lo as f64) as f32;
    let (a, b) = (v[lo], v[hi]);
    let diff = b - a;
    // NumPy's _lerp: a + diff·t, or b − diff·(1−t) when t ≥ 0.5 (keeps the result monotonic).
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The `k`-th smallest value (1-based), like `torch.kthvalue(x, k)`.
pub fn kthvalue(values: &[f32], k: usize) -> f32 {
    assert!(k >= 1 && k <= values.len(), "kthvalue k={k} out of 1..={}", values.len());
    let mut v = values.to_vec();
    let (_, kth, _) = v.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    *kth
}

/// Seed 002 `fine_grained_prune`: the threshold above which weights are kept (`x > t`), or
/// `None` when nothing is pruned (`round(n·sparsity) == 0`). `sparsity` in [0, 1); a sparsity
/// of 1 prunes everything and is handled by the caller.
pub fn exact_count_threshold(importance: &[f32], sparsity: f64) -> Option<f32> {
    let num_zeros = round_half_even(importance.len() as f64 * sparsity) as usize;
    if num_zeros == 0 {
        return None;
    }
    Some(kthvalue(importance, num_zeros.min(importance.len())))
}

/// Seed 000 `prune_layer`: `k = int(n·ratio)`, `t = kthvalue(scores, k)`, keep `scores >= t`.
/// With `k == 0` (where PyTorch would raise) every unit is kept. Returns the keep flags.
pub fn kth_keep_ge(scores: &[f32], ratio: f64) -> Vec<bool> {
    let k = (scores.len() as f64 * ratio) as usize;
    if k == 0 {
        return vec![true; scores.len()];
    }
    let t = kthvalue(scores, k.min(scores.len()));
    scores.iter().map(|s| *s >= t).collect()
}

/// Number of units `torch.nn.utils.prune` removes for `amount` in [0, 1]: `round(amount·n)`.
pub fn topk_prune_count(n: usize, amount: f64) -> usize {
    (round_half_even(amount * n as f64) as usize).min(n)
}

/// Indices of units in ascending importance, ties broken by index (stable).
pub fn ascending_order(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    idx
}

/// `torch.nn.utils.prune` ranking: keep every unit but the `round(amount·n)` least important.
pub fn topk_keep(scores: &[f32], amount: f64) -> Vec<bool> {
    let mut keep = vec![true; scores.len()];
    for &i in ascending_order(scores).iter().take(topk_prune_count(scores.len(), amount)) {
        keep[i] = false;
    }
    keep
}

/// The `‖·‖_p` norm of a slice (p ≥ 1; `p = inf` gives the max magnitude).
pub fn lp_norm(values: impl Iterator<Item = f32>, p: f64) -> f32 {
    if p.is_infinite() {
        return values.fold(0.0f32, |m, v| m.max(v.abs()));
    }
    if p == 1.0 {
        return values.map(|v| v.abs() as f64).sum::<f64>() as f32;
    }
    if p == 2.0 {
        return values.map(|v| (v as f64) * (v as f64)).sum::<f64>().sqrt() as f32;
    }
    values.map(|v| (v.abs() as f64).powf(p)).sum::<f64>().powf(1.0 / p) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round_is_half_to_even() {
        let cases = [(0.5, 0.0), (1.5, 2.0), (2.5, 2.0), (-0.5, 0.0), (-1.5, -2.0), (2.4, 2.0), (2.6, 3.0)];
        for (x, want) in cases {
            assert_eq!(round_half_even(x), want, "round({x})");
        }
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // np.percentile([1, 2, 3, 4], q) = 1 + 3·q/100.
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert!((percentile(&v, 50.0) - 2.5).abs() < 1e-7);
        assert!((percentile(&v, 30.0) - 1.9).abs() < 1e-6);
    }

    #[test]
    fn seed000_rule_keeps_n_minus_k_plus_one() {
        let scores: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let keep = kth_keep_ge(&scores, 0.35); // k = 3 → threshold 2.0 → keeps 2..9
        assert_eq!(keep.iter().filter(|k| **k).count(), 8);
        assert!(!keep[0] && !keep[1] && keep[2]);
        assert!(kth_keep_ge(&scores, 0.05).iter().all(|k| *k));
    }

    #[test]
    fn topk_ties_break_by_index() {
        let keep = topk_keep(&[1.0, 0.5, 0.5, 2.0], 0.25);
        assert_eq!(keep, vec![true, false, true, true]);
    }
}

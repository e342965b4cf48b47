//! Mixed-precision bit allocation: given, per layer, a measured cost for each candidate bit
//! width (e.g. the increase of validation loss when only that layer is quantized at `b` bits)
//! and the layer's parameter count, choose one bit width per layer that minimizes the total
//! cost subject to the storage budget `Σ bits_i · n_i ≤ budget` (in bits; see [`budget_bits`]
//! for the usual "average bits per weight" form).
//!
//! This is a multiple-choice knapsack problem. [`allocate`] solves it **exactly** by dynamic
//! programming over Pareto frontiers: after layer `k` it keeps, for every reachable storage size
//! that can still be completed within the budget, the cheapest way to get there, and drops every
//! state that another state dominates (no larger size and no larger cost). Every optimal
//! solution's prefix is a Pareto-optimal state of its prefix layers, so nothing optimal is lost.
//! Unlike a Lagrangian relaxation (which only reaches allocations on the convex hull of the
//! cost/size trade-off and can miss the optimum under a hard budget) the answer is the true
//! optimum; unlike a table indexed by size, memory does not grow with the budget's magnitude:
//! a frontier holds at most `min(Π candidates, distinct reachable sizes)` states, in practice
//! a few thousand for a ResNet with six candidates per layer.
//!
//! Ties in cost are broken towards the smaller total size, then towards earlier candidates.
use thiserror::Error;

/// Largest bit width a candidate may have (the quantizers' range).
pub const MAX_BITS: u32 = 16;

/// One bit width a layer may take and the cost measured for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bits: u32,
    /// Any finite number; lower is better (may be negative, e.g. a loss that fell).
    pub cost: f64,
}

/// A layer to allocate bits for: its parameter count and its candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerOptions {
    pub name: String,
    /// Weights stored at the chosen bit width.
    pub params: u64,
    pub candidates: Vec<Candidate>,
}

impl LayerOptions {
    /// A layer whose candidate `bits[j]` has cost `costs[j]`.
    pub fn new(name: impl Into<String>, params: u64, bits: &[u32], costs: &[f64]) -> LayerOptions {
        let candidates = bits.iter().zip(costs).map(|(&bits, &cost)| Candidate { bits, cost }).collect();
        LayerOptions { name: name.into(), params, candidates }
    }

    /// The cost of this layer at `bits`, if it is a candidate.
    pub fn cost_at(&self, bits: u32) -> Option<f64> {
        self.candidates.iter().find(|c| c.bits == bits).map(|c| c.cost)
    }

    fn min_bits(&self) -> u32 {
        self.candidates.iter().map(|c| c.bits).min().unwrap_or(0)
    }
}

/// The chosen bit width of every layer (in input order) with its total cost and size.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub bits: Vec<u32>,
    /// Sum of the chosen candidates' costs.
    pub cost: f64,
    /// `Σ bits_i · n_i`.
    pub total_bits: u128,
}

impl Allocation {
    /// Average bits per weight: `total_bits / Σ n_i` (0 when there are no weights).
    pub fn average_bits(&self, layers: &[LayerOptions]) -> f64 {
        let n = total_params(layers);
        if n == 0 {
            0.0
        } else {
            self.total_bits as f64 / n as f64
        }
    }
}

/// Mixed-precision allocation errors (one line each).
#[derive(Debug, Error, PartialEq)]
pub enum MixedError {
    #[error("mixed precision needs at least one layer")]
    NoLayers,
    #[error("layer `{layer}` has no candidate bit widths")]
    NoCandidates { layer: String },
    #[error("layer `{layer}`: candidate bit width {bits} is outside 1..={MAX_BITS}")]
    BadBits { layer: String, bits: u32 },
    #[error("layer `{layer}` lists {bits} bits twice")]
    DuplicateBits { layer: String, bits: u32 },
    #[error("layer `{layer}`: cost at {bits} bits is not finite ({cost})")]
    BadCost { layer: String, bits: u32, cost: f64 },
    #[error("average bit budget must be a finite number > 0, got {0}")]
    BadAverage(f64),
    #[error(
        "budget of {budget} bits ({budget_avg:.4} per weight) is below the smallest allocation, \
         {min} bits ({min_avg:.4} per weight, every layer at its fewest bits)"
    )]
    Infeasible { budget: u128, budget_avg: f64, min: u128, min_avg: f64 },
    #[error("layer {index} is out of range, or bits {bits} is not one of its candidates")]
    NotACandidate { index: usize, bits: u32 },
}

/// `Σ n_i` over `layers`.
pub fn total_params(layers: &[LayerOptions]) -> u128 {
    layers.iter().map(|l| l.params as u128).sum()
}

/// The budget in bits for an average of `avg_bits` per weight: `floor(avg_bits · Σ n_i)`, with a
/// relative tolerance of 1e-12 so that e.g. `4.1 · 10` gives 41 and not 40.
pub fn budget_bits(avg_bits: f64, layers: &[LayerOptions]) -> Result<u128, MixedError> {
    if !(avg_bits.is_finite() && avg_bits > 0.0) {
        return Err(MixedError::BadAverage(avg_bits));
    }
    let raw = avg_bits * total_params(layers) as f64;
    Ok((raw * (1.0 + 1e-12)).floor() as u128)
}

/// Checks the layers: at least one, each with distinct candidates in 1..=16 and finite costs.
pub fn check_layers(layers: &[LayerOptions]) -> Result<(), MixedError> {
    if layers.is_empty() {
        return Err(MixedError::NoLayers);
    }
    for l in layers {
        if l.candidates.is_empty() {
            return Err(MixedError::NoCandidates { layer: l.name.clone() });
        }
        for (j, c) in l.candidates.iter().enumerate() {
            if !(1..=MAX_BITS).contains(&c.bits) {
                return Err(MixedError::BadBits { layer: l.name.clone(), bits: c.bits });
            }
            if !c.cost.is_finite() {
                return Err(MixedError::BadCost { layer: l.name.clone(), bits: c.bits, cost: c.cost });
            }
            if l.candidates[..j].iter().any(|d| d.bits == c.bits) {
                return Err(MixedError::DuplicateBits { layer: l.name.clone(), bits: c.bits });
            }
        }
    }
    Ok(())
}

/// Cost and size of a given per-layer bit assignment (each must be one of the layer's
/// candidates), e.g. a uniform one.
pub fn evaluate(layers: &[LayerOptions], bits: &[u32]) -> Result<Allocation, MixedError> {
    if bits.len() != layers.len() {
        return Err(MixedError::NotACandidate { index: bits.len().min(layers.len()), bits: 0 });
    }
    let (mut cost, mut total_bits) = (0.0, 0u128);
    for (index, (l, &b)) in layers.iter().zip(bits).enumerate() {
        cost += l.cost_at(b).ok_or(MixedError::NotACandidate { index, bits: b })?;
        total_bits += b as u128 * l.params as u128;
    }
    Ok(Allocation { bits: bits.to_vec(), cost, total_bits })
}

/// One Pareto-optimal partial allocation: its size and cost so far, and how it was reached.
#[derive(Debug, Clone, Copy)]
struct State {
    size: u128,
    cost: f64,
    /// Index of the predecessor in the previous frontier.
    parent: usize,
    /// Index of the chosen candidate of this layer.
    choice: usize,
}

/// The cheapest allocation with `Σ bits_i · n_i ≤ budget` (exact; see the module docs).
pub fn allocate(layers: &[LayerOptions], budget: u128) -> Result<Allocation, MixedError> {
    check_layers(layers)?;
    // min_rest[k]: the smallest size layers k.. can take.
    let mut min_rest = vec![0u128; layers.len() + 1];
    for k in (0..layers.len()).rev() {
        min_rest[k] = min_rest[k + 1] + layers[k].min_bits() as u128 * layers[k].params as u128;
    }
    if min_rest[0] > budget {
        let n = total_params(layers).max(1) as f64;
        return Err(MixedError::Infeasible {
            budget,
            budget_avg: budget as f64 / n,
            min: min_rest[0],
            min_avg: min_rest[0] as f64 / n,
        });
    }
    // frontiers[k]: the Pareto-optimal states after the first k layers.
    let mut frontiers: Vec<Vec<State>> = Vec::with_capacity(layers.len() + 1);
    frontiers.push(vec![State { size: 0, cost: 0.0, parent: 0, choice: 0 }]);
    for (k, layer) in layers.iter().enumerate() {
        let limit = budget - min_rest[k + 1];
        let prev = &frontiers[k];
        let mut next = Vec::with_capacity(prev.len() * layer.candidates.len());
        for (parent, s) in prev.iter().enumerate() {
            for (choice, c) in layer.candidates.iter().enumerate() {
                let size = s.size + c.bits as u128 * layer.params as u128;
                if size <= limit {
                    next.push(State { size, cost: s.cost + c.cost, parent, choice });
                }
            }
        }
        // Sort by size, then cost (stable: earlier parents/candidates first); keep a state only
        // if it is strictly cheaper than every smaller-or-equal-size state kept before it.
        next.sort_by(|a, b| a.size.cmp(&b.size).then(a.cost.total_cmp(&b.cost)));
        let mut frontier: Vec<State> = Vec::with_capacity(next.len());
        for s in next {
            if frontier.last().is_none_or(|f| s.cost < f.cost) {
                frontier.push(s);
            }
        }
        frontiers.push(frontier);
    }
    // Costs fall strictly along a frontier, so its last state is the cheapest (and the
    // smallest of the cheapest). The feasibility check above guarantees one exists.
    let last = &frontiers[layers.len()];
    let Some(&best) = last.last() else {
        return Err(MixedError::NoLayers);
    };
    let mut bits = vec![0u32; layers.len()];
    let mut idx = last.len() - 1;
    for k in (0..layers.len()).rev() {
        let s = frontiers[k + 1][idx];
        bits[k] = layers[k].candidates[s.choice].bits;
        idx = s.parent;
    }
    Ok(Allocation { bits, cost: best.cost, total_bits: best.size })
}

/// [`allocate`] for an average budget of `avg_bits` per weight.
pub fn allocate_average(layers: &[LayerOptions], avg_bits: f64) -> Result<Allocation, MixedError> {
    check_layers(layers)?;
    allocate(layers, budget_bits(avg_bits, layers)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn layer(name: &str, params: u64, options: &[(u32, f64)]) -> LayerOptions {
        LayerOptions {
            name: name.into(),
            params,
            candidates: options.iter().map(|&(bits, cost)| Candidate { bits, cost }).collect(),
        }
    }

    #[test]
    fn gives_bits_to_the_sensitive_small_layer() {
        // A small, sensitive layer and a big, robust one; average budget 3 bits.
        let layers = [
            layer("small", 100, &[(2, 5.0), (4, 1.0), (8, 0.0)]),
            layer("big", 900, &[(2, 0.5), (4, 0.1), (8, 0.0)]),
        ];
        let a = allocate_average(&layers, 3.0).unwrap();
        // 8·100 + 2·900 = 2600 ≤ 3000; 4·100 + 2·900 = 2200 costs 1.5 > 0.5.
        assert_eq!(a.bits, vec![8, 2]);
        assert_eq!(a.total_bits, 2600);
        assert_eq!(a.cost, 0.5);
        assert!((a.average_bits(&layers) - 2.6).abs() < 1e-12);
        // Uniform 2 bits (the only uniform under 3) costs 5.5.
        assert_eq!(evaluate(&layers, &[2, 2]).unwrap().cost, 5.5);
    }

    #[test]
    fn a_generous_budget_takes_the_cheapest_everywhere() {
        let layers = [layer("a", 10, &[(2, 3.0), (8, 0.0)]), layer("b", 10, &[(2, 1.0), (8, 0.0)])];
        assert_eq!(allocate_average(&layers, 16.0).unwrap().bits, vec![8, 8]);
        // Equal cost: the smaller size wins.
        let flat = [layer("a", 10, &[(8, 0.0), (2, 0.0)])];
        assert_eq!(allocate_average(&flat, 8.0).unwrap().bits, vec![2]);
    }

    #[test]
    fn the_budget_is_exact_not_convex() {
        // 4 bits lies above the chord from 2 to 8 bits, off the convex hull of (size, cost):
        // a Lagrangian sweep picks 2 or 8 per layer and, at a budget of 8, can only return
        // (2, 2) at cost 20; the exact optimum is (4, 4) at 16.
        let layers = [
            layer("a", 1, &[(2, 10.0), (4, 8.0), (8, 0.0)]),
            layer("b", 1, &[(2, 10.0), (4, 8.0), (8, 0.0)]),
        ];
        let a = allocate(&layers, 8).unwrap();
        assert_eq!((a.bits.clone(), a.cost, a.total_bits), (vec![4, 4], 16.0, 8));
        assert_eq!(allocate(&layers, 10).unwrap().cost, 10.0);
        assert_eq!(allocate(&layers, 16).unwrap().cost, 0.0);
        assert!(matches!(allocate(&layers, 3), Err(MixedError::Infeasible { min: 4, .. })));
    }

    #[test]
    fn errors_are_one_line() {
        let ok = layer("a", 10, &[(2, 1.0), (4, 0.0)]);
        let cases: Vec<(Vec<LayerOptions>, f64)> = vec![
            (vec![], 4.0),
            (vec![layer("a", 10, &[])], 4.0),
            (vec![layer("a", 10, &[(0, 1.0)])], 4.0),
            (vec![layer("a", 10, &[(17, 1.0)])], 4.0),
            (vec![layer("a", 10, &[(4, 1.0), (4, 2.0)])], 4.0),
            (vec![layer("a", 10, &[(4, f64::NAN)])], 4.0),
            (vec![ok.clone()], 1.5),
            (vec![ok.clone()], 0.0),
            (vec![ok], f64::INFINITY),
        ];
        for (layers, avg) in cases {
            let e = allocate_average(&layers, avg).unwrap_err().to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let e = allocate_average(&[layer("a", 10, &[(2, 1.0)])], 1.5).unwrap_err();
        assert!(matches!(e, MixedError::Infeasible { budget: 15, min: 20, .. }), "{e}");
    }

    #[test]
    fn budget_tolerates_decimal_rounding() {
        let l = [layer("a", 10, &[(4, 0.0)])];
        assert_eq!(budget_bits(4.1, &l).unwrap(), 41);
        assert_eq!(budget_bits(2.5, &l).unwrap(), 25);
        assert_eq!(budget_bits(2.55, &l).unwrap(), 25);
    }

    #[test]
    fn zero_parameter_layers_are_free() {
        let layers = [layer("empty", 0, &[(2, 1.0), (8, 0.0)]), layer("a", 4, &[(2, 0.0)])];
        let a = allocate_average(&layers, 2.0).unwrap();
        assert_eq!(a.bits, vec![8, 2]);
    }

    /// Every combination, the cheapest that fits (ties: smaller size).
    fn brute_force(layers: &[LayerOptions], budget: u128) -> Option<(f64, u128)> {
        let mut best: Option<(f64, u128)> = None;
        let mut idx = vec![0usize; layers.len()];
        loop {
            let bits: Vec<u32> = idx.iter().zip(layers).map(|(&i, l)| l.candidates[i].bits).collect();
            let a = evaluate(layers, &bits).unwrap();
            if a.total_bits <= budget && best.is_none_or(|(c, _)| a.cost < c - 1e-9) {
                best = Some((a.cost, a.total_bits));
            }
            let mut k = 0;
            while k < idx.len() {
                idx[k] += 1;
                if idx[k] < layers[k].candidates.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == idx.len() {
                return best;
            }
        }
    }

    const BITS: [u32; 6] = [2, 3, 4, 5, 6, 8];

    /// 1..=5 layers, each with 1..=4 distinct candidates from `BITS`, costs in [-1, 10).
    fn instance() -> impl Strategy<Value = Vec<LayerOptions>> {
        prop::collection::vec(
            (
                1u64..200,
                prop::sample::subsequence(BITS.to_vec(), 1..=4),
                prop::collection::vec(-1.0f64..10.0, 4),
            ),
            1..=5,
        )
        .prop_map(|ls| {
            ls.into_iter()
                .enumerate()
                .map(|(i, (n, bits, costs))| LayerOptions::new(format!("l{i}"), n, &bits, &costs))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn equals_brute_force_and_meets_the_budget(layers in instance(), avg in 1.5f64..9.0) {
            let budget = budget_bits(avg, &layers).unwrap();
            match (allocate(&layers, budget), brute_force(&layers, budget)) {
                (Ok(a), Some((cost, _))) => {
                    prop_assert!(a.total_bits <= budget);
                    prop_assert!(a.average_bits(&layers) <= avg + 1e-9);
                    let check = evaluate(&layers, &a.bits).unwrap();
                    prop_assert_eq!(check.total_bits, a.total_bits);
                    prop_assert!((check.cost - a.cost).abs() < 1e-9);
                    prop_assert!((a.cost - cost).abs() < 1e-9, "dp {} vs brute force {}", a.cost, cost);
                }
                (Err(MixedError::Infeasible { .. }), None) => {}
                (a, b) => prop_assert!(false, "dp {:?} vs brute force {:?}", a, b),
            }
        }

        #[test]
        fn never_worse_than_uniform(
            params in prop::collection::vec(1u64..5000, 1..=20),
            costs in prop::collection::vec(0.0f64..10.0, BITS.len()),
            uniform in prop::sample::select(BITS.to_vec()),
        ) {
            // Identical cost curves in every layer; uniform `b` fits an average budget of `b`.
            let layers: Vec<LayerOptions> = params
                .iter()
                .enumerate()
                .map(|(i, &n)| LayerOptions::new(format!("l{i}"), n, &BITS, &costs))
                .collect();
            let a = allocate_average(&layers, uniform as f64).unwrap();
            let u = evaluate(&layers, &vec![uniform; layers.len()]).unwrap();
            prop_assert!(a.total_bits <= u.total_bits);
            prop_assert!(a.cost <= u.cost + 1e-9, "mixed {} vs uniform {}", a.cost, u.cost);
        }
    }
}

//! One-dimensional k-means (Lloyd's algorithm) for weight sharing.
//!
//! Deep Compression (Han et al., ICLR 2016, §3.1) clusters each layer's surviving weights into
//! `2^bits` shared values and finds linear initialization (centroids evenly spaced between the
//! smallest and largest weight) best: it keeps the few large weights, which density-based
//! initializations under-represent.
//!
//! In one dimension the points nearest each centroid form a contiguous run of the sorted
//! values, bounded by the midpoints between neighbouring centroids, so one Lloyd iteration is
//! `k` binary searches and prefix-sum differences: O(k log n) after one O(n log n) sort.

/// How the centroids start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Evenly spaced over `[min, max]` (the paper's choice).
    Linear,
    /// At evenly spaced quantiles of the values (the paper's "density-based" initialization).
    Density,
}

/// Result of clustering: sorted centroids and, per input value, the index of its centroid.
#[derive(Debug, Clone, PartialEq)]
pub struct Clusters {
    pub centroids: Vec<f32>,
    pub assignment: Vec<u8>,
    /// Lloyd iterations run until no centroid moved (or the cap was hit).
    pub iterations: usize,
}

/// Most Lloyd iterations [`kmeans_1d`] runs.
pub const MAX_ITERATIONS: usize = 300;

/// Clusters `values` into at most `k ≤ 256` centroids.
///
/// A value exactly halfway between two centroids goes to the lower one. A cluster that loses
/// every member keeps its centroid. Centroid means are accumulated in f64. `values` must be
/// finite; an empty slice gives no centroids.
pub fn kmeans_1d(values: &[f32], k: usize, init: Init) -> Clusters {
    assert!((1..=256).contains(&k), "kmeans_1d: k must be in 1..=256");
    if values.is_empty() {
        return Clusters { centroids: vec![], assignment: vec![], iterations: 0 };
    }
    let mut sorted: Vec<f32> = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let mut prefix = Vec::with_capacity(sorted.len() + 1);
    prefix.push(0.0f64);
    for &v in &sorted {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v as f64);
    }
    let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
    let mut centroids: Vec<f32> = match init {
        Init::Linear if k == 1 => vec![(lo + hi) / 2.0],
        Init::Linear => (0..k).map(|i| lo + (hi - lo) * (i as f64 / (k - 1) as f64) as f32).collect(),
        Init::Density => (0..k)
            .map(|i| {
                let q = (i as f64 + 0.5) / k as f64;
                sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)]
            })
            .collect(),
    };
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        let bounds = run_bounds(&sorted, &centroids);
        let mut moved = false;
        for (c, w) in centroids.iter_mut().zip(bounds.windows(2)) {
            let (a, b) = (w[0], w[1]);
            if b > a {
                let mean = ((prefix[b] - prefix[a]) / (b - a) as f64) as f32;
                if mean != *c {
                    *c = mean;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    let assignment = values.iter().map(|&v| nearest(&centroids, v) as u8).collect();
    Clusters { centroids, assignment, iterations }
}

/// Start index of each centroid's run in `sorted` (plus the end): value `v` belongs to the
/// first centroid whose upper midpoint is ≥ v.
fn run_bounds(sorted: &[f32], centroids: &[f32]) -> Vec<usize> {
    let mut bounds = Vec::with_capacity(centroids.len() + 1);
    bounds.push(0);
    for w in centroids.windows(2) {
        let mid = midpoint(w[0], w[1]);
        bounds.push(sorted.partition_point(|&v| v <= mid));
    }
    bounds.push(sorted.len());
    bounds
}

fn midpoint(a: f32, b: f32) -> f32 {
    ((a as f64 + b as f64) / 2.0) as f32
}

/// Index of the centroid nearest `v` (ties to the lower one), `centroids` sorted.
pub fn nearest(centroids: &[f32], v: f32) -> usize {
    let mut i = 0;
    while i + 1 < centroids.len() && v > midpoint(centroids[i], centroids[i + 1]) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_assign(c: &[f32], v: f32) -> usize {
        let mut best = 0;
        for (i, &x) in c.iter().enumerate() {
            if (v - x).abs() < (v - c[best]).abs() {
                best = i;
            }
        }
        best
    }

    #[test]
    fn separated_groups_are_found_exactly() {
        let v = [1.0, 1.1, 0.9, 5.0, 5.2, 4.8, -3.0, -3.0];
        let c = kmeans_1d(&v, 3, Init::Linear);
        assert_eq!(c.centroids.len(), 3);
        assert!((c.centroids[0] + 3.0).abs() < 1e-6);
        assert!((c.centroids[1] - 1.0).abs() < 1e-6);
        assert!((c.centroids[2] - 5.0).abs() < 1e-6);
        assert_eq!(c.assignment, vec![1, 1, 1, 2, 2, 2, 0, 0]);
    }

    #[test]
    fn result_is_a_lloyd_fixed_point() {
        let mut s = 12345u64;
        let v: Vec<f32> = (0..5000)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                ((u - 0.5) * (u - 0.5) * (u - 0.5) * 40.0) as f32
            })
            .collect();
        for init in [Init::Linear, Init::Density] {
            let c = kmeans_1d(&v, 16, init);
            assert!(c.iterations < MAX_ITERATIONS);
            for (i, &x) in v.iter().enumerate() {
                let a = c.assignment[i] as usize;
                assert!((x - c.centroids[a]).abs() <= (x - c.centroids[brute_assign(&c.centroids, x)]).abs());
            }
            for (k, &cent) in c.centroids.iter().enumerate() {
                let m: Vec<f64> = v
                    .iter()
                    .zip(&c.assignment)
                    .filter(|(_, &a)| a as usize == k)
                    .map(|(&x, _)| x as f64)
                    .collect();
                if !m.is_empty() {
                    let mean = m.iter().sum::<f64>() / m.len() as f64;
                    assert!((mean as f32 - cent).abs() < 1e-5, "centroid {k}: {cent} vs mean {mean}");
                }
            }
        }
    }

    #[test]
    fn fewer_distinct_values_than_clusters() {
        let c = kmeans_1d(&[2.0, 2.0, 2.0], 4, Init::Linear);
        assert!(c.assignment.iter().all(|&a| c.centroids[a as usize] == 2.0));
        assert!(kmeans_1d(&[], 4, Init::Linear).centroids.is_empty());
    }
}

//! Channel importance of a [`ChannelGroup`]: the Lp norm of every weight slice the channel
//! would remove (weights: constants of rank ≥ 2; biases and normalization parameters do not
//! count), summed over the coupled weights — `filter-ln` for a plain conv → conv chain, and
//! the group importance of Torch-Pruning where a channel spans several layers.

use super::depgraph::ChannelGroup;
use shrink_graph::Graph;

/// How channels are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GroupImportance {
    /// `(Σ |w|^p)^(1/p)` over the channel's weight slices.
    Lp(f32),
}

/// Sum of `|x|^p` over the slice of `data` (row-major `shape`) at `index` of `axis`.
fn slice_power(data: &[f32], shape: &[usize], axis: usize, index: usize, p: f32) -> f64 {
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let size = shape[axis];
    let mut s = 0.0f64;
    for o in 0..outer {
        let start = (o * size + index) * inner;
        for &x in &data[start..start + inner] {
            s += if p == 2.0 { (x as f64) * (x as f64) } else { (x.abs() as f64).powf(p as f64) };
        }
    }
    s
}

/// The score of every channel of `group` (higher = more important).
pub fn channel_scores(graph: &Graph, group: &ChannelGroup, how: GroupImportance) -> Vec<f32> {
    let GroupImportance::Lp(p) = how;
    let weights: Vec<(usize, &[f32], &[usize], usize)> = group
        .axes
        .iter()
        .enumerate()
        .filter_map(|(k, &(v, axis))| {
            let t = graph.const_value(v)?;
            (t.shape.len() >= 2).then_some(())?;
            Some((k, t.as_f32()?, t.shape.as_slice(), axis))
        })
        .collect();
    group
        .channels
        .iter()
        .map(|ch| {
            let total: f64 = weights
                .iter()
                .map(|&(k, data, shape, axis)| {
                    ch[k].iter().map(|&i| slice_power(data, shape, axis, i, p)).sum::<f64>()
                })
                .sum();
            total.powf(1.0 / p as f64) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_power_reads_the_right_elements() {
        // shape [2, 3]: axis 1 index 2 is elements 2 and 5.
        let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(slice_power(&d, &[2, 3], 1, 2, 2.0), 9.0 + 36.0);
        assert_eq!(slice_power(&d, &[2, 3], 0, 1, 1.0), 15.0);
    }
}

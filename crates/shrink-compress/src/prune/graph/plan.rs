//! Selection: which channels to remove, as a [`PrunePlan`] that is saved as JSON and re-applied.

use super::depgraph::DepGraph;
use super::importance::{channel_scores, GroupImportance};
use serde::{Deserialize, Serialize};
use shrink_graph::Graph;

/// Indices removed from one axis of one value (named, so the plan survives renumbering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    pub value: String,
    pub axis: usize,
    /// Sorted, unique.
    pub remove: Vec<usize>,
}

/// Everything a structured pruning removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunePlan {
    pub cuts: Vec<Cut>,
}

impl PrunePlan {
    /// Number of removed indices of `value`'s `axis`.
    pub fn removed(&self, value: &str, axis: usize) -> usize {
        self.cuts.iter().filter(|c| c.value == value && c.axis == axis).map(|c| c.remove.len()).sum()
    }
}

/// Remove `round(ratio · channels)` lowest-scored channels of every prunable group (at least
/// one channel stays); ties keep the lower index.
pub fn plan_local(graph: &Graph, deps: &DepGraph, ratio: f64, how: GroupImportance) -> PrunePlan {
    let mut cuts: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for group in deps.groups.iter().filter(|g| g.prunable) {
        let touches_weight =
            group.axes.iter().any(|&(v, _)| graph.const_value(v).is_some_and(|t| t.shape.len() >= 2));
        let n = group.channels.len();
        if !touches_weight || n < 2 {
            continue;
        }
        let k = ((ratio * n as f64).round() as usize).min(n - 1);
        if k == 0 {
            continue;
        }
        let scores = channel_scores(graph, group, how);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        for &c in &order[..k] {
            for (j, &(v, axis)) in group.axes.iter().enumerate() {
                cuts.entry((v, axis)).or_default().extend(&group.channels[c][j]);
            }
        }
    }
    PrunePlan {
        cuts: cuts
            .into_iter()
            .map(|((v, axis), mut remove)| {
                remove.sort_unstable();
                remove.dedup();
                Cut { value: graph.values[v].name.clone(), axis, remove }
            })
            .collect(),
    }
}

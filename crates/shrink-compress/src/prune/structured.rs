//! Structured pruning: choose channel groups (see [`super::deps`]) to remove, then rewrite the
//! graph and its weights so the network is physically smaller.
//!
//! Selection follows the seeds exactly where a layer's units are independent:
//! * [`KeepRule::KthKeepGe`] — seed 000 `prune_layer`: scores = row L2 norms, `k = int(n·p)`,
//!   threshold = `kthvalue(scores, k)`, keep `scores >= threshold`; scores of a layer are taken
//!   after the previous layer's removals (its input columns already gone), as in the lab.
//! * [`KeepRule::TopK`] — `torch.nn.utils.prune.ln_structured(dim=0)` / seed 002 channel pruning:
//!   remove the `round(p·n)` least important units, scores on the unpruned weights.
//!
//! Units coupled through residual Adds or shortcuts form one group; such a cluster of layers is
//! pruned greedily by ascending group importance (each producer's norm divided by its layer's
//! mean norm, averaged over the group's producers) while every layer in the group still has
//! budget left, so each layer loses at most its share and the coupled layers stay consistent.
use super::deps::ChannelDeps;
use super::select::{kth_keep_ge, lp_norm, topk_keep, topk_prune_count};
use super::{PruneError, Result};
use candle_core::{Device, Tensor};
use shrink_ir::{Graph, Model, NodeId, Op, ParamStore};
use std::collections::{BTreeMap, BTreeSet};

/// How units are ranked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Importance {
    /// `‖W[row]‖_p` of the producing layer's output row (filter / neuron norm).
    OutputNorm { p: f64 },
    /// Frobenius norm of the consuming layers' input slices (seed 002 channel importance).
    InputNorm,
    /// Seed 002's naive channel pruning: no ranking, the last units go (the first are kept).
    Naive,
}

/// How many units a layer loses and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepRule {
    /// Seed 000: keep `score >= kthvalue(scores, int(n·p))`, scores after earlier removals.
    KthKeepGe,
    /// `torch.nn.utils.prune`: remove the `round(p·n)` least important.
    TopK,
}

/// A structured pruning request.
#[derive(Debug, Clone)]
pub struct StructuredPlan {
    pub importance: Importance,
    pub rule: KeepRule,
    /// Fraction of output units to remove, by producer layer name (layers absent keep all).
    pub ratios: BTreeMap<String, f64>,
}

/// What one layer lost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerChange {
    pub layer: String,
    pub units_before: usize,
    pub units_after: usize,
}

/// Names of the layers whose output units may be removed (some unit is in a prunable group).
pub fn prunable_layers(model: &Model) -> Result<Vec<String>> {
    Ok(prunable_layer_names(model, &analyze(model)?))
}

fn prunable_layer_names(model: &Model, deps: &ChannelDeps) -> Vec<String> {
    let mut ids = BTreeSet::new();
    for g in deps.groups.iter().filter(|g| g.prunable) {
        ids.extend(g.producers.iter().map(|(n, _)| *n));
    }
    ids.into_iter().map(|id| model.graph.nodes[id].name.clone()).collect()
}

fn analyze(model: &Model) -> Result<ChannelDeps> {
    let shapes = model.shapes()?;
    Ok(ChannelDeps::analyze(&model.graph, &shapes))
}

/// Effective weights of a Linear/Conv node as `[rows][in positions][kernel elements]`, flattened.
struct LayerWeights {
    values: Vec<f32>,
    rows: usize,
    in_positions: usize,
    inner: usize,
}

fn layer_weights(model: &Model, node: NodeId) -> Result<LayerWeights> {
    let name = format!("{}.weight", model.graph.nodes[node].name);
    let t = model.effective_param(&name)?;
    let dims = t.dims().to_vec();
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    let inner: usize = dims.iter().skip(2).product();
    Ok(LayerWeights { values, rows: dims[0], in_positions: dims[1], inner })
}

impl LayerWeights {
    fn row_norm(&self, row: usize, p: f64, keep_in: Option<&[bool]>) -> f32 {
        let start = row * self.in_positions * self.inner;
        let slice = &self.values[start..start + self.in_positions * self.inner];
        let inner = self.inner;
        lp_norm(
            slice
                .iter()
                .enumerate()
                .filter(|(i, _)| keep_in.is_none_or(|k| k.len() != self.in_positions || k[i / inner]))
                .map(|(_, v)| *v),
            p,
        )
    }

    fn column_sq(&self, col: usize) -> f64 {
        let mut s = 0.0f64;
        for r in 0..self.rows {
            let start = (r * self.in_positions + col) * self.inner;
            s += self.values[start..start + self.inner].iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        }
        s
    }
}

fn is_param_layer(op: &Op) -> bool {
    matches!(op, Op::Linear { .. } | Op::Conv2d { .. })
}

/// Removes units according to `plan` and returns the smaller model plus per-layer changes.
pub fn prune_structured(model: &Model, plan: &StructuredPlan) -> Result<(Model, Vec<LayerChange>)> {
    let deps = analyze(model)?;
    let prunable = prunable_layer_names(model, &deps);
    for (layer, ratio) in &plan.ratios {
        super::check_ratio(&format!("sparsity of `{layer}`"), *ratio)?;
        if !prunable.contains(layer) {
            return Err(PruneError::UnknownLayer { layer: layer.clone(), known: prunable.join(", ") });
        }
    }
    let graph = &model.graph;
    let ratio_of = |node: NodeId| plan.ratios.get(&graph.nodes[node].name).copied().unwrap_or(0.0);

    // Candidate groups: prunable, with at least one producer that has a positive ratio.
    let candidates: Vec<usize> = (0..deps.groups.len())
        .filter(|&g| {
            let grp = &deps.groups[g];
            grp.prunable && !grp.producers.is_empty() && grp.producers.iter().all(|(n, _)| ratio_of(*n) > 0.0)
        })
        .collect();
    // Clusters of producer layers linked by shared candidate groups.
    let mut cluster_of: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut clusters: Vec<BTreeSet<NodeId>> = Vec::new();
    for &g in &candidates {
        let layers: BTreeSet<NodeId> = deps.groups[g].producers.iter().map(|(n, _)| *n).collect();
        let mut hit: BTreeSet<usize> = layers.iter().filter_map(|l| cluster_of.get(l).copied()).collect();
        let target = match hit.pop_first() {
            Some(c) => c,
            None => {
                clusters.push(BTreeSet::new());
                clusters.len() - 1
            }
        };
        for other in hit {
            let moved = std::mem::take(&mut clusters[other]);
            clusters[target].extend(moved);
        }
        clusters[target].extend(layers);
        for &l in &clusters[target].clone() {
            cluster_of.insert(l, target);
        }
    }
    let mut clusters: Vec<BTreeSet<NodeId>> = clusters.into_iter().filter(|c| !c.is_empty()).collect();
    clusters.sort_by_key(|c| *c.first().unwrap());

    let weights: BTreeMap<NodeId, LayerWeights> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| is_param_layer(&n.op))
        .map(|(i, _)| Ok((i, layer_weights(model, i)?)))
        .collect::<Result<_>>()?;
    let mut removed = vec![false; deps.groups.len()];
    let sequential = plan.rule == KeepRule::KthKeepGe;
    for cluster in &clusters {
        let keep_in = |node: NodeId, removed: &[bool]| -> Vec<bool> {
            let input = graph.nodes[node].inputs[0];
            deps.slots[input].iter().map(|&g| !removed[g]).collect()
        };
        // Per producer row score.
        let mut row_score: BTreeMap<(NodeId, usize), f32> = BTreeMap::new();
        for &layer in cluster {
            let w = &weights[&layer];
            let mask = if sequential { Some(keep_in(layer, &removed)) } else { None };
            for row in 0..w.rows {
                let s = match plan.importance {
                    Importance::OutputNorm { p } => w.row_norm(row, p, mask.as_deref()),
                    Importance::InputNorm | Importance::Naive => 0.0,
                };
                row_score.insert((layer, row), s);
            }
        }
        let in_cluster: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&g| deps.groups[g].producers.iter().any(|(n, _)| cluster.contains(n)))
            .collect();
        let group_score = |g: usize| -> f32 {
            match plan.importance {
                Importance::InputNorm => input_norm(graph, &deps, &weights, g),
                Importance::Naive => {
                    -(deps.groups[g].producers.iter().map(|(_, r)| *r).min().unwrap_or(0) as f32)
                }
                Importance::OutputNorm { .. } => {
                    let prods = &deps.groups[g].producers;
                    if cluster.len() == 1 {
                        return prods.iter().map(|k| row_score[k]).sum();
                    }
                    let mean_of = |layer: NodeId| {
                        let rows = weights[&layer].rows;
                        let s: f32 = (0..rows).map(|r| row_score[&(layer, r)]).sum();
                        (s / rows as f32).max(f32::MIN_POSITIVE)
                    };
                    prods.iter().map(|&(l, r)| row_score[&(l, r)] / mean_of(l)).sum::<f32>()
                        / prods.len() as f32
                }
            }
        };
        let layer = *cluster.first().unwrap();
        let simple = cluster.len() == 1
            && in_cluster.len() == weights[&layer].rows
            && in_cluster.iter().all(|&g| deps.groups[g].producers.len() == 1);
        if simple {
            // Independent units: the seed's rule applied to the layer's scores exactly.
            let mut by_row = vec![usize::MAX; weights[&layer].rows];
            for &g in &in_cluster {
                by_row[deps.groups[g].producers[0].1] = g;
            }
            let scores: Vec<f32> = by_row.iter().map(|&g| group_score(g)).collect();
            let keep = match (plan.importance, plan.rule) {
                // Seed 002's count: keep round((1 − p)·n), the first ones.
                (Importance::Naive, _) => {
                    super::torch_like::naive_first_k_keep(scores.len(), ratio_of(layer))
                }
                (_, KeepRule::KthKeepGe) => kth_keep_ge(&scores, ratio_of(layer)),
                (_, KeepRule::TopK) => topk_keep(&scores, ratio_of(layer)),
            };
            for (row, k) in keep.iter().enumerate() {
                removed[by_row[row]] = !k;
            }
        } else {
            let mut budget: BTreeMap<NodeId, usize> = cluster
                .iter()
                .map(|&l| {
                    let n = weights[&l].rows;
                    let b = match plan.rule {
                        KeepRule::KthKeepGe => ((n as f64 * ratio_of(l)) as usize).saturating_sub(1),
                        KeepRule::TopK => topk_prune_count(n, ratio_of(l)),
                    };
                    (l, b)
                })
                .collect();
            let scores: Vec<f32> = in_cluster.iter().map(|&g| group_score(g)).collect();
            let mut order: Vec<usize> = (0..in_cluster.len()).collect();
            order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
            for i in order {
                let g = in_cluster[i];
                let mut need: BTreeMap<NodeId, usize> = BTreeMap::new();
                for (l, _) in &deps.groups[g].producers {
                    *need.entry(*l).or_default() += 1;
                }
                if need.iter().all(|(l, n)| budget[l] >= *n) {
                    for (l, n) in need {
                        *budget.get_mut(&l).unwrap() -= n;
                    }
                    removed[g] = true;
                }
            }
        }
    }
    apply_removal(model, &deps, &removed)
}

/// Seed 002 channel importance of a group: Frobenius norm of every consumer's input slices.
fn input_norm(graph: &Graph, deps: &ChannelDeps, weights: &BTreeMap<NodeId, LayerWeights>, g: usize) -> f32 {
    let mut sq = 0.0f64;
    for (id, node) in graph.nodes.iter().enumerate() {
        let Some(w) = weights.get(&id) else { continue };
        if matches!(node.op, Op::Conv2d { groups, .. } if groups != 1) {
            continue;
        }
        for (pos, &grp) in deps.slots[node.inputs[0]].iter().enumerate() {
            if grp == g && pos < w.in_positions {
                sq += w.column_sq(pos);
            }
        }
    }
    sq.sqrt() as f32
}

/// Removes every group whose producers' weight rows and biases are all within `tol` of zero
/// (what group-lasso training leaves behind). Exact when `tol == 0` and no BatchNorm follows.
pub fn remove_zero_groups(model: &Model, tol: f32) -> Result<(Model, Vec<LayerChange>)> {
    let deps = analyze(model)?;
    let mut zero_rows: BTreeSet<(NodeId, usize)> = BTreeSet::new();
    for (id, node) in model.graph.nodes.iter().enumerate() {
        if !is_param_layer(&node.op) {
            continue;
        }
        let w = layer_weights(model, id)?;
        let bias_name = format!("{}.bias", node.name);
        let bias = if model.params.contains(&bias_name) {
            Some(model.effective_param(&bias_name)?.to_vec1::<f32>()?)
        } else {
            None
        };
        for row in 0..w.rows {
            let b = bias.as_ref().map_or(0.0, |b| b[row].abs());
            if w.row_norm(row, f64::INFINITY, None) <= tol && b <= tol {
                zero_rows.insert((id, row));
            }
        }
    }
    let removed: Vec<bool> = deps
        .groups
        .iter()
        .map(|g| g.prunable && !g.producers.is_empty() && g.producers.iter().all(|k| zero_rows.contains(k)))
        .collect();
    apply_removal(model, &deps, &removed)
}

fn index(keep: &[usize], device: &Device) -> Result<Tensor> {
    let idx: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
    Ok(Tensor::from_vec(idx, keep.len(), device)?)
}

/// A parameter suffix with the rows (dim 0) and columns (dim 1) to keep; `None` keeps all.
type Selection<'a> = (&'static str, Option<&'a Vec<usize>>, Option<&'a Vec<usize>>);

/// Rewrites graph and weights without the positions of `removed` groups.
pub fn apply_removal(
    model: &Model,
    deps: &ChannelDeps,
    removed: &[bool],
) -> Result<(Model, Vec<LayerChange>)> {
    let graph = &model.graph;
    let keep: Vec<Vec<usize>> =
        deps.slots.iter().map(|s| (0..s.len()).filter(|&i| !removed[s[i]]).collect()).collect();
    let device = model.device();
    let mut new_graph = graph.clone();
    let mut store = ParamStore::new();
    let mut changes = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate() {
        let out_keep = &keep[id];
        let in_keep = node.inputs.first().map(|&i| &keep[i]);
        let n_out = out_keep.len();
        let op = &mut new_graph.nodes[id].op;
        // (dim-0 selection, dim-1 selection) for the weight.
        let mut select: Vec<Selection> = Vec::new();
        match op {
            Op::Linear { in_features, out_features, bias } => {
                let in_keep = in_keep.unwrap();
                *in_features = in_keep.len();
                *out_features = n_out;
                select.push(("weight", Some(out_keep), Some(in_keep)));
                if *bias {
                    select.push(("bias", Some(out_keep), None));
                }
            }
            Op::Conv2d { in_channels, out_channels, groups, bias, .. } => {
                let in_keep = in_keep.unwrap();
                // Only a depthwise conv (groups = in = out) is pruned, in step on both sides; the
                // dependency analysis keeps every other grouped conv whole, so its weight's
                // `in / groups` dimension and `groups` stay as they are.
                let grouped = *groups > 1;
                let depthwise = grouped && *groups == *in_channels && *in_channels == *out_channels;
                *in_channels = in_keep.len();
                *out_channels = n_out;
                if depthwise {
                    *groups = n_out;
                }
                select.push(("weight", Some(out_keep), if grouped { None } else { Some(in_keep) }));
                if *bias {
                    select.push(("bias", Some(out_keep), None));
                }
            }
            Op::BatchNorm { num_features, .. } => {
                *num_features = n_out;
                for s in ["weight", "bias", "running_mean", "running_var"] {
                    select.push((s, Some(out_keep), None));
                }
            }
            Op::ShortcutA { pad_before, pad_after, .. } => {
                let total = deps.slots[id].len();
                let (pb, pa) = (*pad_before, *pad_after);
                *pad_before = out_keep.iter().filter(|&&i| i < pb).count();
                *pad_after = out_keep.iter().filter(|&&i| i >= total - pa).count();
            }
            _ => {}
        }
        if is_param_layer(&node.op) {
            let before = deps.slots[id].len();
            if n_out == 0 {
                return Err(PruneError::RemovesAll(node.name.clone()));
            }
            if n_out != before {
                changes.push(LayerChange {
                    layer: node.name.clone(),
                    units_before: before,
                    units_after: n_out,
                });
            }
        }
        for (suffix, rows, cols) in select {
            let name = format!("{}.{suffix}", node.name);
            let p = model.params.get(&name)?;
            let pick = |t: &Tensor| -> Result<Tensor> {
                let mut t = t.clone();
                if let Some(r) = rows {
                    if r.len() != t.dims()[0] {
                        t = t.index_select(&index(r, &device)?, 0)?;
                    }
                }
                if let Some(c) = cols {
                    if c.len() != t.dims()[1] {
                        t = t.index_select(&index(c, &device)?, 1)?;
                    }
                }
                Ok(t.contiguous()?)
            };
            store.insert(name.clone(), pick(p.var.as_tensor())?, p.kind)?;
            if let Some(m) = model.params.mask(&name) {
                store.set_mask(&name, pick(m)?)?;
            }
            if let Some(q) = model.params.quant(&name) {
                let mut q = q.clone();
                if q.axis == Some(0) && q.scales.len() > 1 {
                    q.scales = out_keep.iter().map(|&i| q.scales[i]).collect();
                    q.offsets = out_keep.iter().map(|&i| q.offsets[i]).collect();
                }
                store.set_quant(&name, q)?;
            }
        }
    }
    let mut pruned = Model::new(new_graph, store, model.meta.clone())?;
    // Activation quantizers are per tensor, so they stay valid on the thinner tensors.
    for (node, slot) in &model.act_quant {
        if pruned.graph.node(node).is_some() {
            pruned.set_act_quant(node, slot.clone())?;
        }
    }
    Ok((pruned, changes))
}

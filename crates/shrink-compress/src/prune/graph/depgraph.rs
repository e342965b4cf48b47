//! Channel dependency graph of an open-IR graph.
//!
//! Every index of every fixed-size axis of every value is a *slot*. Each node's
//! [`AxesMapping`](shrink_graph::AxesMapping) unions slots: `Same` index by index, `Concat` with
//! offsets, `Reshape` maps the merged axis block-wise onto the outermost split axis of size > 1
//! (flatten after a conv: channel `c` is features `c·HW..(c+1)·HW`; attention: a whole head)
//! and pins the inner split axes, `Grouped` couples a grouped conv's channels so every group
//! stays the same width (depthwise: input channel `g` with output channel(s) of group `g`).
//! Slots of graph inputs and outputs, `Pinned` axes, axes a node's mapping does not mention
//! (their indices are mixed: kernel windows, spatial axes) and axes related to symbolic
//! dimensions are pinned. The union-find classes are *channels*; channels touching the same set of
//! (value, axis) pairs form one [`ChannelGroup`] (one prunable "layer").

use shrink_graph::{AxisRel, Dim, Graph, Port, ValueId};
use std::collections::BTreeMap;

/// One axis of one value.
type AxisRef = (ValueId, usize);

/// Every port a relation mentions.
fn rel_ports(rel: &AxisRel) -> Vec<Port> {
    match rel {
        AxisRel::Same(a, b) => vec![*a, *b],
        AxisRel::Concat { whole, parts } => [vec![*whole], parts.clone()].concat(),
        AxisRel::Reshape { merged, split } => [vec![*merged], split.clone()].concat(),
        AxisRel::Grouped { input, weight_in, weight_out, .. } => vec![*input, *weight_in, *weight_out],
        AxisRel::Pinned(p) => vec![*p],
    }
}

/// Union-find over slots; `pinned` is kept per class root.
#[derive(Debug, Clone, Default)]
struct UnionFind {
    parent: Vec<usize>,
    pinned: Vec<bool>,
}

impl UnionFind {
    fn pin(&mut self, x: usize) {
        let r = self.find(x);
        self.pinned[r] = true;
    }

    fn is_pinned(&mut self, x: usize) -> bool {
        let r = self.find(x);
        self.pinned[r]
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (root, child) = (ra.min(rb), ra.max(rb));
            self.parent[child] = root;
            self.pinned[root] |= self.pinned[child];
        }
    }
}

/// One prunable layer: channels that touch the same (value, axis) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelGroup {
    /// The coupled (value, axis) pairs, sorted.
    pub axes: Vec<(ValueId, usize)>,
    /// Per channel, its indices on every coupled axis: `channels[c][k]` are the indices on
    /// `axes[k]` (several for block couplings such as a flatten).
    pub channels: Vec<Vec<Vec<usize>>>,
    /// False when a channel reaches a graph input/output, a pinned or symbolic axis.
    pub prunable: bool,
}

/// The slot union-find and the channel groups it yields.
#[derive(Debug, Clone)]
pub struct DepGraph {
    /// First slot of each (value, axis); `None` for symbolic axes.
    base: Vec<Vec<Option<usize>>>,
    uf: UnionFind,
    /// The groups, in order of their first slot.
    pub groups: Vec<ChannelGroup>,
}

impl DepGraph {
    /// Analyze `graph`.
    pub fn build(graph: &Graph) -> DepGraph {
        let mut base = Vec::with_capacity(graph.values.len());
        let mut n = 0usize;
        for v in &graph.values {
            let mut axes = Vec::with_capacity(v.fact.rank());
            for d in &v.fact.shape {
                match d {
                    Dim::Fixed(size) => {
                        axes.push(Some(n));
                        n += size;
                    }
                    Dim::Sym(_) => axes.push(None),
                }
            }
            base.push(axes);
        }
        let mut dg = DepGraph {
            base,
            uf: UnionFind { parent: (0..n).collect(), pinned: vec![false; n] },
            groups: vec![],
        };
        // Reshapes are related last: which split axis carries the merged one depends on what
        // the rest of the graph pins.
        let mut reshapes: Vec<(Option<AxisRef>, Vec<Option<AxisRef>>)> = Vec::new();
        for &v in graph.inputs.iter().chain(&graph.outputs) {
            for axis in 0..graph.values[v].fact.rank() {
                dg.pin_axis(graph, (v, axis));
            }
        }
        for node in &graph.nodes {
            let ins: Vec<_> = node.inputs.iter().map(|&v| &graph.values[v].fact).collect();
            let outs: Vec<_> = node.outputs.iter().map(|&v| &graph.values[v].fact).collect();
            let port = |p: Port| match p {
                Port::In { input, axis } => node.inputs.get(input).map(|&v| (v, axis)),
                Port::Out { output, axis } => node.outputs.get(output).map(|&v| (v, axis)),
            };
            let rels = node.op.def().axes(&ins, &outs).rels;
            // An axis the mapping does not mention has its indices mixed (a kernel window, a
            // spatial axis under a convolution): it cannot lose indices.
            let mut seen = std::collections::HashSet::new();
            for rel in &rels {
                for p in rel_ports(rel) {
                    seen.insert(p);
                }
            }
            for (k, &v) in node.inputs.iter().enumerate() {
                for axis in 0..graph.values[v].fact.rank() {
                    if !seen.contains(&Port::input(k, axis)) {
                        dg.pin_axis(graph, (v, axis));
                    }
                }
            }
            for (k, &v) in node.outputs.iter().enumerate() {
                for axis in 0..graph.values[v].fact.rank() {
                    if !seen.contains(&Port::output(k, axis)) {
                        dg.pin_axis(graph, (v, axis));
                    }
                }
            }
            for rel in rels {
                match rel {
                    AxisRel::Reshape { merged, split } => {
                        reshapes.push((port(merged), split.iter().map(|p| port(*p)).collect()))
                    }
                    rel => dg.relate(graph, &rel, &port),
                }
            }
        }
        for (merged, split) in reshapes {
            dg.relate_reshape(graph, merged, &split);
        }
        dg.groups = dg.collect_groups(graph);
        dg
    }

    fn size(graph: &Graph, (v, axis): (ValueId, usize)) -> Option<usize> {
        graph.values[v].fact.shape.get(axis).and_then(Dim::fixed)
    }

    fn slot(&self, (v, axis): (ValueId, usize), i: usize) -> Option<usize> {
        self.base[v].get(axis).copied().flatten().map(|b| b + i)
    }

    fn pin_axis(&mut self, graph: &Graph, va: (ValueId, usize)) {
        if let (Some(size), Some(b)) = (Self::size(graph, va), self.slot(va, 0)) {
            for s in b..b + size {
                self.uf.pin(s);
            }
        }
    }

    fn pin_axis_of(&mut self, graph: &Graph, va: Option<(ValueId, usize)>) {
        if let Some(va) = va {
            self.pin_axis(graph, va);
        }
    }

    fn relate(&mut self, graph: &Graph, rel: &AxisRel, port: &dyn Fn(Port) -> Option<(ValueId, usize)>) {
        match rel {
            AxisRel::Same(a, b) => {
                let (a, b) = (port(*a), port(*b));
                let (Some(a), Some(b)) = (a, b) else { return };
                match (Self::size(graph, a), Self::size(graph, b)) {
                    (Some(x), Some(y)) if x == y => {
                        for i in 0..x {
                            let (sa, sb) = (self.slot(a, i).expect("fixed"), self.slot(b, i).expect("fixed"));
                            self.uf.union(sa, sb);
                        }
                    }
                    _ => {
                        self.pin_axis(graph, a);
                        self.pin_axis(graph, b);
                    }
                }
            }
            AxisRel::Concat { whole, parts } => {
                let whole = port(*whole);
                let parts: Vec<_> = parts.iter().map(|p| port(*p)).collect();
                let sizes: Option<Vec<usize>> =
                    parts.iter().map(|p| p.and_then(|p| Self::size(graph, p))).collect();
                let ok = whole
                    .and_then(|w| Self::size(graph, w))
                    .zip(sizes.as_ref())
                    .filter(|(w, s)| *w == s.iter().sum::<usize>());
                match ok {
                    Some(_) => {
                        let w = whole.expect("checked");
                        let mut off = 0;
                        for (p, &s) in parts.iter().zip(sizes.as_ref().expect("checked")) {
                            let p = p.expect("checked");
                            for i in 0..s {
                                let (a, b) =
                                    (self.slot(w, off + i).expect("fixed"), self.slot(p, i).expect("fixed"));
                                self.uf.union(a, b);
                            }
                            off += s;
                        }
                    }
                    None => {
                        self.pin_axis_of(graph, whole);
                        for p in parts {
                            self.pin_axis_of(graph, p);
                        }
                    }
                }
            }
            AxisRel::Reshape { merged, split } => {
                let split: Vec<_> = split.iter().map(|p| port(*p)).collect();
                self.relate_reshape(graph, port(*merged), &split);
            }
            AxisRel::Grouped { input, weight_in, weight_out, groups } => {
                let (i, wi, wo) = (port(*input), port(*weight_in), port(*weight_out));
                let (Some(i), Some(wi), Some(wo)) = (i, wi, wo) else { return };
                let g = *groups;
                let (Some(c), Some(m), Some(cg)) =
                    (Self::size(graph, i), Self::size(graph, wo), Self::size(graph, wi))
                else {
                    self.pin_axis(graph, i);
                    self.pin_axis(graph, wo);
                    return;
                };
                if g == 0 || c != g * cg || m % g != 0 {
                    self.pin_axis(graph, i);
                    self.pin_axis(graph, wo);
                    self.pin_axis(graph, wi);
                    return;
                }
                let mg = m / g;
                let s = |dg: &Self, va, idx| dg.slot(va, idx).expect("fixed");
                if cg == 1 {
                    // Depthwise (with multiplier mg): input channel g drives output block g.
                    for grp in 0..g {
                        let si = s(self, i, grp);
                        for k in 0..mg {
                            let so = s(self, wo, grp * mg + k);
                            self.uf.union(si, so);
                        }
                    }
                    self.pin_axis(graph, wi);
                } else {
                    // Every group keeps the same width: index k of each group goes together.
                    for k in 0..cg {
                        let swi = s(self, wi, k);
                        for grp in 0..g {
                            let si = s(self, i, grp * cg + k);
                            self.uf.union(swi, si);
                        }
                    }
                    for k in 0..mg {
                        let first = s(self, wo, k);
                        for grp in 1..g {
                            let so = s(self, wo, grp * mg + k);
                            self.uf.union(first, so);
                        }
                    }
                }
            }
            AxisRel::Pinned(p) => self.pin_axis_of(graph, port(*p)),
        }
    }

    /// `merged` is `split` in row-major order. The carrying axis is the outermost split axis of
    /// size > 1 that nothing pins yet (a flatten after a conv: the channels, not the pinned
    /// spatial axes; attention heads `[H, dh]`: whole heads; a packed `[3, D]` projection whose
    /// `3` is gathered: the features, the same in each block). Merged index `m` joins index
    /// `(m / stride) % size` of the carrying axis; the other split axes are pinned.
    fn relate_reshape(
        &mut self,
        graph: &Graph,
        merged: Option<(ValueId, usize)>,
        split: &[Option<(ValueId, usize)>],
    ) {
        let sizes: Option<Vec<usize>> = split.iter().map(|p| p.and_then(|p| Self::size(graph, p))).collect();
        let m = merged.and_then(|m| Self::size(graph, m));
        let pin_all = |dg: &mut Self| {
            dg.pin_axis_of(graph, merged);
            for p in split {
                dg.pin_axis_of(graph, *p);
            }
        };
        let (Some(m), Some(sizes), Some(mv)) = (m, sizes, merged) else { return pin_all(self) };
        if m != sizes.iter().product::<usize>() {
            return pin_all(self);
        }
        let carrier = (0..split.len()).find(|&k| {
            let axis = split[k].expect("sizes known");
            sizes[k] > 1
                && !(0..sizes[k]).any(|i| {
                    let s = self.slot(axis, i).expect("fixed");
                    self.uf.is_pinned(s)
                })
        });
        let Some(k) = carrier else { return pin_all(self) };
        let axis = split[k].expect("sizes known");
        let stride: usize = sizes[k + 1..].iter().product();
        for i in 0..m {
            let (a, b) =
                (self.slot(mv, i).expect("fixed"), self.slot(axis, (i / stride) % sizes[k]).expect("fixed"));
            self.uf.union(a, b);
        }
        for (j, p) in split.iter().enumerate() {
            if j != k {
                self.pin_axis_of(graph, *p);
            }
        }
    }

    fn collect_groups(&mut self, graph: &Graph) -> Vec<ChannelGroup> {
        // Members of each class: (value, axis, index).
        let mut classes: BTreeMap<usize, Vec<(ValueId, usize, usize)>> = BTreeMap::new();
        let mut class_pinned: BTreeMap<usize, bool> = BTreeMap::new();
        for (v, axes) in self.base.clone().iter().enumerate() {
            for (axis, b) in axes.iter().enumerate() {
                let Some(b) = *b else { continue };
                let size = Self::size(graph, (v, axis)).expect("fixed");
                for i in 0..size {
                    let root = self.uf.find(b + i);
                    classes.entry(root).or_default().push((v, axis, i));
                    let pinned = self.uf.is_pinned(b + i);
                    *class_pinned.entry(root).or_default() |= pinned;
                }
            }
        }
        // Channels touching the same (value, axis) set form one group.
        let mut by_axes: BTreeMap<Vec<(ValueId, usize)>, ChannelGroup> = BTreeMap::new();
        let mut order: Vec<Vec<(ValueId, usize)>> = Vec::new();
        for (root, members) in classes {
            let mut axes: Vec<(ValueId, usize)> = members.iter().map(|&(v, a, _)| (v, a)).collect();
            axes.sort_unstable();
            axes.dedup();
            let mut idx = vec![Vec::new(); axes.len()];
            for &(v, a, i) in &members {
                let k = axes.binary_search(&(v, a)).expect("present");
                idx[k].push(i);
            }
            let group = by_axes.entry(axes.clone()).or_insert_with(|| {
                order.push(axes.clone());
                ChannelGroup { axes, channels: vec![], prunable: true }
            });
            group.prunable &= !class_pinned[&root];
            group.channels.push(idx);
        }
        order.into_iter().map(|k| by_axes.remove(&k).expect("present")).collect()
    }
}

//! Channel dependency analysis (the idea of Torch-Pruning's DepGraph, on shrink's IR).
//!
//! Every position of every node's channel dimension gets a *slot*; ops that pass channels
//! through (BatchNorm, ReLU, pooling, Dropout, depthwise conv) reuse their input's slots,
//! Flatten repeats each channel's slot over its H·W features, a residual Add unions the slots of
//! its two inputs, and an option-A shortcut keeps its input's slots and adds fresh zero-padding
//! slots. A union-find over slots then yields the *channel groups*: sets of positions that must
//! be removed together for the graph to stay valid. A group touching the graph input, the graph
//! output or a grouped convolution cannot be removed.
use shrink_ir::{Graph, NodeId, Op};

/// Union-find over slot ids.
#[derive(Debug, Clone)]
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn add(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
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
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// One removable (or fixed) set of coupled channel positions.
#[derive(Debug, Clone)]
pub struct ChannelGroup {
    /// `(producer node, output row)` pairs: Linear/Conv output units whose removal this group
    /// implies. Their weight rows are what importance is measured on.
    pub producers: Vec<(NodeId, usize)>,
    /// Whether the group may be removed (false when it reaches the input, the output or a
    /// grouped convolution).
    pub prunable: bool,
}

/// The channel groups of a graph and, per node, which group each output position belongs to.
#[derive(Debug, Clone)]
pub struct ChannelDeps {
    /// Group id of every position of each node's channel (or feature) dimension.
    pub slots: Vec<Vec<usize>>,
    pub groups: Vec<ChannelGroup>,
}

impl ChannelDeps {
    /// Analyzes `graph` whose per-node output shapes are `shapes` (without batch).
    pub fn analyze(graph: &Graph, shapes: &[Vec<usize>]) -> ChannelDeps {
        let mut uf = UnionFind { parent: vec![] };
        let mut fixed: Vec<usize> = Vec::new();
        let mut producers: Vec<(usize, NodeId, usize)> = Vec::new();
        let mut slots: Vec<Vec<usize>> = Vec::with_capacity(graph.nodes.len());
        for (id, node) in graph.nodes.iter().enumerate() {
            let channels = shapes[id].first().copied().unwrap_or(1);
            let input = |k: usize| -> &Vec<usize> { &slots[node.inputs[k]] };
            let out: Vec<usize> = match &node.op {
                Op::Input => {
                    let s: Vec<usize> = (0..channels).map(|_| uf.add()).collect();
                    fixed.extend(&s);
                    s
                }
                Op::Linear { .. } | Op::Conv2d { groups: 1, .. } => {
                    let s: Vec<usize> = (0..channels).map(|_| uf.add()).collect();
                    producers.extend(s.iter().enumerate().map(|(row, &slot)| (slot, id, row)));
                    s
                }
                Op::Conv2d { in_channels, out_channels, groups, .. }
                    if groups == in_channels && in_channels == out_channels =>
                {
                    // Depthwise: output channel c depends only on input channel c, so it follows
                    // the layer that produces its input (its filters are sliced with it) and is
                    // not a producer with a ratio of its own.
                    input(0).clone()
                }
                Op::Conv2d { .. } => {
                    fixed.extend(input(0).iter().copied());
                    let s: Vec<usize> = (0..channels).map(|_| uf.add()).collect();
                    fixed.extend(&s);
                    s
                }
                Op::BatchNorm { .. }
                | Op::Relu
                | Op::Dropout { .. }
                | Op::MaxPool2d { .. }
                | Op::AvgPool2d { .. }
                | Op::GlobalAvgPool => input(0).clone(),
                Op::Flatten => {
                    let inner: usize = shapes[node.inputs[0]].iter().skip(1).product();
                    input(0).iter().flat_map(|&s| std::iter::repeat_n(s, inner)).collect()
                }
                Op::Add => {
                    let (a, b) = (input(0).clone(), input(1).clone());
                    for (&x, &y) in a.iter().zip(&b) {
                        uf.union(x, y);
                    }
                    a
                }
                Op::ShortcutA { pad_before, pad_after, .. } => {
                    let mut s: Vec<usize> = (0..*pad_before).map(|_| uf.add()).collect();
                    s.extend(input(0).iter().copied());
                    s.extend((0..*pad_after).map(|_| uf.add()));
                    s
                }
            };
            slots.push(out);
        }
        fixed.extend(slots[graph.output()].iter().copied());
        // Renumber union-find roots into dense group ids.
        let mut group_of_root = vec![usize::MAX; uf.parent.len()];
        let mut groups: Vec<ChannelGroup> = Vec::new();
        let mut group_id = |uf: &mut UnionFind, slot: usize, groups: &mut Vec<ChannelGroup>| {
            let root = uf.find(slot);
            if group_of_root[root] == usize::MAX {
                group_of_root[root] = groups.len();
                groups.push(ChannelGroup { producers: vec![], prunable: true });
            }
            group_of_root[root]
        };
        let slots: Vec<Vec<usize>> = slots
            .iter()
            .map(|s| s.iter().map(|&slot| group_id(&mut uf, slot, &mut groups)).collect())
            .collect();
        for slot in fixed {
            let g = group_id(&mut uf, slot, &mut groups);
            groups[g].prunable = false;
        }
        for (slot, node, row) in producers {
            let g = group_id(&mut uf, slot, &mut groups);
            groups[g].producers.push((node, row));
        }
        ChannelDeps { slots, groups }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrink_ir::zoo;

    fn deps(arch: &str) -> ChannelDeps {
        let g = zoo::graph(arch).unwrap();
        let shapes = g.infer_shapes(&zoo::meta(arch).unwrap().input_shape).unwrap();
        ChannelDeps::analyze(&g, &shapes)
    }

    #[test]
    fn mlp_hidden_neurons_are_independent_groups() {
        let d = deps("lenet-300-100");
        let prunable: Vec<_> = d.groups.iter().filter(|g| g.prunable).collect();
        assert_eq!(prunable.len(), 400);
        assert!(prunable.iter().all(|g| g.producers.len() == 1));
    }

    #[test]
    fn resnet_residual_stream_couples_blocks_and_stages() {
        let d = deps("resnet20");
        let prunable = d.groups.iter().filter(|g| g.prunable).count();
        // 9 block-internal convs (16·3 + 32·3 + 64·3 = 336 groups) plus the residual stream:
        // 16 stage-1 channels, 16 new stage-2 channels, 32 new stage-3 channels.
        assert_eq!(prunable, 336 + 64);
        // A stage-1 stream channel is produced by conv1 and the three stage-1 conv2s, and it
        // continues (through the shortcut) into stages 2 and 3: 1 + 3 + 3 + 3 producers.
        let g = d.slots[1][0];
        assert_eq!(d.groups[g].producers.len(), 10);
    }
}

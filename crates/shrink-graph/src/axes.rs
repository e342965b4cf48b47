//! Axes mappings: how the index spaces of input and output axes relate. Structured pruning reads
//! only these relations (removing index `i` of one axis removes it from every related axis).

use serde::{Deserialize, Serialize};

/// One axis of one input or output of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Port {
    /// Axis `axis` of input `input`.
    In { input: usize, axis: usize },
    /// Axis `axis` of output `output`.
    Out { output: usize, axis: usize },
}

impl Port {
    /// Axis `axis` of input `input`.
    pub fn input(input: usize, axis: usize) -> Self {
        Port::In { input, axis }
    }
    /// Axis `axis` of output `output`.
    pub fn output(output: usize, axis: usize) -> Self {
        Port::Out { output, axis }
    }
}

/// A relation between axes of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AxisRel {
    /// Index `i` of `a` is index `i` of `b` (element-wise, pass-through, a contracted pair of a
    /// matrix product, a weight's output-channel axis and the output's channel axis).
    Same(Port, Port),
    /// `whole` is the concatenation of `parts` in order (Concat: output = inputs; Split: input =
    /// outputs).
    Concat { whole: Port, parts: Vec<Port> },
    /// `merged` is `split` in row-major order (Reshape/Flatten merging or splitting axes; e.g.
    /// `C` = `[groups, C/groups]` in a channel shuffle, `D` = `[heads, head_dim]` in attention).
    Reshape { merged: Port, split: Vec<Port> },
    /// A grouped convolution: `input` channels are `groups` blocks, each read by the matching
    /// block of `weight_out` (output channels of the weight); the weight's input axis
    /// `weight_in` has one group's width.
    Grouped { input: Port, weight_in: Port, weight_out: Port, groups: usize },
    /// The axis's indices are mixed (a reduction over it, an index-dependent op): pruning must not
    /// remove any index of it.
    Pinned(Port),
}

/// Every axis relation of one node. An axis no relation mentions has its indices mixed by the
/// op (a kernel window, a spatial axis under a convolution): pruning never removes its indices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxesMapping {
    pub rels: Vec<AxisRel>,
}

impl AxesMapping {
    /// No relation.
    pub fn none() -> Self {
        AxesMapping::default()
    }

    /// Add one relation.
    pub fn with(mut self, rel: AxisRel) -> Self {
        self.rels.push(rel);
        self
    }

    /// Element-wise over `inputs` inputs of equal rank `rank` broadcast to output 0: axis `k`
    /// of every input whose size is not a broadcast 1 relates to output axis `k`.
    pub fn elementwise(in_shapes: &[&[crate::Dim]], out_rank: usize) -> Self {
        let mut m = AxesMapping::none();
        for (i, s) in in_shapes.iter().enumerate() {
            let offset = out_rank - s.len().min(out_rank);
            for (k, d) in s.iter().enumerate() {
                if *d != crate::Dim::Fixed(1) {
                    m.rels.push(AxisRel::Same(Port::input(i, k), Port::output(0, k + offset)));
                }
            }
        }
        m
    }
}

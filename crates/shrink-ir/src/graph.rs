//! The layer graph: nodes in topological order, each an [`Op`] with a PyTorch module name.
//!
//! Node 0 is always [`Op::Input`]. Weights are not stored here: each node names the parameters
//! it needs (`{node}.weight`, `{node}.bias`, ...) and the [`crate::ParamStore`] holds them.
use crate::error::{node_err, IrError, Result};
use serde::{Deserialize, Serialize};

/// Index of a node inside [`Graph::nodes`].
pub type NodeId = usize;

/// One layer or tensor operation. Shapes in comments exclude the batch dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// The graph input.
    Input,
    /// `y = x Wᵀ + b`, W: [out, in].
    Linear {
        in_features: usize,
        out_features: usize,
        bias: bool,
    },
    /// 2-D convolution, W: [out, in/groups, kh, kw].
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        groups: usize,
        bias: bool,
    },
    /// Batch normalization over channel dim 1 of a (N,C) or (N,C,H,W) input.
    BatchNorm {
        num_features: usize,
        eps: f64,
        momentum: f64,
    },
    Relu,
    MaxPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// Average pooling; padded zeros count in the average (PyTorch `count_include_pad=True`).
    AvgPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    /// Mean over H and W, keeping (N, C, 1, 1).
    GlobalAvgPool,
    /// Flattens every dim after the batch dim.
    Flatten,
    /// Element-wise sum of two inputs of equal shape (residual connection).
    Add,
    /// Option-A ResNet shortcut: `x[:, :, ::stride, ::stride]` then zero channel padding.
    ShortcutA {
        stride: usize,
        pad_before: usize,
        pad_after: usize,
    },
    /// Dropout with drop probability `p` (identity in eval mode).
    Dropout {
        p: f32,
    },
}

/// Role of a parameter, which decides whether the optimizer trains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParamKind {
    Weight,
    Bias,
    BnWeight,
    BnBias,
    RunningMean,
    RunningVar,
}

impl ParamKind {
    /// Trained by gradient descent (running statistics are not).
    pub fn trainable(self) -> bool {
        !matches!(self, ParamKind::RunningMean | ParamKind::RunningVar)
    }
}

/// A parameter a node needs: PyTorch-style suffix, shape and role.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub suffix: &'static str,
    pub shape: Vec<usize>,
    pub kind: ParamKind,
}

impl Op {
    /// The parameters this op reads, in PyTorch state_dict order.
    pub fn params(&self) -> Vec<ParamSpec> {
        let p = |suffix, shape: Vec<usize>, kind| ParamSpec { suffix, shape, kind };
        match self {
            Op::Linear { in_features, out_features, bias } => {
                let mut v = vec![p("weight", vec![*out_features, *in_features], ParamKind::Weight)];
                if *bias {
                    v.push(p("bias", vec![*out_features], ParamKind::Bias));
                }
                v
            }
            Op::Conv2d { in_channels, out_channels, kernel, groups, bias, .. } => {
                let shape = vec![*out_channels, in_channels / groups, kernel[0], kernel[1]];
                let mut v = vec![p("weight", shape, ParamKind::Weight)];
                if *bias {
                    v.push(p("bias", vec![*out_channels], ParamKind::Bias));
                }
                v
            }
            Op::BatchNorm { num_features: c, .. } => vec![
                p("weight", vec![*c], ParamKind::BnWeight),
                p("bias", vec![*c], ParamKind::BnBias),
                p("running_mean", vec![*c], ParamKind::RunningMean),
                p("running_var", vec![*c], ParamKind::RunningVar),
            ],
            _ => vec![],
        }
    }

    /// Short type name used in tables (`Conv2d`, `Linear`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Linear { .. } => "Linear",
            Op::Conv2d { .. } => "Conv2d",
            Op::BatchNorm { .. } => "BatchNorm",
            Op::Relu => "ReLU",
            Op::MaxPool2d { .. } => "MaxPool2d",
            Op::AvgPool2d { .. } => "AvgPool2d",
            Op::GlobalAvgPool => "GlobalAvgPool",
            Op::Flatten => "Flatten",
            Op::Add => "Add",
            Op::ShortcutA { .. } => "ShortcutA",
            Op::Dropout { .. } => "Dropout",
        }
    }

    /// Number of graph inputs the op consumes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input => 0,
            Op::Add => 2,
            _ => 1,
        }
    }
}

/// A named node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// PyTorch module path, e.g. `layer1.0.conv1`; parameter names are `{name}.{suffix}`.
    pub name: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
}

/// A directed acyclic graph of layers in topological order; the last node is the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

fn out_dim(size: usize, k: usize, s: usize, p: usize, node: &str) -> Result<usize> {
    if s == 0 || k == 0 {
        return Err(node_err(node, "kernel and stride must be positive"));
    }
    if size + 2 * p < k {
        return Err(node_err(node, format!("kernel {k} larger than padded input {size}+2*{p}")));
    }
    Ok((size + 2 * p - k) / s + 1)
}

impl Graph {
    /// A graph holding only the input node.
    pub fn new() -> Self {
        Graph { nodes: vec![Node { name: "input".into(), op: Op::Input, inputs: vec![] }] }
    }

    /// Appends a node and returns its id.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: Vec<NodeId>) -> NodeId {
        self.nodes.push(Node { name: name.into(), op, inputs });
        self.nodes.len() - 1
    }

    /// Id of the output node (the last one).
    pub fn output(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// Finds a node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Checks topology and arity, and returns the per-node output shapes (without batch).
    pub fn infer_shapes(&self, input: &[usize]) -> Result<Vec<Vec<usize>>> {
        if self.nodes.first().map(|n| &n.op) != Some(&Op::Input) {
            return Err(IrError::Invalid("graph must start with an Input node".into()));
        }
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(self.nodes.len());
        for (id, node) in self.nodes.iter().enumerate() {
            let name = node.name.as_str();
            if node.inputs.len() != node.op.arity() {
                return Err(node_err(name, format!("expects {} inputs", node.op.arity())));
            }
            if node.inputs.iter().any(|&i| i >= id) {
                return Err(node_err(name, "inputs must come earlier in the graph"));
            }
            let ins: Vec<&Vec<usize>> = node.inputs.iter().map(|&i| &shapes[i]).collect();
            let chw = |s: &Vec<usize>| -> Result<(usize, usize, usize)> {
                match s.as_slice() {
                    [c, h, w] => Ok((*c, *h, *w)),
                    _ => Err(node_err(name, format!("expects a (C,H,W) input, got {s:?}"))),
                }
            };
            let shape = match &node.op {
                Op::Input => input.to_vec(),
                Op::Linear { in_features, out_features, .. } => {
                    if ins[0].as_slice() != [*in_features] {
                        return Err(node_err(
                            name,
                            format!("expects {in_features} input features, got {:?}", ins[0]),
                        ));
                    }
                    vec![*out_features]
                }
                Op::Conv2d { in_channels, out_channels, kernel, stride, padding, groups, .. } => {
                    let (c, h, w) = chw(ins[0])?;
                    if c != *in_channels {
                        return Err(node_err(name, format!("expects {in_channels} channels, got {c}")));
                    }
                    if *groups == 0 || in_channels % groups != 0 || out_channels % groups != 0 {
                        return Err(node_err(name, format!("groups={groups} must divide channels")));
                    }
                    vec![
                        *out_channels,
                        out_dim(h, kernel[0], stride[0], padding[0], name)?,
                        out_dim(w, kernel[1], stride[1], padding[1], name)?,
                    ]
                }
                Op::BatchNorm { num_features, .. } => {
                    if ins[0].first() != Some(num_features) {
                        return Err(node_err(
                            name,
                            format!("expects {num_features} channels, got {:?}", ins[0]),
                        ));
                    }
                    ins[0].clone()
                }
                Op::MaxPool2d { kernel, stride, padding } | Op::AvgPool2d { kernel, stride, padding } => {
                    let (c, h, w) = chw(ins[0])?;
                    vec![
                        c,
                        out_dim(h, kernel[0], stride[0], padding[0], name)?,
                        out_dim(w, kernel[1], stride[1], padding[1], name)?,
                    ]
                }
                Op::GlobalAvgPool => {
                    let (c, _, _) = chw(ins[0])?;
                    vec![c, 1, 1]
                }
                Op::Flatten => vec![ins[0].iter().product()],
                Op::Add => {
                    if ins[0] != ins[1] {
                        return Err(node_err(name, format!("adds shapes {:?} and {:?}", ins[0], ins[1])));
                    }
                    ins[0].clone()
                }
                Op::ShortcutA { stride, pad_before, pad_after } => {
                    let (c, h, w) = chw(ins[0])?;
                    if *stride == 0 {
                        return Err(node_err(name, "stride must be positive"));
                    }
                    vec![c + pad_before + pad_after, h.div_ceil(*stride), w.div_ceil(*stride)]
                }
                Op::Relu | Op::Dropout { .. } => ins[0].clone(),
            };
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// For each node, the id of the last node that reads it (itself if nobody does).
    pub fn last_uses(&self) -> Vec<NodeId> {
        let mut last: Vec<NodeId> = (0..self.nodes.len()).collect();
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last[i] = last[i].max(id);
            }
        }
        last
    }
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

//! Conversion of a layer [`Model`] into the open graph IR ([`shrink_graph::Graph`]): each layer
//! becomes one or two IR nodes, weights become named constants with their PyTorch names, as the
//! forward pass sees them (masks and weight fake-quantization applied). The batch dimension is
//! the symbol `N`.

use crate::error::{IrError, Result};
use crate::graph::Op as L;
use crate::model::Model;
use shrink_graph::ops::activation::{Unary, UnaryKind};
use shrink_graph::ops::binary::{Binary, BinaryKind};
use shrink_graph::ops::combine::{Identity, Pad, PadMode, Slice};
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::ops::norm::BatchNorm;
use shrink_graph::ops::pool::{GlobalPool, Pool, PoolKind};
use shrink_graph::ops::shape::Flatten;
use shrink_graph::{DType, Dim, Fact, Graph, Op, Tensor, ValueId};

fn gerr(e: shrink_graph::GraphError) -> IrError {
    IrError::Invalid(e.to_string())
}

impl Model {
    /// The model as an open-IR graph with one input `input` of shape `[N, ...input_shape]`.
    /// Activation quantizers are not converted yet (an error names the first one).
    pub fn to_graph(&self) -> Result<Graph> {
        if let Some(node) = self.act_quant.keys().next() {
            return Err(IrError::Invalid(format!(
                "node `{node}` has an activation quantizer, which the graph IR does not express yet"
            )));
        }
        let mut g = Graph::new();
        let mut out: Vec<ValueId> = Vec::with_capacity(self.graph.nodes.len());
        let shape: Vec<Dim> = [Dim::Sym("N".into())]
            .into_iter()
            .chain(self.meta.input_shape.iter().map(|&d| Dim::Fixed(d)))
            .collect();
        for node in &self.graph.nodes {
            let name = node.name.as_str();
            let x = node.inputs.first().map(|&i| out[i]);
            let konst = |g: &mut Graph, suffix: &str| -> Result<ValueId> {
                let key = format!("{name}.{suffix}");
                let t = self.effective_param(&key)?;
                let dims = t.dims().to_vec();
                let data = t.flatten_all()?.to_vec1::<f32>()?;
                g.add_const(&key, Tensor::f32(dims, data)).map_err(gerr)
            };
            let one = |g: &mut Graph, op: Op, ins: &[ValueId]| -> Result<ValueId> {
                Ok(g.add_node(name, op, ins, &[name.to_string()]).map_err(gerr)?[0])
            };
            let x0 = || x.ok_or_else(|| IrError::Invalid(format!("node `{name}` has no input")));
            let v = match &node.op {
                L::Input => g.add_input(name, Fact::dims(DType::F32, shape.clone())).map_err(gerr)?,
                L::Linear { bias, .. } => {
                    let mut ins = vec![x0()?, konst(&mut g, "weight")?];
                    if *bias {
                        ins.push(konst(&mut g, "bias")?);
                    }
                    let op = Gemm { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
                    one(&mut g, op.into(), &ins)?
                }
                L::Conv2d { stride, padding, groups, bias, .. } => {
                    let mut ins = vec![x0()?, konst(&mut g, "weight")?];
                    if *bias {
                        ins.push(konst(&mut g, "bias")?);
                    }
                    let op = Conv {
                        strides: stride.to_vec(),
                        pads: vec![padding[0], padding[1], padding[0], padding[1]],
                        dilations: vec![1, 1],
                        groups: *groups,
                    };
                    one(&mut g, op.into(), &ins)?
                }
                L::BatchNorm { eps, .. } => {
                    let mut ins = vec![x0()?];
                    for s in ["weight", "bias", "running_mean", "running_var"] {
                        ins.push(konst(&mut g, s)?);
                    }
                    one(&mut g, BatchNorm { epsilon: *eps as f32 }.into(), &ins)?
                }
                L::Relu => one(&mut g, Unary { kind: UnaryKind::Relu }.into(), &[x0()?])?,
                L::MaxPool2d { kernel, stride, padding } | L::AvgPool2d { kernel, stride, padding } => {
                    let kind =
                        if matches!(node.op, L::MaxPool2d { .. }) { PoolKind::Max } else { PoolKind::Avg };
                    let op = Pool {
                        kind,
                        kernel: kernel.to_vec(),
                        strides: stride.to_vec(),
                        pads: vec![padding[0], padding[1], padding[0], padding[1]],
                        dilations: vec![1, 1],
                        ceil_mode: false,
                        count_include_pad: true,
                    };
                    one(&mut g, op.into(), &[x0()?])?
                }
                L::GlobalAvgPool => one(&mut g, GlobalPool { kind: PoolKind::Avg }.into(), &[x0()?])?,
                L::Flatten => one(&mut g, Flatten { axis: 1 }.into(), &[x0()?])?,
                L::Add => {
                    let b = out[node.inputs[1]];
                    one(&mut g, Binary { kind: BinaryKind::Add }.into(), &[x0()?, b])?
                }
                L::ShortcutA { stride, pad_before, pad_after } => {
                    let s = *stride as i64;
                    let slice = Slice {
                        starts: vec![0, 0],
                        ends: vec![i64::MAX, i64::MAX],
                        axes: vec![2, 3],
                        steps: vec![s, s],
                    };
                    let sub = g
                        .add_node(&format!("{name}.slice"), slice, &[x0()?], &[format!("{name}.slice")])
                        .map_err(gerr)?[0];
                    let (b, a) = (*pad_before as i64, *pad_after as i64);
                    let pad = Pad { pads: vec![0, b, 0, 0, 0, a, 0, 0], mode: PadMode::Constant, value: 0.0 };
                    one(&mut g, pad.into(), &[sub])?
                }
                L::Dropout { .. } => one(&mut g, Identity {}.into(), &[x0()?])?,
            };
            out.push(v);
        }
        g.set_outputs(vec![out[self.graph.output()]]);
        Ok(g)
    }
}

//! Conversion of a layer [`Model`] into the open graph IR ([`shrink_graph::Graph`]): each layer
//! becomes one or two IR nodes, weights become named constants with their PyTorch names, as the
//! forward pass sees them (masks and weight fake-quantization applied). An activation quantizer
//! (QAT, LSQ, calibration) becomes standard ONNX nodes after its layer:
//! `[Sub offset] → [Clip] → QuantizeLinear(u8) → DequantizeLinear → [Add offset]`, which
//! computes `clamp(round((x − off)/s), qmin, qmax)·s + off` exactly as the fake quantizer does
//! (the Clip narrows the u8 range to `qmin..=qmax` for fewer than 8 bits). The batch dimension is
//! the symbol `N`.

use crate::error::{IrError, Result};
use crate::graph::Op as L;
use crate::model::Model;
use crate::params::QuantSlot;
use shrink_graph::ops::activation::Clip;
use shrink_graph::ops::activation::{Unary, UnaryKind};
use shrink_graph::ops::binary::{Binary, BinaryKind};
use shrink_graph::ops::combine::{Identity, Pad, PadMode, Slice};
use shrink_graph::ops::conv::Conv;
use shrink_graph::ops::matmul::Gemm;
use shrink_graph::ops::norm::BatchNorm;
use shrink_graph::ops::pool::{GlobalPool, Pool, PoolKind};
use shrink_graph::ops::quant::{DequantizeLinear, QuantizeLinear};
use shrink_graph::ops::shape::Flatten;
use shrink_graph::{DType, Dim, Fact, Graph, Op, Tensor, ValueId};

fn gerr(e: shrink_graph::GraphError) -> IrError {
    IrError::Invalid(e.to_string())
}

impl Model {
    /// The model as an open-IR graph with one input `input` of shape `[N, ...input_shape]`.
    /// Activation quantizers become Q/DQ nodes (see the module docs); one that 8-bit codes
    /// cannot hold (more than 256 levels, non-integer bounds) is an error naming its node.
    pub fn to_graph(&self) -> Result<Graph> {
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
            let v = match self.act_quant.get(name) {
                Some(slot) => act_quant_nodes(&mut g, name, v, slot)?,
                None => v,
            };
            out.push(v);
        }
        g.set_outputs(vec![out[self.graph.output()]]);
        Ok(g)
    }
}

/// The Q/DQ nodes of the per-tensor activation quantizer `slot` on value `x` of node `name`;
/// returns the dequantized value.
fn act_quant_nodes(g: &mut Graph, name: &str, x: ValueId, slot: &QuantSlot) -> Result<ValueId> {
    let bad = |why: &str| IrError::Invalid(format!("activation quantizer of node `{name}`: {why}"));
    let (Some(&s), Some(&off)) = (slot.scales.first(), slot.offsets.first()) else {
        return Err(bad("no scale"));
    };
    if slot.scales.len() != 1 || slot.offsets.len() != 1 {
        return Err(bad("only per-tensor activation quantizers convert"));
    }
    if s == 0.0 {
        return Ok(x); // the fake quantizer passes values through at scale 0
    }
    let (lo, hi) = (slot.qmin, slot.qmax);
    let integral = lo.fract() == 0.0 && hi.fract() == 0.0;
    if !(s.is_finite() && s > 0.0 && integral && (-255.0..=0.0).contains(&lo) && lo < hi && hi - lo <= 255.0)
    {
        return Err(bad(&format!(
            "scale {s}, range {lo}..={hi}: Q/DQ needs a positive scale and at most 256 integer levels including 0"
        )));
    }
    let mut n = 0;
    let mut node = |g: &mut Graph, op: Op, ins: &[ValueId]| -> Result<ValueId> {
        n += 1;
        let out = format!("{name}.act_quant.{n}");
        Ok(g.add_node(&out, op, ins, std::slice::from_ref(&out)).map_err(gerr)?[0])
    };
    let konst = |g: &mut Graph, suffix: &str, t: Tensor| -> Result<ValueId> {
        g.add_const(&format!("{name}.act_quant.{suffix}"), t).map_err(gerr)
    };
    let mut v = x;
    if off != 0.0 {
        let o = konst(g, "offset", Tensor::f32(vec![], vec![off]))?;
        v = node(g, Binary { kind: BinaryKind::Sub }.into(), &[v, o])?;
    }
    if hi - lo < 255.0 {
        v = node(g, Clip { min: Some(lo * s), max: Some(hi * s) }.into(), &[v])?;
    }
    // u8 codes with zero point −qmin hold any range of at most 256 levels.
    let zp = (-lo) as u8;
    let scale = konst(g, "scale", Tensor::f32(vec![], vec![s]))?;
    let zero = konst(g, "zero_point", Tensor::u8(vec![], vec![zp]))?;
    let q = QuantizeLinear { axis: 1, dtype: DType::U8 };
    v = node(g, q.into(), &[v, scale, zero])?;
    v = node(g, DequantizeLinear { axis: 1 }.into(), &[v, scale, zero])?;
    if off != 0.0 {
        let o = konst(g, "offset_back", Tensor::f32(vec![], vec![off]))?;
        v = node(g, Binary { kind: BinaryKind::Add }.into(), &[v, o])?;
    }
    Ok(v)
}

//! Normalizations: BatchNorm (any rank, inference), LayerNorm, GroupNorm, InstanceNorm.

use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{broadcast_shapes, fmt_shape, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Inference batch norm over axis 1; inputs `[x, scale, bias, mean, var]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub epsilon: f32,
}

/// Normalize over axes `axis..`; inputs `[x, scale, bias?]` (scale and bias broadcast to the
/// normalized axes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNorm {
    pub axis: i64,
    pub epsilon: f32,
}

/// Normalize each of `groups` channel groups; inputs `[x, scale (C), bias (C)]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupNorm {
    pub groups: usize,
    pub epsilon: f32,
}

/// Normalize each channel of each example over its spatial axes; inputs `[x, scale, bias]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceNorm {
    pub epsilon: f32,
}

fn check_f32(ins: &[InFact]) -> OpResult<()> {
    for (k, i) in ins.iter().enumerate() {
        if i.fact.dtype != DType::F32 {
            return Err(OpError::Shape(format!("input {k} must be f32, got {:?}", i.fact.dtype)));
        }
    }
    Ok(())
}

fn check_epsilon(eps: f32) -> OpResult<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(OpError::Attr { name: "epsilon", msg: format!("{eps} must be finite and ≥ 0") });
    }
    Ok(())
}

/// x of rank ≥ `min_rank` whose channel axis 1 is fixed; returns the channel count.
fn channel_input(x: &Fact, min_rank: usize) -> OpResult<usize> {
    if x.rank() < min_rank {
        return Err(OpError::Shape(format!(
            "x {} must have at least {min_rank} axes (N, C, …)",
            fmt_shape(&x.shape)
        )));
    }
    x.shape[1]
        .fixed()
        .ok_or_else(|| OpError::Shape(format!("x {} needs a fixed channel count", fmt_shape(&x.shape))))
}

/// Inputs `from..` must each be `[c]`.
fn per_channel(ins: &[InFact], from: usize, c: usize, names: &[&str]) -> OpResult<()> {
    for (k, i) in ins.iter().enumerate().skip(from) {
        if i.fact.shape != [Dim::Fixed(c)] {
            let name = names.get(k - from).copied().unwrap_or("parameter");
            return Err(OpError::Shape(format!(
                "{name} {} must be [{c}] (one per channel)",
                fmt_shape(&i.fact.shape)
            )));
        }
    }
    Ok(())
}

/// x ↔ y on every axis, each per-channel parameter's axis 0 ↔ the channel axis of x and y.
fn channel_axes(ins: &[&Fact], params: std::ops::Range<usize>) -> AxesMapping {
    let mut m = AxesMapping::none();
    for k in 0..ins[0].rank() {
        m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
    }
    for p in params.filter(|&p| p < ins.len()) {
        m.rels.push(AxisRel::Same(Port::input(p, 0), Port::input(0, 1)));
        m.rels.push(AxisRel::Same(Port::input(p, 0), Port::output(0, 1)));
    }
    m
}

impl OpDef for BatchNorm {
    fn name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 5, 5)?;
        check_f32(ins)?;
        check_epsilon(self.epsilon)?;
        let c = channel_input(ins[0].fact, 2)?;
        per_channel(ins, 1, c, &["scale", "bias", "mean", "var"])?;
        Ok(vec![ins[0].fact.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        channel_axes(ins, 1..5)
    }
}

impl LayerNorm {
    fn norm_axis(&self, x: &Fact) -> OpResult<usize> {
        x.axis(self.axis).map_err(|e| OpError::Attr { name: "axis", msg: e.to_string() })
    }
}

impl OpDef for LayerNorm {
    fn name(&self) -> &'static str {
        "LayerNormalization"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 2, 3)?;
        check_f32(ins)?;
        check_epsilon(self.epsilon)?;
        let x = ins[0].fact;
        let axis = self.norm_axis(x)?;
        let normalized = &x.shape[axis..];
        if let Some(d) = normalized.iter().find(|d| d.fixed().is_none()) {
            return Err(OpError::Symbolic(d.to_string()));
        }
        for (k, p) in ins.iter().enumerate().skip(1) {
            let s = &p.fact.shape;
            let ok = s.len() <= normalized.len()
                && broadcast_shapes(&[normalized, s]).map(|b| b == normalized).unwrap_or(false);
            if !ok {
                let name = if k == 1 { "scale" } else { "bias" };
                return Err(OpError::Shape(format!(
                    "{name} {} does not broadcast to the normalized axes {}",
                    fmt_shape(s),
                    fmt_shape(normalized)
                )));
            }
        }
        Ok(vec![x.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        let x = ins[0];
        let mut m = AxesMapping::none();
        for k in 0..x.rank() {
            m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
        }
        let Ok(axis) = self.norm_axis(x) else { return m };
        // The statistics mix every index of the normalized axes.
        for k in axis..x.rank() {
            m.rels.push(AxisRel::Pinned(Port::input(0, k)));
        }
        for (p, f) in ins.iter().enumerate().skip(1) {
            let off = x.rank() - f.rank();
            for (k, d) in f.shape.iter().enumerate() {
                if *d != Dim::Fixed(1) {
                    m.rels.push(AxisRel::Same(Port::input(p, k), Port::output(0, off + k)));
                }
            }
        }
        m
    }
}

impl OpDef for GroupNorm {
    fn name(&self) -> &'static str {
        "GroupNormalization"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 3, 3)?;
        check_f32(ins)?;
        check_epsilon(self.epsilon)?;
        let c = channel_input(ins[0].fact, 2)?;
        if self.groups == 0 || c % self.groups != 0 {
            return Err(OpError::Attr {
                name: "num_groups",
                msg: format!("{} does not divide the {c} channels", self.groups),
            });
        }
        per_channel(ins, 1, c, &["scale", "bias"])?;
        Ok(vec![ins[0].fact.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        // Group statistics mix the channels of a group and every spatial position.
        let mut m = channel_axes(ins, 1..3);
        for k in 1..ins[0].rank() {
            m.rels.push(AxisRel::Pinned(Port::input(0, k)));
        }
        m
    }
}

impl OpDef for InstanceNorm {
    fn name(&self) -> &'static str {
        "InstanceNormalization"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        check_arity(ins, 3, 3)?;
        check_f32(ins)?;
        check_epsilon(self.epsilon)?;
        let c = channel_input(ins[0].fact, 3)?;
        per_channel(ins, 1, c, &["scale", "bias"])?;
        Ok(vec![ins[0].fact.clone()])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        // Channels are independent; the statistics mix the spatial positions.
        let mut m = channel_axes(ins, 1..3);
        for k in 2..ins[0].rank() {
            m.rels.push(AxisRel::Pinned(Port::input(0, k)));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }
    fn p(c: usize) -> Fact {
        Fact::new(DType::F32, &[c])
    }

    #[test]
    fn batch_norm_any_rank_with_symbolic_batch() {
        let x = Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(3)]);
        let pc = p(3);
        let out =
            BatchNorm { epsilon: 1e-5 }.infer(&[inf(&x), inf(&pc), inf(&pc), inf(&pc), inf(&pc)]).unwrap();
        assert_eq!(out[0], x);
        let m = BatchNorm { epsilon: 1e-5 }.axes(&[&x, &pc, &pc, &pc, &pc], &[&x]);
        assert!(m.rels.contains(&AxisRel::Same(Port::input(4, 0), Port::output(0, 1))));
        let e = BatchNorm { epsilon: 1e-5 }
            .infer(&[inf(&x), inf(&pc), inf(&p(4)), inf(&pc), inf(&pc)])
            .unwrap_err();
        assert!(e.to_string().contains("bias [4]"), "{e}");
    }

    #[test]
    fn layer_norm_checks_axis_and_scale() {
        let x = Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(5), Dim::Fixed(8)]);
        let s = p(8);
        let op = LayerNorm { axis: -1, epsilon: 1e-5 };
        assert_eq!(op.infer(&[inf(&x), inf(&s), inf(&s)]).unwrap()[0], x);
        assert!(op.axes(&[&x, &s], &[&x]).rels.contains(&AxisRel::Pinned(Port::input(0, 2))));
        let op1 = LayerNorm { axis: 1, epsilon: 1e-5 };
        assert!(op1.infer(&[inf(&x), inf(&p(5))]).unwrap_err().to_string().contains("scale"));
        let e = LayerNorm { axis: 3, epsilon: 1e-5 }.infer(&[inf(&x), inf(&s)]).unwrap_err();
        assert!(e.to_string().contains("axis"), "{e}");
        let e = LayerNorm { axis: 0, epsilon: 1e-5 }.infer(&[inf(&x), inf(&s)]).unwrap_err();
        assert!(matches!(e, OpError::Symbolic(_)), "{e}");
    }

    #[test]
    fn group_and_instance_norm_check_channels() {
        let x = Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(6), Dim::Fixed(4)]);
        let s = p(6);
        assert_eq!(GroupNorm { groups: 3, epsilon: 1e-5 }.infer(&[inf(&x), inf(&s), inf(&s)]).unwrap()[0], x);
        let e = GroupNorm { groups: 4, epsilon: 1e-5 }.infer(&[inf(&x), inf(&s), inf(&s)]).unwrap_err();
        assert!(e.to_string().contains("num_groups"), "{e}");
        assert_eq!(InstanceNorm { epsilon: 1e-5 }.infer(&[inf(&x), inf(&s), inf(&s)]).unwrap()[0], x);
        let x2 = Fact::new(DType::F32, &[2, 6]);
        assert!(InstanceNorm { epsilon: 1e-5 }.infer(&[inf(&x2), inf(&s), inf(&s)]).is_err());
    }
}

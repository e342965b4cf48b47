//! Convolutions: Conv (1-D/2-D/N-D, groups, dilation, asymmetric pads) and ConvTranspose.

use super::{check_arity, per_example_volume, Cost, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{fmt_shape, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Convolution; inputs `[x (N,C,spatial…), weight (M, C/groups, kernel…), bias (M)?]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    pub strides: Vec<usize>,
    /// Begin pads of every spatial axis, then end pads.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub groups: usize,
}

/// Transposed convolution; inputs `[x (N,C,spatial…), weight (C, M/groups, kernel…), bias (M)?]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvTranspose {
    pub strides: Vec<usize>,
    /// Begin pads of every spatial axis, then end pads (cropped from the full output).
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub groups: usize,
    /// Extra size added at the end of each spatial axis.
    pub output_padding: Vec<usize>,
}

/// Check that a per-spatial-axis attribute has `n` entries (`2n` for pads) and no zero where
/// zero is meaningless.
pub(crate) fn check_spatial_attr(name: &'static str, v: &[usize], n: usize, nonzero: bool) -> OpResult<()> {
    if v.len() != n {
        return Err(OpError::Attr {
            name,
            msg: format!(
                "has {} entries, the input has {} spatial axes",
                v.len(),
                n / if name == "pads" { 2 } else { 1 }
            ),
        });
    }
    if nonzero && v.contains(&0) {
        return Err(OpError::Attr { name, msg: format!("{v:?} has a zero entry") });
    }
    Ok(())
}

/// Output size of a windowed op along one axis: `(in + pads − dilated kernel) / stride + 1`,
/// rounded down or up (`ceil`); ceil mode never starts a window inside the end padding only.
pub fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    pad_begin: usize,
    pad_end: usize,
    dilation: usize,
    ceil: bool,
) -> OpResult<usize> {
    let span = dilation * (kernel.max(1) - 1) + 1;
    let padded = input + pad_begin + pad_end;
    if padded < span {
        return Err(OpError::Shape(format!(
            "the window (dilated size {span}) is larger than the padded input ({padded})"
        )));
    }
    let room = padded - span;
    let mut out = if ceil { room.div_ceil(stride) + 1 } else { room / stride + 1 };
    // A last window that would start in the end padding is dropped (ONNX / PyTorch rule).
    if ceil && out > 1 && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    Ok(out)
}

/// The fixed sizes of `fact`'s axes `from..`, or an error naming what they are.
fn fixed_tail(fact: &Fact, from: usize, what: &str) -> OpResult<Vec<usize>> {
    fact.shape[from..]
        .iter()
        .map(|d| {
            d.fixed()
                .ok_or_else(|| OpError::Shape(format!("{what} {} needs fixed sizes", fmt_shape(&fact.shape))))
        })
        .collect()
}

/// Checks shared by Conv and ConvTranspose: dtypes, ranks, attribute lengths; returns the
/// number of spatial axes and the weight's fixed shape.
fn check_conv_inputs(
    ins: &[InFact],
    strides: &[usize],
    pads: &[usize],
    dilations: &[usize],
    groups: usize,
) -> OpResult<(usize, Vec<usize>)> {
    check_arity(ins, 2, 3)?;
    for (k, i) in ins.iter().enumerate() {
        if i.fact.dtype != DType::F32 {
            return Err(OpError::Shape(format!("input {k} must be f32, got {:?}", i.fact.dtype)));
        }
    }
    let (x, w) = (ins[0].fact, ins[1].fact);
    if x.rank() < 3 {
        return Err(OpError::Shape(format!("x must be (N, C, spatial…), got {}", fmt_shape(&x.shape))));
    }
    if w.rank() != x.rank() {
        return Err(OpError::Shape(format!(
            "weight {} must have the rank of x {}",
            fmt_shape(&w.shape),
            fmt_shape(&x.shape)
        )));
    }
    let n = x.rank() - 2;
    if groups == 0 {
        return Err(OpError::Attr { name: "group", msg: "must be at least 1".into() });
    }
    check_spatial_attr("strides", strides, n, true)?;
    check_spatial_attr("pads", pads, 2 * n, false)?;
    check_spatial_attr("dilations", dilations, n, true)?;
    let ws = fixed_tail(w, 0, "weight")?;
    Ok((n, ws))
}

fn check_bias(ins: &[InFact], channels: usize) -> OpResult<()> {
    if let Some(b) = ins.get(2) {
        if b.fact.shape != [Dim::Fixed(channels)] {
            return Err(OpError::Shape(format!("bias {} must be [{channels}]", fmt_shape(&b.fact.shape))));
        }
    }
    Ok(())
}

/// The channel count of x, which must be fixed.
fn channels(x: &Fact) -> OpResult<usize> {
    x.shape[1]
        .fixed()
        .ok_or_else(|| OpError::Shape(format!("x {} needs a fixed channel count", fmt_shape(&x.shape))))
}

/// Relations shared by both convolutions: batch, output channels, input channels.
fn conv_axes(
    ins: &[&Fact],
    w_out_axis: usize,
    w_in_axis: usize,
    groups: usize,
    transposed: bool,
) -> AxesMapping {
    let mut m = AxesMapping::none().with(AxisRel::Same(Port::input(0, 0), Port::output(0, 0)));
    if !transposed {
        m = m.with(AxisRel::Same(Port::input(1, w_out_axis), Port::output(0, 1)));
        m = m.with(if groups == 1 {
            AxisRel::Same(Port::input(0, 1), Port::input(1, w_in_axis))
        } else {
            AxisRel::Grouped {
                input: Port::input(0, 1),
                weight_in: Port::input(1, w_in_axis),
                weight_out: Port::input(1, w_out_axis),
                groups,
            }
        });
    } else {
        // Weight (C, M/groups, k…): axis 0 is the input channel axis, axis 1 one group's outputs.
        m = m.with(AxisRel::Same(Port::input(0, 1), Port::input(1, w_in_axis)));
        m = m.with(if groups == 1 {
            AxisRel::Same(Port::input(1, w_out_axis), Port::output(0, 1))
        } else {
            AxisRel::Grouped {
                input: Port::output(0, 1),
                weight_in: Port::input(1, w_out_axis),
                weight_out: Port::input(1, w_in_axis),
                groups,
            }
        });
    }
    if ins.len() > 2 {
        m = m.with(AxisRel::Same(Port::input(2, 0), Port::output(0, 1)));
    }
    m
}

impl OpDef for Conv {
    fn name(&self) -> &'static str {
        "Conv"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        let (n, ws) = check_conv_inputs(ins, &self.strides, &self.pads, &self.dilations, self.groups)?;
        let x = ins[0].fact;
        let c = channels(x)?;
        if c % self.groups != 0 || ws[0] % self.groups != 0 {
            return Err(OpError::Attr {
                name: "group",
                msg: format!("{} does not divide the {c} input and {} output channels", self.groups, ws[0]),
            });
        }
        if ws[1] * self.groups != c {
            return Err(OpError::Shape(format!(
                "weight {ws:?} expects {} input channels ({} per group × {} groups), x has {c}",
                ws[1] * self.groups,
                ws[1],
                self.groups
            )));
        }
        check_bias(ins, ws[0])?;
        let mut shape = vec![x.shape[0].clone(), Dim::Fixed(ws[0])];
        for a in 0..n {
            let i = x.shape[2 + a].to_usize()?;
            let o = window_out(
                i,
                ws[2 + a],
                self.strides[a],
                self.pads[a],
                self.pads[n + a],
                self.dilations[a],
                false,
            )?;
            shape.push(Dim::Fixed(o));
        }
        Ok(vec![Fact::dims(DType::F32, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        conv_axes(ins, 0, 1, self.groups, false)
    }
    fn cost(&self, ins: &[&Fact], outs: &[&Fact]) -> Cost {
        // Every output element reads C/groups × kernel inputs.
        let per_out: u64 = ins[1].shape[1..].iter().map(|d| d.fixed().unwrap_or(1) as u64).product();
        Cost { macs: per_example_volume(outs[0]) * per_out }
    }
}

impl OpDef for ConvTranspose {
    fn name(&self) -> &'static str {
        "ConvTranspose"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        let (n, ws) = check_conv_inputs(ins, &self.strides, &self.pads, &self.dilations, self.groups)?;
        check_spatial_attr("output_padding", &self.output_padding, n, false)?;
        let x = ins[0].fact;
        let c = channels(x)?;
        if ws[0] != c {
            return Err(OpError::Shape(format!("weight {ws:?} expects {} input channels, x has {c}", ws[0])));
        }
        if c % self.groups != 0 {
            return Err(OpError::Attr {
                name: "group",
                msg: format!("{} does not divide the {c} input channels", self.groups),
            });
        }
        let m = ws[1] * self.groups;
        check_bias(ins, m)?;
        let mut shape = vec![x.shape[0].clone(), Dim::Fixed(m)];
        for a in 0..n {
            let i = x.shape[2 + a].to_usize()?;
            if i == 0 {
                return Err(OpError::Shape(format!("x {} has an empty spatial axis", fmt_shape(&x.shape))));
            }
            let full = self.strides[a] * (i - 1)
                + self.output_padding[a]
                + self.dilations[a] * (ws[2 + a].max(1) - 1)
                + 1;
            let crop = self.pads[a] + self.pads[n + a];
            if crop >= full {
                return Err(OpError::Shape(format!(
                    "pads {:?} crop the whole output (size {full}) of spatial axis {a}",
                    self.pads
                )));
            }
            shape.push(Dim::Fixed(full - crop));
        }
        Ok(vec![Fact::dims(DType::F32, shape)])
    }
    fn axes(&self, ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        conv_axes(ins, 1, 0, self.groups, true)
    }
    fn cost(&self, ins: &[&Fact], _outs: &[&Fact]) -> Cost {
        // Every input element is scattered to M/groups × kernel outputs.
        let per_in: u64 = ins[1].shape[1..].iter().map(|d| d.fixed().unwrap_or(1) as u64).product();
        Cost { macs: per_example_volume(ins[0]) * per_in }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(shape: &[usize]) -> Fact {
        Fact::new(DType::F32, shape)
    }
    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }
    fn conv(groups: usize) -> Conv {
        Conv { strides: vec![2, 1], pads: vec![1, 0, 1, 2], dilations: vec![1, 2], groups }
    }

    #[test]
    fn conv_infers_symbolic_batch_and_asymmetric_pads() {
        let x =
            Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(4), Dim::Fixed(9), Dim::Fixed(8)]);
        let w = f(&[6, 2, 3, 3]);
        let out = conv(2).infer(&[inf(&x), inf(&w)]).unwrap();
        // H: (9 + 2 - 3) / 2 + 1 = 5; W: (8 + 2 - 5) / 1 + 1 = 6.
        assert_eq!(out[0].shape, vec![Dim::Sym("N".into()), Dim::Fixed(6), Dim::Fixed(5), Dim::Fixed(6)]);
        let c = conv(2).cost(&[&x, &w], &[&out[0]]);
        assert_eq!(c.macs, 6 * 5 * 6 * 2 * 9);
        let m = conv(2).axes(&[&x, &w], &[&out[0]]);
        assert!(m.rels.iter().any(|r| matches!(r, AxisRel::Grouped { groups: 2, .. })));
        assert!(m.rels.contains(&AxisRel::Same(Port::input(1, 0), Port::output(0, 1))));
    }

    #[test]
    fn conv_rejects_bad_channels_and_attrs() {
        let x = f(&[1, 4, 9, 8]);
        let e = conv(1).infer(&[inf(&x), inf(&f(&[6, 3, 3, 3]))]).unwrap_err();
        assert!(e.to_string().contains("input channels"), "{e}");
        let e = conv(3).infer(&[inf(&x), inf(&f(&[6, 2, 3, 3]))]).unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        let bad = Conv { strides: vec![1], ..conv(1) };
        assert!(bad.infer(&[inf(&x), inf(&f(&[6, 4, 3, 3]))]).unwrap_err().to_string().contains("strides"));
        let e = conv(1).infer(&[inf(&x), inf(&f(&[6, 4, 3, 3])), inf(&f(&[5]))]).unwrap_err();
        assert!(e.to_string().contains("bias"), "{e}");
    }

    #[test]
    fn conv_transpose_infers_output_padding() {
        let x = Fact::dims(DType::F32, vec![Dim::Sym("N".into()), Dim::Fixed(4), Dim::Fixed(5)]);
        let w = f(&[4, 3, 3]);
        let op = ConvTranspose {
            strides: vec![2],
            pads: vec![1, 0],
            dilations: vec![1],
            groups: 2,
            output_padding: vec![1],
        };
        let out = op.infer(&[inf(&x), inf(&w)]).unwrap();
        // 2·4 + 1 + 2 + 1 − 1 = 11 output positions, 3·2 channels.
        assert_eq!(out[0].shape, vec![Dim::Sym("N".into()), Dim::Fixed(6), Dim::Fixed(11)]);
        assert!(op.infer(&[inf(&f(&[1, 3, 5])), inf(&w)]).is_err());
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_padding() {
        assert_eq!(window_out(5, 2, 2, 0, 0, 1, false).unwrap(), 2);
        assert_eq!(window_out(5, 2, 2, 0, 0, 1, true).unwrap(), 3);
        assert_eq!(window_out(4, 2, 2, 1, 1, 1, true).unwrap(), 3);
        assert!(window_out(2, 5, 1, 0, 0, 1, false).is_err());
    }
}

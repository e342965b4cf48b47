//! Pooling and resampling: MaxPool/AveragePool, GlobalAveragePool/GlobalMaxPool, Resize (nearest).

use super::conv::{check_spatial_attr, window_out};
use super::{check_arity, InFact, OpDef};
use crate::axes::{AxesMapping, AxisRel, Port};
use crate::error::{OpError, OpResult};
use crate::fact::{fmt_shape, DType, Dim, Fact};
use serde::{Deserialize, Serialize};

/// Max or average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Windowed pooling over the spatial axes of `x (N, C, spatial…)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    /// Begin pads of every spatial axis, then end pads.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub ceil_mode: bool,
    /// Average: divide by the whole window (pads included) rather than its valid part.
    pub count_include_pad: bool,
}

/// Pooling over all spatial axes (kept as size 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalPool {
    pub kind: PoolKind,
}

/// How output coordinates map to input coordinates (ONNX `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CoordMode {
    HalfPixel,
    /// ONNX `half_pixel_symmetric` (opset 19).
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

/// Rounding of the nearest-neighbour index (ONNX `nearest_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NearestMode {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample (opsets 7–9) and Resize-10: floor when enlarging an axis, ceil when shrinking it.
    Legacy,
}

/// Nearest-neighbour resize. `scales` (one per axis) map output to input coordinates; the output
/// size is `floor(in · scale)` unless `sizes` is given (then the importer sets `scales` to
/// `size / in`, or to what `keep_aspect_ratio_policy` chose). A symbolic size must be the
/// input's own dimension (an unchanged batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    pub scales: Vec<f32>,
    pub sizes: Option<Vec<Dim>>,
    pub coord: CoordMode,
    pub nearest: NearestMode,
}

fn check_x<'a>(ins: &[InFact<'a>], min_rank: usize) -> OpResult<&'a Fact> {
    check_arity(ins, 1, 1)?;
    let x = ins[0].fact;
    if x.dtype != DType::F32 {
        return Err(OpError::Shape(format!("x must be f32, got {:?}", x.dtype)));
    }
    if x.rank() < min_rank {
        return Err(OpError::Shape(format!("x {} must be (N, C, spatial…)", fmt_shape(&x.shape))));
    }
    Ok(x)
}

/// Batch and channel axes pass through; spatial axes mix their indices.
fn batch_channel_axes() -> AxesMapping {
    AxesMapping::none()
        .with(AxisRel::Same(Port::input(0, 0), Port::output(0, 0)))
        .with(AxisRel::Same(Port::input(0, 1), Port::output(0, 1)))
}

impl OpDef for Pool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AveragePool",
        }
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        let x = check_x(ins, 3)?;
        let n = x.rank() - 2;
        check_spatial_attr("kernel_shape", &self.kernel, n, true)?;
        check_spatial_attr("strides", &self.strides, n, true)?;
        check_spatial_attr("pads", &self.pads, 2 * n, false)?;
        check_spatial_attr("dilations", &self.dilations, n, true)?;
        for a in 0..n {
            if self.pads[a] >= self.kernel[a] || self.pads[n + a] >= self.kernel[a] {
                return Err(OpError::Attr {
                    name: "pads",
                    msg: format!("{:?} must be smaller than the kernel {:?}", self.pads, self.kernel),
                });
            }
        }
        let mut shape = x.shape[..2].to_vec();
        for a in 0..n {
            let i = x.shape[2 + a].to_usize()?;
            let o = window_out(
                i,
                self.kernel[a],
                self.strides[a],
                self.pads[a],
                self.pads[n + a],
                self.dilations[a],
                self.ceil_mode,
            )?;
            shape.push(Dim::Fixed(o));
        }
        Ok(vec![Fact::dims(DType::F32, shape)])
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        batch_channel_axes()
    }
}

impl OpDef for GlobalPool {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPool",
            PoolKind::Avg => "GlobalAveragePool",
        }
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        let x = check_x(ins, 3)?;
        let mut shape = x.shape[..2].to_vec();
        for d in &x.shape[2..] {
            if d.fixed() == Some(0) {
                return Err(OpError::Shape(format!("x {} has an empty spatial axis", fmt_shape(&x.shape))));
            }
            shape.push(Dim::Fixed(1));
        }
        Ok(vec![Fact::dims(DType::F32, shape)])
    }
    fn axes(&self, _ins: &[&Fact], _outs: &[&Fact]) -> AxesMapping {
        batch_channel_axes()
    }
}

impl Resize {
    /// Output size of each axis of `x`.
    pub fn out_shape(&self, x: &[Dim]) -> OpResult<Vec<Dim>> {
        if self.scales.len() != x.len() {
            return Err(OpError::Attr {
                name: "scales",
                msg: format!("has {} entries, x {} has rank {}", self.scales.len(), fmt_shape(x), x.len()),
            });
        }
        if let Some(s) = self.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(OpError::Attr {
                name: "scales",
                msg: format!("{s} in {:?} is not positive", self.scales),
            });
        }
        if let Some(sizes) = &self.sizes {
            if sizes.len() != x.len() {
                return Err(OpError::Attr {
                    name: "sizes",
                    msg: format!("has {} entries, x {} has rank {}", sizes.len(), fmt_shape(x), x.len()),
                });
            }
            for (s, d) in sizes.iter().zip(x) {
                if matches!(s, Dim::Sym(_)) && s != d {
                    return Err(OpError::Attr {
                        name: "sizes",
                        msg: format!("symbolic size {s} differs from the input's {d}"),
                    });
                }
                if *s == Dim::Fixed(0) {
                    return Err(OpError::Attr {
                        name: "sizes",
                        msg: format!("{} has a zero size", fmt_shape(sizes)),
                    });
                }
            }
            return Ok(sizes.clone());
        }
        x.iter()
            .zip(&self.scales)
            .map(|(d, &s)| {
                if s == 1.0 {
                    return Ok(d.clone());
                }
                let o = (d.to_usize()? as f32 * s) as usize;
                if o == 0 {
                    return Err(OpError::Attr {
                        name: "scales",
                        msg: format!("{:?} make axis of size {d} empty", self.scales),
                    });
                }
                Ok(Dim::Fixed(o))
            })
            .collect()
    }
}

impl OpDef for Resize {
    fn name(&self) -> &'static str {
        "Resize"
    }
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>> {
        let x = check_x(ins, 1)?;
        Ok(vec![Fact::dims(DType::F32, self.out_shape(&x.shape)?)])
    }
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping {
        let mut m = AxesMapping::none();
        for (k, (a, b)) in ins[0].shape.iter().zip(&outs[0].shape).enumerate() {
            if a == b {
                m.rels.push(AxisRel::Same(Port::input(0, k), Port::output(0, k)));
            }
        }
        m
    }
}

/// Input coordinate (before rounding) of output index `o` along an axis of `len_in` → `len_out`
/// with `scale` (computed in f32 as onnxruntime does).
fn source_coord(coord: CoordMode, o: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
    let x = o as f32;
    match coord {
        CoordMode::HalfPixel => (x + 0.5) / scale - 0.5,
        CoordMode::HalfPixelSymmetric => {
            let adjustment = len_out as f32 / (scale * len_in as f32);
            let center = len_in as f32 / 2.0;
            center * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
        }
        CoordMode::PytorchHalfPixel => {
            if len_out > 1 {
                (x + 0.5) / scale - 0.5
            } else {
                0.0
            }
        }
        CoordMode::AlignCorners => {
            if len_out == 1 {
                0.0
            } else {
                x * (len_in as f32 - 1.0) / (len_out as f32 - 1.0)
            }
        }
        CoordMode::Asymmetric => x / scale,
        CoordMode::TfHalfPixelForNn => (x + 0.5) / scale,
    }
}

/// The nearest input index of coordinate `c`, clamped to the axis.
fn nearest_index(mode: NearestMode, c: f32, scale: f32, len_in: usize) -> usize {
    let r = match mode {
        NearestMode::RoundPreferFloor => {
            if c == c.trunc() + 0.5 {
                c.floor()
            } else {
                c.round()
            }
        }
        NearestMode::RoundPreferCeil => c.round(),
        NearestMode::Floor => c.floor(),
        NearestMode::Ceil => c.ceil(),
        NearestMode::Legacy => {
            if scale < 1.0 {
                c.ceil()
            } else {
                c.trunc()
            }
        }
    };
    if r <= 0.0 {
        0
    } else {
        (r as usize).min(len_in - 1)
    }
}

/// The input index nearest-neighbour Resize reads for output index `o` of an axis resized
/// from `len_in` to `len_out` with `scale` (onnxruntime's f32 arithmetic; every backend uses it).
pub fn nearest_source(
    coord: CoordMode,
    nearest: NearestMode,
    o: usize,
    scale: f32,
    len_in: usize,
    len_out: usize,
) -> usize {
    nearest_index(nearest, source_coord(coord, o, scale, len_in, len_out), scale, len_in)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inf(f: &Fact) -> InFact<'_> {
        InFact { fact: f, value: None }
    }
    fn nx(rest: &[usize]) -> Fact {
        let mut s = vec![Dim::Sym("N".into())];
        s.extend(rest.iter().map(|&d| Dim::Fixed(d)));
        Fact::dims(DType::F32, s)
    }

    #[test]
    fn pool_infers_ceil_mode_and_checks_pads() {
        let x = nx(&[3, 7, 6]);
        let op = Pool {
            kind: PoolKind::Max,
            kernel: vec![3, 2],
            strides: vec![2, 2],
            pads: vec![1, 0, 1, 1],
            dilations: vec![1, 2],
            ceil_mode: true,
            count_include_pad: false,
        };
        let out = op.infer(&[inf(&x)]).unwrap();
        // H: ceil((7 + 2 − 3) / 2) + 1 = 4; W: ceil((6 + 1 − 3) / 2) + 1 = 3.
        assert_eq!(out[0], nx(&[3, 4, 3]));
        let bad = Pool { pads: vec![3, 0, 0, 0], ..op.clone() };
        assert!(bad.infer(&[inf(&x)]).unwrap_err().to_string().contains("pads"));
        let bad = Pool { kernel: vec![3], ..op };
        assert!(bad.infer(&[inf(&x)]).unwrap_err().to_string().contains("kernel_shape"));
    }

    #[test]
    fn global_pool_keeps_batch_and_channels() {
        let out = GlobalPool { kind: PoolKind::Avg }.infer(&[inf(&nx(&[5, 4, 4]))]).unwrap();
        assert_eq!(out[0], nx(&[5, 1, 1]));
        assert!(GlobalPool { kind: PoolKind::Max }.infer(&[inf(&nx(&[5]))]).is_err());
    }

    #[test]
    fn resize_scales_and_sizes() {
        let x = nx(&[2, 3, 5]);
        let op = Resize {
            scales: vec![1.0, 1.0, 2.0, 0.5],
            sizes: None,
            coord: CoordMode::Asymmetric,
            nearest: NearestMode::Floor,
        };
        assert_eq!(op.infer(&[inf(&x)]).unwrap()[0], nx(&[2, 6, 2]));
        let sizes = Some(vec![Dim::Sym("N".into()), Dim::Fixed(2), Dim::Fixed(4), Dim::Fixed(4)]);
        let op2 = Resize { sizes, ..op.clone() };
        assert_eq!(op2.infer(&[inf(&x)]).unwrap()[0], nx(&[2, 4, 4]));
        let bad = Resize { scales: vec![2.0, 1.0, 1.0, 1.0], ..op };
        assert!(matches!(bad.infer(&[inf(&x)]).unwrap_err(), OpError::Symbolic(_)));
    }
}

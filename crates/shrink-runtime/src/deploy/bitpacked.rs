//! Affine quantization codes at 1..=8 bits: `x = (u - zero_point[c]) * scale[c]` for the code
//! `u` of an element in channel `c` (one channel per tensor, or one per index of an axis).
//!
//! Payload: `axis` u32 (`u32::MAX` for per-tensor), channel count u32, the scales (f32) and
//! zero points (i32), then the [`Codes`].
use super::codes::Codes;
use super::error::{bail, Result};
use super::wire::{put_f32s, put_i32s, put_u32, Cursor};
use std::borrow::Cow;

/// Which elements share a scale and zero point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantAxis {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per index of this axis (per output channel: axis 0).
    PerChannel(usize),
}

/// How [`BitPacked::quantize`] picks scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Scale and zero point map `[min(x, 0), max(x, 0)]` onto `0..2^bits`.
    Affine,
    /// Zero point `2^(bits-1)`, scale `max|x| / (2^(bits-1) - 1)`: codes minus the zero point
    /// are signed integers (what int8 kernels multiply).
    Symmetric,
}

/// Bit-packed quantization codes with their scales and zero points.
#[derive(Debug, Clone, PartialEq)]
pub struct BitPacked {
    pub axis: QuantAxis,
    pub scales: Vec<f32>,
    pub zero_points: Vec<i32>,
    /// One code per element (its width is the bit width).
    pub codes: Codes,
}

/// Signed 8-bit weights `w = q * scale[c]`: what int8 kernels read.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Weights {
    pub axis: QuantAxis,
    pub scales: Vec<f32>,
    /// `code - zero_point`, one per element.
    pub values: Vec<i8>,
}

/// Channel count and elements per channel slice of `shape` for `axis`.
pub fn channel_layout(shape: &[usize], axis: QuantAxis) -> Result<(usize, usize)> {
    match axis {
        QuantAxis::PerTensor => Ok((1, 1)),
        QuantAxis::PerChannel(a) => {
            let Some(&c) = shape.get(a) else {
                bail!("quantization axis {a} is out of range for shape {shape:?}")
            };
            Ok((c, shape[a + 1..].iter().product()))
        }
    }
}

/// The channel of element `i`.
fn channel(i: usize, axis: QuantAxis, channels: usize, inner: usize) -> usize {
    match axis {
        QuantAxis::PerTensor => 0,
        QuantAxis::PerChannel(_) => (i / inner.max(1)) % channels.max(1),
    }
}

impl BitPacked {
    /// Quantizes `values` (of `shape`) at `bits` bits.
    pub fn quantize(
        values: &[f32],
        shape: &[usize],
        bits: u8,
        axis: QuantAxis,
        scheme: Scheme,
    ) -> Result<Self> {
        if !(1..=8).contains(&bits) {
            bail!("bit width {bits} is outside 1..=8");
        }
        if shape.iter().product::<usize>() != values.len() {
            bail!("{} values do not fill shape {shape:?}", values.len());
        }
        let (channels, inner) = channel_layout(shape, axis)?;
        let (mut lo, mut hi) = (vec![0f32; channels], vec![0f32; channels]);
        for (i, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                bail!("value {v} at index {i} cannot be quantized");
            }
            let c = channel(i, axis, channels, inner);
            lo[c] = lo[c].min(v);
            hi[c] = hi[c].max(v);
        }
        let top = (1u32 << bits) - 1;
        let (scales, zero_points): (Vec<f32>, Vec<i32>) = (0..channels)
            .map(|c| match scheme {
                Scheme::Affine => {
                    let s = (hi[c] - lo[c]) / top as f32;
                    if s > 0.0 && s.is_finite() {
                        (s, ((-lo[c] / s).round() as i32).clamp(0, top as i32))
                    } else {
                        (1.0, 0)
                    }
                }
                Scheme::Symmetric => {
                    let half = 1i32 << (bits - 1);
                    let m = lo[c].abs().max(hi[c].abs());
                    let s = m / (half - 1).max(1) as f32;
                    (if s > 0.0 && s.is_finite() { s } else { 1.0 }, half)
                }
            })
            .unzip();
        let codes: Vec<u8> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = channel(i, axis, channels, inner);
                ((v / scales[c]).round() as i64 + zero_points[c] as i64).clamp(0, top as i64) as u8
            })
            .collect();
        Ok(BitPacked { axis, scales, zero_points, codes: Codes::packed(&codes, bits)? })
    }

    /// Bit width of the codes.
    pub fn bits(&self) -> u8 {
        self.codes.bits()
    }

    /// Checks the parameters against `shape` (counts, finite scales).
    pub fn check(&self, shape: &[usize]) -> Result<()> {
        let (channels, _) = channel_layout(shape, self.axis)?;
        if self.scales.len() != channels || self.zero_points.len() != channels {
            bail!(
                "{} scales and {} zero points for {channels} channels",
                self.scales.len(),
                self.zero_points.len()
            );
        }
        if let Some(s) = self.scales.iter().find(|s| !s.is_finite()) {
            bail!("scale {s} is not finite");
        }
        let n: usize = shape.iter().product();
        if self.codes.len() != n {
            bail!("{} codes for {n} elements", self.codes.len());
        }
        Ok(())
    }

    /// The f32 values of a tensor of `shape`.
    pub fn decode(&self, shape: &[usize]) -> Result<Vec<f32>> {
        self.check(shape)?;
        let (channels, inner) = channel_layout(shape, self.axis)?;
        let codes = self.codes.decode()?;
        Ok(codes
            .iter()
            .enumerate()
            .map(|(i, &u)| {
                let c = channel(i, self.axis, channels, inner);
                (u as i32 - self.zero_points[c]) as f32 * self.scales[c]
            })
            .collect())
    }

    /// The codes packed at their width (int4 kernels widen them in registers).
    pub fn packed(&self) -> Result<Cow<'_, [u8]>> {
        self.codes.packed_bytes()
    }

    /// Signed 8-bit weights, when every code minus its zero point fits `i8` (always for
    /// [`Scheme::Symmetric`]); `None` otherwise.
    pub fn int8(&self, shape: &[usize]) -> Result<Option<Int8Weights>> {
        self.check(shape)?;
        let top = (1i32 << self.bits()) - 1;
        if self.zero_points.iter().any(|&z| z > 128 || top - z > 127) {
            return Ok(None);
        }
        let (channels, inner) = channel_layout(shape, self.axis)?;
        let codes = self.codes.decode()?;
        let values = codes
            .iter()
            .enumerate()
            .map(|(i, &u)| (u as i32 - self.zero_points[channel(i, self.axis, channels, inner)]) as i8)
            .collect();
        Ok(Some(Int8Weights { axis: self.axis, scales: self.scales.clone(), values }))
    }

    /// Exact bytes [`BitPacked::write`] appends.
    pub fn encoded_size(&self) -> usize {
        8 + 8 * self.scales.len() + self.codes.encoded_size()
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_u32(
            out,
            match self.axis {
                QuantAxis::PerTensor => u32::MAX,
                QuantAxis::PerChannel(a) => a as u32,
            },
        );
        put_u32(out, self.scales.len() as u32);
        put_f32s(out, &self.scales);
        put_i32s(out, &self.zero_points);
        self.codes.write(out);
    }

    /// Reads a payload for a tensor of `shape` and checks its counts.
    pub fn read(c: &mut Cursor, shape: &[usize]) -> Result<Self> {
        let axis = match c.u32("quantization axis")? {
            u32::MAX => QuantAxis::PerTensor,
            a => QuantAxis::PerChannel(a as usize),
        };
        let n = c.u32("channel count")? as u64;
        let scales = c.f32s(n, "scales")?;
        let zero_points = c.i32s(n, "zero points")?;
        let codes = Codes::read(c, "codes")?;
        let b = BitPacked { axis, scales, zero_points, codes };
        b.check(shape)?;
        Ok(b)
    }
}

//! Bit packing of unsigned integer codes at 1..=32 bits each, LSB first: code `i` occupies bits
//! `i*bits .. (i+1)*bits` of the little-endian bit stream; the last byte is zero-padded.
use std::fmt;

/// A packed buffer that does not match what it claims to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// Bit width outside 1..=32.
    Bits(u32),
    /// A code does not fit in the bit width.
    CodeTooWide { index: usize, code: u32, bits: u32 },
    /// The buffer is shorter than `n` codes need.
    Truncated { needed: usize, got: usize },
    /// Scales/offsets/mask do not match the tensor layout.
    Layout(String),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Bits(b) => write!(f, "bit width must be in 1..=32, got {b}"),
            PackError::CodeTooWide { index, code, bits } => {
                write!(f, "code {code} at index {index} does not fit in {bits} bits")
            }
            PackError::Truncated { needed, got } => {
                write!(f, "packed data truncated: need {needed} bytes, got {got}")
            }
            PackError::Layout(m) => write!(f, "bad packed tensor layout: {m}"),
        }
    }
}

impl std::error::Error for PackError {}

fn check_bits(bits: u32) -> Result<(), PackError> {
    if (1..=32).contains(&bits) {
        Ok(())
    } else {
        Err(PackError::Bits(bits))
    }
}

/// Bytes needed for `n` codes at `bits` bits.
pub fn packed_len(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(8)
}

/// Packs `codes` at `bits` bits each (every code must be `< 2^bits`).
pub fn pack(codes: &[u32], bits: u32) -> Result<Vec<u8>, PackError> {
    check_bits(bits)?;
    let limit = if bits == 32 { u64::MAX } else { (1u64 << bits) - 1 };
    let mut out = Vec::with_capacity(packed_len(codes.len(), bits));
    let (mut acc, mut filled) = (0u64, 0u32);
    for (index, &code) in codes.iter().enumerate() {
        if code as u64 > limit {
            return Err(PackError::CodeTooWide { index, code, bits });
        }
        acc |= (code as u64) << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    Ok(out)
}

/// Unpacks `n` codes of `bits` bits from `bytes` (the inverse of [`pack`]).
pub fn unpack(bytes: &[u8], bits: u32, n: usize) -> Result<Vec<u32>, PackError> {
    check_bits(bits)?;
    let needed = packed_len(n, bits);
    if bytes.len() < needed {
        return Err(PackError::Truncated { needed, got: bytes.len() });
    }
    let mask = if bits == 32 { u32::MAX as u64 } else { (1u64 << bits) - 1 };
    let mut out = Vec::with_capacity(n);
    let mut bytes = bytes[..needed].iter();
    let (mut acc, mut filled) = (0u64, 0u32);
    for _ in 0..n {
        while filled < bits {
            // `needed` bytes hold at least n*bits bits, so this never runs dry.
            acc |= (*bytes.next().unwrap_or(&0) as u64) << filled;
            filled += 8;
        }
        out.push((acc & mask) as u32);
        acc >>= bits;
        filled -= bits;
    }
    Ok(out)
}

/// A quantized tensor as stored: codes `u` packed at `bits`, dequantized per slice `c` as
/// `((u + qmin) as f32) * scales[c] + offsets[c]` (or `offsets[c]` where `scales[c] == 0`),
/// and exactly `0.0` where the optional keep-mask bit is 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedTensor {
    pub bits: u32,
    /// Number of elements.
    pub len: usize,
    /// Elements per slice (channel): `len` for per-tensor, product of the trailing dims for
    /// per-output-channel.
    pub inner: usize,
    /// Smallest signed code; stored codes are `code - qmin >= 0`.
    pub qmin: i32,
    pub scales: Vec<f32>,
    pub offsets: Vec<f32>,
    /// Packed codes.
    pub codes: Vec<u8>,
    /// Keep-mask packed at 1 bit (1 = keep), if the tensor is pruned.
    pub mask: Option<Vec<u8>>,
}

impl PackedTensor {
    /// Packs signed `codes` (each in `qmin..qmin + 2^bits`) with their slice parameters.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        codes: &[i32],
        bits: u32,
        qmin: i32,
        inner: usize,
        scales: Vec<f32>,
        offsets: Vec<f32>,
        mask: Option<&[bool]>,
    ) -> Result<PackedTensor, PackError> {
        let shifted: Vec<u32> = codes
            .iter()
            .enumerate()
            .map(|(index, &c)| {
                let u = c as i64 - qmin as i64;
                u32::try_from(u).map_err(|_| PackError::CodeTooWide { index, code: c as u32, bits })
            })
            .collect::<Result<_, _>>()?;
        let t = PackedTensor {
            bits,
            len: codes.len(),
            inner,
            qmin,
            scales,
            offsets,
            codes: pack(&shifted, bits)?,
            mask: match mask {
                Some(m) => Some(pack(&m.iter().map(|&k| k as u32).collect::<Vec<_>>(), 1)?),
                None => None,
            },
        };
        t.check()?;
        Ok(t)
    }

    /// Checks that slice parameters, codes and mask match `len`.
    pub fn check(&self) -> Result<(), PackError> {
        check_bits(self.bits)?;
        if self.scales.is_empty() || self.scales.len() != self.offsets.len() {
            return Err(PackError::Layout(format!(
                "{} scales and {} offsets",
                self.scales.len(),
                self.offsets.len()
            )));
        }
        if self.inner * self.scales.len() != self.len {
            return Err(PackError::Layout(format!(
                "{} elements do not split into {} slices of {}",
                self.len,
                self.scales.len(),
                self.inner
            )));
        }
        let needed = packed_len(self.len, self.bits);
        if self.codes.len() != needed {
            return Err(PackError::Truncated { needed, got: self.codes.len() });
        }
        if let Some(m) = &self.mask {
            let needed = packed_len(self.len, 1);
            if m.len() != needed {
                return Err(PackError::Truncated { needed, got: m.len() });
            }
        }
        Ok(())
    }

    /// The signed integer codes.
    pub fn codes(&self) -> Result<Vec<i32>, PackError> {
        Ok(unpack(&self.codes, self.bits, self.len)?
            .into_iter()
            .map(|u| (u as i64 + self.qmin as i64) as i32)
            .collect())
    }

    /// The keep-mask, if any.
    pub fn mask(&self) -> Result<Option<Vec<bool>>, PackError> {
        match &self.mask {
            Some(m) => Ok(Some(unpack(m, 1, self.len)?.into_iter().map(|b| b == 1).collect())),
            None => Ok(None),
        }
    }

    /// The dequantized values.
    pub fn dequantize(&self) -> Result<Vec<f32>, PackError> {
        self.check()?;
        let codes = self.codes()?;
        let mask = self.mask()?;
        let inner = self.inner.max(1);
        Ok(codes
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                if mask.as_ref().is_some_and(|m| !m[i]) {
                    return 0.0;
                }
                let c = i / inner;
                let (s, o) = (self.scales[c], self.offsets[c]);
                if s == 0.0 {
                    o
                } else {
                    k as f32 * s + o
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_every_width() {
        for bits in 1..=32u32 {
            let max = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
            let codes: Vec<u32> = (0..1000u64)
                .map(|i| ((i * 2_654_435_761) % (max as u64 + 1)) as u32)
                .chain([0, max])
                .collect();
            let packed = pack(&codes, bits).unwrap();
            assert_eq!(packed.len(), packed_len(codes.len(), bits));
            assert_eq!(unpack(&packed, bits, codes.len()).unwrap(), codes, "bits {bits}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(pack(&[1], 0), Err(PackError::Bits(0)));
        assert_eq!(pack(&[1], 33), Err(PackError::Bits(33)));
        assert!(matches!(pack(&[4], 2), Err(PackError::CodeTooWide { index: 0, .. })));
        assert!(matches!(unpack(&[0], 4, 3), Err(PackError::Truncated { needed: 2, got: 1 })));
    }

    #[test]
    fn four_bits_is_half_a_byte() {
        assert_eq!(pack(&[1, 2, 3], 4).unwrap(), vec![0x21, 0x03]);
    }

    #[test]
    fn packed_tensor_dequantizes_per_channel_with_mask() {
        let codes = [-2, -1, 0, 1, 3, 0];
        let mask = [true, true, false, true, true, true];
        let t = PackedTensor::new(&codes, 3, -4, 3, vec![0.5, 0.0], vec![0.0, 7.0], Some(&mask)).unwrap();
        assert_eq!(t.codes().unwrap(), codes);
        assert_eq!(t.dequantize().unwrap(), vec![-1.0, -0.5, 0.0, 7.0, 7.0, 7.0]);
        let bad = PackedTensor { inner: 4, ..t };
        assert!(bad.check().is_err());
    }
}

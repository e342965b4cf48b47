//! Small signed integers (an int8 tensor whose values fit `bits` bits, e.g. int4 weight codes
//! in `[-8, 7]`) stored at that width: code `u = v + 2^(bits−1)` as [`Codes`]. Decodes to int8,
//! so the graph keeps its int8 constant (a `DequantizeLinear` input) while the file holds
//! `bits` bits per value.
//!
//! Payload: the [`Codes`] (their width is the bit width).
use super::codes::Codes;
use super::error::{bail, Result};
use super::wire::Cursor;

/// Signed values at `codes.bits()` bits each, offset by `2^(bits−1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCodes {
    pub codes: Codes,
}

impl SignedCodes {
    /// The narrowest storage (2..=8 bits) of `values`, bit-packed, or canonical-Huffman coded
    /// when `huffman` and smaller.
    pub fn encode(values: &[i8], huffman: bool) -> Result<SignedCodes> {
        let (lo, hi) = values.iter().fold((0i32, 0i32), |(lo, hi), &v| (lo.min(v as i32), hi.max(v as i32)));
        let bits = (2..=8u8).find(|&b| lo >= -(1 << (b - 1)) && hi < (1 << (b - 1))).unwrap_or(8);
        let off = 1i32 << (bits - 1);
        let u: Vec<u8> = values.iter().map(|&v| (v as i32 + off) as u8).collect();
        let codes = if huffman { Codes::smallest(&u, bits)? } else { Codes::packed(&u, bits)? };
        Ok(SignedCodes { codes })
    }

    /// Bit width.
    pub fn bits(&self) -> u8 {
        self.codes.bits()
    }

    /// The values of a tensor of `n` elements.
    pub fn decode(&self, n: usize) -> Result<Vec<i8>> {
        if self.codes.len() != n {
            bail!("{} codes for {n} elements", self.codes.len());
        }
        let off = 1i32 << (self.bits() - 1);
        Ok(self.codes.decode()?.into_iter().map(|u| (u as i32 - off) as i8).collect())
    }

    /// Exact bytes [`SignedCodes::write`] appends.
    pub fn encoded_size(&self) -> usize {
        self.codes.encoded_size()
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.codes.write(out);
    }

    /// Reads a payload for `n` elements (lengths checked before anything is allocated).
    pub fn read(c: &mut Cursor, n: usize) -> Result<SignedCodes> {
        let codes = Codes::read(c, "signed codes")?;
        if codes.len() != n {
            bail!("{} signed codes for {n} elements", codes.len());
        }
        Ok(SignedCodes { codes })
    }
}

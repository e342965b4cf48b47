//! A stream of small unsigned codes (quantization codes, codebook indices, sparse index gaps),
//! each below `2^bits` with `bits` in 1..=8, stored bit-packed at a fixed width or Huffman
//! coded.
//!
//! Payload: `store` u8 (0 packed, 1 Huffman), `bits` u8, `len` u64, then for packed
//! `ceil(len*bits/8)` bytes of codes LSB-first ([`crate::pack`]); for Huffman the 4-bit length
//! table ([`huffman::table_len`] bytes), the stream's byte count u64 and the stream.
use super::error::{bail, Result};
use super::huffman;
use super::wire::{put_u64, Cursor};
use crate::pack::{pack, packed_len, unpack};
use std::borrow::Cow;

/// How a [`Codes`] stream is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeStore {
    /// Fixed width, LSB-first.
    Packed(Vec<u8>),
    /// Canonical Huffman: code length per symbol and the bit stream.
    Huffman { lens: Vec<u8>, data: Vec<u8> },
}

/// A stream of `len` codes below `2^bits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    bits: u8,
    len: usize,
    store: CodeStore,
}

fn check_bits(bits: u8) -> Result<()> {
    if !(1..=8).contains(&bits) {
        bail!("code width {bits} is outside 1..=8 bits");
    }
    Ok(())
}

fn check_range(codes: &[u8], bits: u8) -> Result<()> {
    if let Some((i, c)) = codes.iter().enumerate().find(|(_, &c)| bits < 8 && c >> bits != 0) {
        bail!("code {c} at index {i} does not fit in {bits} bits");
    }
    Ok(())
}

impl Codes {
    /// Packs `codes` at a fixed `bits` width.
    pub fn packed(codes: &[u8], bits: u8) -> Result<Codes> {
        check_bits(bits)?;
        check_range(codes, bits)?;
        let wide: Vec<u32> = codes.iter().map(|&c| c as u32).collect();
        let bytes = pack(&wide, bits as u32).map_err(|e| super::DeployError::invalid(e.to_string()))?;
        Ok(Codes { bits, len: codes.len(), store: CodeStore::Packed(bytes) })
    }

    /// Huffman-codes `codes` (symbols below `2^bits`).
    pub fn huffman(codes: &[u8], bits: u8) -> Result<Codes> {
        check_bits(bits)?;
        check_range(codes, bits)?;
        let (lens, data) = huffman::encode(codes, bits);
        Ok(Codes { bits, len: codes.len(), store: CodeStore::Huffman { lens, data } })
    }

    /// The smaller of [`Codes::packed`] and [`Codes::huffman`].
    pub fn smallest(codes: &[u8], bits: u8) -> Result<Codes> {
        let p = Codes::packed(codes, bits)?;
        let h = Codes::huffman(codes, bits)?;
        Ok(if h.encoded_size() < p.encoded_size() { h } else { p })
    }

    /// The same codes stored the other way when `huffman` differs from the current storage.
    pub fn restored(&self, huffman: bool) -> Result<Codes> {
        if huffman == self.is_huffman() {
            return Ok(self.clone());
        }
        let c = self.decode()?;
        if huffman {
            Codes::huffman(&c, self.bits)
        } else {
            Codes::packed(&c, self.bits)
        }
    }

    /// Bit width of each code.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no code.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the stream is Huffman coded.
    pub fn is_huffman(&self) -> bool {
        matches!(self.store, CodeStore::Huffman { .. })
    }

    /// The storage.
    pub fn store(&self) -> &CodeStore {
        &self.store
    }

    /// The codes, one byte each.
    pub fn decode(&self) -> Result<Vec<u8>> {
        let codes = match &self.store {
            CodeStore::Packed(bytes) => unpack(bytes, self.bits as u32, self.len)
                .map_err(|e| super::DeployError::invalid(e.to_string()))?
                .into_iter()
                .map(|c| c as u8)
                .collect(),
            CodeStore::Huffman { lens, data } => huffman::decode(lens, data, self.len)?,
        };
        Ok(codes)
    }

    /// The codes packed at the fixed width (borrowed when stored that way): what low-bit
    /// kernels read directly.
    pub fn packed_bytes(&self) -> Result<Cow<'_, [u8]>> {
        match &self.store {
            CodeStore::Packed(b) => Ok(Cow::Borrowed(b)),
            CodeStore::Huffman { .. } => match Codes::packed(&self.decode()?, self.bits)?.store {
                CodeStore::Packed(b) => Ok(Cow::Owned(b)),
                CodeStore::Huffman { .. } => unreachable!("packed() packs"),
            },
        }
    }

    /// Exact bytes [`Codes::write`] appends.
    pub fn encoded_size(&self) -> usize {
        2 + 8
            + match &self.store {
                CodeStore::Packed(b) => b.len(),
                CodeStore::Huffman { data, .. } => huffman::table_len(self.bits) + 8 + data.len(),
            }
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.is_huffman() as u8);
        out.push(self.bits);
        put_u64(out, self.len as u64);
        match &self.store {
            CodeStore::Packed(b) => out.extend_from_slice(b),
            CodeStore::Huffman { lens, data } => {
                out.extend_from_slice(&huffman::pack_lengths(lens));
                put_u64(out, data.len() as u64);
                out.extend_from_slice(data);
            }
        }
    }

    /// Reads a payload written by [`Codes::write`], checking every length against the bytes
    /// left ([`Codes::decode`] then checks the codes themselves).
    pub fn read(c: &mut Cursor, what: &str) -> Result<Codes> {
        let store = c.u8(what)?;
        let bits = c.u8(what)?;
        check_bits(bits).map_err(|e| e.context(what))?;
        let len = c.count(what)?;
        let store = match store {
            0 => {
                let Some(n) = (len as u128 * bits as u128).div_ceil(8).try_into().ok() else {
                    bail!("{what}: {len} codes is too many")
                };
                CodeStore::Packed(c.take(n, what)?.to_vec())
            }
            1 => {
                let table = c.take(huffman::table_len(bits) as u64, what)?;
                let lens = huffman::unpack_lengths(table, 1 << bits);
                let n = c.u64(what)?;
                CodeStore::Huffman { lens, data: c.take(n, what)?.to_vec() }
            }
            s => bail!("{what}: unknown code storage {s}"),
        };
        let codes = Codes { bits, len, store };
        if let CodeStore::Packed(b) = &codes.store {
            debug_assert_eq!(b.len(), packed_len(len, bits as u32));
        }
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stores_roundtrip() {
        let codes: Vec<u8> = (0..333u32).map(|i| (i % 5) as u8).collect();
        for c in [Codes::packed(&codes, 3).unwrap(), Codes::huffman(&codes, 3).unwrap()] {
            let mut out = Vec::new();
            c.write(&mut out);
            assert_eq!(out.len(), c.encoded_size());
            let back = Codes::read(&mut Cursor::new(&out), "x").unwrap();
            assert_eq!(back, c);
            assert_eq!(back.decode().unwrap(), codes);
            assert_eq!(
                Codes::packed(&codes, 3).unwrap().packed_bytes().unwrap(),
                back.packed_bytes().unwrap()
            );
        }
        assert!(Codes::packed(&[8], 3).is_err());
        assert!(Codes::packed(&[1], 9).is_err());
    }
}

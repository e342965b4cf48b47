//! Little-endian primitives of payloads: a bounds-checked reader ([`Cursor`]) that checks
//! every count against the bytes left before allocating, and the matching writers.
use super::error::{bail, Result};

/// Reads little-endian fields from a byte slice; every read checks the bytes left first.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Errors unless every byte was read (no trailing garbage).
    pub fn finish(&self, what: &str) -> Result<()> {
        if self.remaining() != 0 {
            bail!("{what} has {} bytes left over after its last field", self.remaining());
        }
        Ok(())
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            bail!("{what} needs {n} bytes, {} are left", self.remaining());
        }
        let n = n as usize;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// A u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A u64 count that must fit `usize`.
    pub fn count(&mut self, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        usize::try_from(n).map_err(|_| super::DeployError::invalid(format!("{what} {n} is too large")))
    }

    /// `n` f32 values (the byte count is checked before allocating).
    pub fn f32s(&mut self, n: u64, what: &str) -> Result<Vec<f32>> {
        let Some(len) = n.checked_mul(4) else { bail!("{what}: {n} values is too many") };
        let b = self.take(len, what)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// `n` i32 values (the byte count is checked before allocating).
    pub fn i32s(&mut self, n: u64, what: &str) -> Result<Vec<i32>> {
        let Some(len) = n.checked_mul(4) else { bail!("{what}: {n} values is too many") };
        let b = self.take(len, what)?;
        Ok(b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// Appends a u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a u64.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends f32 values.
pub fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
}

/// Appends i32 values.
pub fn put_i32s(out: &mut Vec<u8>, v: &[i32]) {
    v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_checked_before_allocating() {
        let mut c = Cursor::new(&[1, 2, 3, 4, 5]);
        assert_eq!(c.u32("a").unwrap(), 0x0403_0201);
        let e = c.f32s(u64::MAX / 2, "scales").unwrap_err().to_string();
        assert!(e.contains("scales"), "{e}");
        assert!(c.f32s(1, "scales").is_err());
        assert_eq!(c.u8("b").unwrap(), 5);
        c.finish("x").unwrap();
    }
}

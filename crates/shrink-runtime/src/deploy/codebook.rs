//! Weight sharing (Deep Compression's k-means quantization): every element is one of a few
//! f32 centroids, stored as an index of 1..=8 bits.
//!
//! Payload: centroid count u32, the centroids (f32), then the indices as [`Codes`].
use super::codes::Codes;
use super::error::{bail, Result};
use super::wire::{put_f32s, put_u32, Cursor};

/// Centroids and one index per element.
#[derive(Debug, Clone, PartialEq)]
pub struct Codebook {
    pub centroids: Vec<f32>,
    /// One index per element (its width is the index width).
    pub indices: Codes,
}

impl Codebook {
    /// Maps each value to its nearest centroid (ties to the lower index); at most `2^bits`
    /// centroids.
    pub fn nearest(values: &[f32], centroids: Vec<f32>, bits: u8) -> Result<Self> {
        if centroids.is_empty() || !(1..=8).contains(&bits) || centroids.len() > 1 << bits {
            bail!("{} centroids cannot be indexed with {bits} bits", centroids.len());
        }
        let idx: Vec<u8> = values
            .iter()
            .map(|&v| {
                let mut best = 0;
                for (k, &c) in centroids.iter().enumerate() {
                    if (v - c).abs() < (v - centroids[best]).abs() {
                        best = k;
                    }
                }
                best as u8
            })
            .collect();
        Ok(Codebook { centroids, indices: Codes::packed(&idx, bits)? })
    }

    /// `2^bits` centroids evenly spaced between the minimum and the maximum of `values`, each
    /// value mapped to the nearest (a uniform codebook; the k-means codebooks of weight sharing
    /// are made by `shrink_compress::share` and stored with [`Codebook::nearest`]).
    pub fn linear(values: &[f32], bits: u8) -> Result<Self> {
        if !(1..=8).contains(&bits) {
            bail!("index width {bits} is outside 1..=8");
        }
        let k = 1usize << bits;
        let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 0.0) };
        let cent: Vec<f32> = (0..k).map(|i| lo + (hi - lo) * i as f32 / (k - 1).max(1) as f32).collect();
        Codebook::nearest(values, cent, bits)
    }

    /// Checks the counts against `n` elements.
    pub fn check(&self, n: usize) -> Result<()> {
        if self.centroids.is_empty() || self.centroids.len() > 1 << self.indices.bits() {
            bail!("{} centroids with {}-bit indices", self.centroids.len(), self.indices.bits());
        }
        if self.indices.len() != n {
            bail!("{} indices for {n} elements", self.indices.len());
        }
        Ok(())
    }

    /// The indices, each checked to be below the centroid count.
    pub fn indices(&self) -> Result<Vec<u8>> {
        let idx = self.indices.decode()?;
        if let Some((i, k)) = idx.iter().enumerate().find(|(_, &k)| k as usize >= self.centroids.len()) {
            bail!("index {k} at element {i} is past the {} centroids", self.centroids.len());
        }
        Ok(idx)
    }

    /// The f32 values of `n` elements.
    pub fn decode(&self, n: usize) -> Result<Vec<f32>> {
        self.check(n)?;
        Ok(self.indices()?.iter().map(|&k| self.centroids[k as usize]).collect())
    }

    /// Exact bytes [`Codebook::write`] appends.
    pub fn encoded_size(&self) -> usize {
        4 + 4 * self.centroids.len() + self.indices.encoded_size()
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        put_u32(out, self.centroids.len() as u32);
        put_f32s(out, &self.centroids);
        self.indices.write(out);
    }

    /// Reads a payload for `n` elements and checks its counts.
    pub fn read(c: &mut Cursor, n: usize) -> Result<Self> {
        let k = c.u32("centroid count")? as u64;
        let centroids = c.f32s(k, "centroids")?;
        let indices = Codes::read(c, "indices")?;
        let b = Codebook { centroids, indices };
        b.check(n)?;
        Ok(b)
    }
}

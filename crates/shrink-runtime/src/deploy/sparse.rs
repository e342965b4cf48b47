//! Sparse tensors as Deep Compression stores them: the positions of the kept entries as
//! relative gaps at a fixed width, and the kept values in a dense encoding.
//!
//! Entry `k` sits at `p_k = p_{k-1} + code_k + 1` (with `p_{-1} = -1`), so a `b`-bit gap code
//! spans gaps 1..=2^b. A longer gap inserts a filler entry of value 0 every `2^b` positions,
//! and so does a run of zeros at the end: the last entry is less than `2^b` positions from the
//! end of the tensor. The element count is thus bounded by the entries
//! (`n <= (entries + 1) * 2^b`), so a small file cannot ask for a huge dense tensor.
//!
//! Payload: the gap [`Codes`], then the values as an [`Encoding`] of shape `[entries]` (not
//! sparse itself). Fillers decode to whatever the value encoding makes of 0.0 (exactly 0 for
//! raw and bit-packed codes; a codebook should hold a 0 centroid).
use super::codes::Codes;
use super::encoding::Encoding;
use super::error::{bail, Result};
use super::wire::Cursor;
use crate::sparse::Csr;

/// Gap codes and the kept values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparse {
    /// One gap code per entry (its width is the gap width).
    pub gaps: Codes,
    /// One value per entry (a dense encoding of shape `[entries]`).
    pub values: Box<Encoding>,
}

/// The nonzero structure of a sparse matrix: CSR row pointers and columns, and for each stored
/// entry its index in the values encoding (so int8 kernels can take the codes directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrPattern {
    pub rows: usize,
    pub cols: usize,
    /// `indptr[r]..indptr[r + 1]` index the entries of row `r`.
    pub indptr: Vec<usize>,
    /// Column of each entry.
    pub indices: Vec<u32>,
    /// Index of each entry in the values encoding.
    pub entries: Vec<usize>,
}

impl Sparse {
    /// Keeps the entries of `dense` that are not 0 (plus fillers) with `gap_bits`-bit gaps
    /// (Huffman coded when `huffman`), and encodes their values with `values`, which gets the
    /// entry values (0.0 at fillers).
    pub fn encode(
        dense: &[f32],
        gap_bits: u8,
        huffman: bool,
        values: impl FnOnce(&[f32]) -> Result<Encoding>,
    ) -> Result<Sparse> {
        if !(1..=8).contains(&gap_bits) {
            bail!("gap width {gap_bits} is outside 1..=8");
        }
        let span = 1usize << gap_bits;
        let (mut codes, mut vals) = (Vec::new(), Vec::new());
        let mut prev: isize = -1;
        let mut push = |pos: usize, v: f32, prev: &mut isize| {
            codes.push((pos as isize - *prev - 1) as u8);
            vals.push(v);
            *prev = pos as isize;
        };
        for (i, &v) in dense.iter().enumerate() {
            if v == 0.0 {
                continue;
            }
            while i as isize - prev > span as isize {
                push((prev + span as isize) as usize, 0.0, &mut prev);
            }
            push(i, v, &mut prev);
        }
        while dense.len() as isize > prev + span as isize {
            push((prev + span as isize) as usize, 0.0, &mut prev);
        }
        let values = values(&vals)?;
        if matches!(values, Encoding::Sparse(_)) {
            bail!("the values of a sparse tensor cannot be sparse themselves");
        }
        let gaps = if huffman { Codes::huffman(&codes, gap_bits)? } else { Codes::packed(&codes, gap_bits)? };
        let s = Sparse { gaps, values: Box::new(values) };
        s.values.validate(&[s.gaps.len()])?;
        Ok(s)
    }

    /// Number of stored entries (kept values and fillers).
    pub fn entries(&self) -> usize {
        self.gaps.len()
    }

    /// The position of every entry in a tensor of `n` elements; errors when a position falls
    /// outside it or the tail is longer than a gap can span.
    pub fn positions(&self, n: usize) -> Result<Vec<usize>> {
        self.check_bound(n)?;
        let codes = self.gaps.decode()?;
        let mut out = Vec::with_capacity(codes.len());
        let mut next = 0usize;
        for (k, &c) in codes.iter().enumerate() {
            let p = next + c as usize;
            if p >= n {
                bail!("entry {k} is at position {p}, past the {n} elements");
            }
            out.push(p);
            next = p + 1;
        }
        let span = 1usize << self.gaps.bits();
        if n - next >= span {
            bail!("{} zeros after the last entry exceed what {}-bit gaps span", n - next, self.gaps.bits());
        }
        Ok(out)
    }

    fn check_bound(&self, n: usize) -> Result<()> {
        let max = (self.entries() as u128 + 1) << self.gaps.bits();
        if n as u128 > max {
            bail!(
                "{n} elements cannot be reached by {} entries of {}-bit gaps",
                self.entries(),
                self.gaps.bits()
            );
        }
        Ok(())
    }

    pub(crate) fn values_validate(&self) -> Result<()> {
        if matches!(*self.values, Encoding::Sparse(_)) {
            bail!("the values of a sparse tensor cannot be sparse themselves");
        }
        self.values.validate(&[self.entries()]).map_err(|e| e.context("values"))
    }

    /// The dense f32 elements of a tensor of `n` elements.
    pub fn decode(&self, n: usize) -> Result<Vec<f32>> {
        let pos = self.positions(n)?;
        let vals = self.values.decode_f32(&[pos.len()]).map_err(|e| e.context("values"))?;
        let mut out = vec![0f32; n];
        for (&p, &v) in pos.iter().zip(&vals) {
            out[p] = v;
        }
        Ok(out)
    }

    /// The entries of a tensor of `shape` as a matrix `[shape[0], rest]` (a conv weight
    /// `[O, I, kh, kw]` is `[O, I*kh*kw]`), fillers included.
    pub fn pattern(&self, shape: &[usize]) -> Result<CsrPattern> {
        let n = super::encoding::volume(shape)?;
        let rows = shape.first().copied().unwrap_or(1);
        let cols = n.checked_div(rows).unwrap_or(0);
        if u32::try_from(cols).is_err() {
            bail!("{cols} columns do not fit 32-bit column indices");
        }
        let pos = self.positions(n)?;
        let mut indptr = vec![0usize; rows + 1];
        for &p in &pos {
            indptr[p / cols + 1] += 1;
        }
        let mut acc = 0;
        for x in indptr.iter_mut() {
            acc += *x;
            *x = acc;
        }
        let indices = pos.iter().map(|&p| (p % cols) as u32).collect();
        Ok(CsrPattern { rows, cols, indptr, indices, entries: (0..pos.len()).collect() })
    }

    /// The matrix of [`Sparse::pattern`] with f32 values, fillers dropped: what the sparse
    /// kernels ([`Csr`]) multiply.
    pub fn csr(&self, shape: &[usize]) -> Result<Csr> {
        let p = self.pattern(shape)?;
        let vals = self.values.decode_f32(&[self.entries()]).map_err(|e| e.context("values"))?;
        let mut csr =
            Csr { rows: p.rows, cols: p.cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() };
        for w in p.indptr.windows(2) {
            for k in w[0]..w[1] {
                if vals[p.entries[k]] != 0.0 {
                    csr.indices.push(p.indices[k]);
                    csr.values.push(vals[p.entries[k]]);
                }
            }
            csr.indptr.push(csr.values.len());
        }
        Ok(csr)
    }

    /// Exact bytes [`Sparse::write`] appends.
    pub fn encoded_size(&self) -> usize {
        self.gaps.encoded_size() + self.values.encoded_size()
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.gaps.write(out);
        self.values.write(out);
    }

    /// Reads a payload for `n` elements; checks the element bound before anything is decoded.
    pub fn read(c: &mut Cursor, n: usize) -> Result<Self> {
        let gaps = Codes::read(c, "gaps")?;
        let probe = Sparse {
            gaps,
            values: Box::new(Encoding::Raw(shrink_graph::TensorData::F32(Vec::new().into()))),
        };
        probe.check_bound(n)?;
        let values = Encoding::read(c, &[probe.entries()], true).map_err(|e| e.context("values"))?;
        Ok(Sparse { gaps: probe.gaps, values: Box::new(values) })
    }
}

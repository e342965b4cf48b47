//! The per-tensor encodings ([`Encoding`]) and an encoded tensor ([`Encoded`]).
//!
//! Payload of an encoding: a tag byte (0 raw, 1 bit-packed, 2 codebook, 3 sparse, 4 signed
//! codes), then
//! - raw: the dtype code ([`super::dtype`]) and the elements, little-endian;
//! - bit-packed: [`BitPacked`]'s payload; codebook: [`Codebook`]'s; sparse: [`Sparse`]'s;
//!   signed codes: [`SignedCodes`]'s (int8 tensors of small values, e.g. int4 weight codes).
use super::bitpacked::BitPacked;
use super::codebook::Codebook;
use super::dtype;
use super::error::{bail, Result};
use super::signed::SignedCodes;
use super::sparse::Sparse;
use super::wire::Cursor;
use shrink_graph::{DType, Tensor, TensorData};

/// How one tensor is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoding {
    /// The elements as they are (any dtype).
    Raw(TensorData),
    /// Affine quantization codes at 1..=8 bits (f32 tensors).
    BitPacked(BitPacked),
    /// k-means centroids and an index per element (f32 tensors).
    Codebook(Codebook),
    /// The kept entries' positions as relative gaps, and their values in a dense encoding.
    Sparse(Sparse),
    /// An int8 tensor of small values at their bit width (int4 weight codes: 4 bits).
    SignedCodes(SignedCodes),
}

impl Encoding {
    /// The dtype it decodes to.
    pub fn dtype(&self) -> DType {
        match self {
            Encoding::Raw(d) => dtype::of(d),
            Encoding::SignedCodes(_) => DType::I8,
            _ => DType::F32,
        }
    }

    /// Short name: `raw`, `bitpacked`, `codebook` or `sparse`.
    pub fn kind(&self) -> &'static str {
        match self {
            Encoding::Raw(_) => "raw",
            Encoding::BitPacked(_) => "bitpacked",
            Encoding::Codebook(_) => "codebook",
            Encoding::Sparse(_) => "sparse",
            Encoding::SignedCodes(_) => "signed",
        }
    }

    /// One-line description (`codebook 5-bit huffman`, `sparse gaps 4-bit + raw f32`).
    pub fn describe(&self) -> String {
        let store = |c: &super::Codes| if c.is_huffman() { " huffman" } else { "" };
        match self {
            Encoding::Raw(d) => format!("raw {}", format!("{:?}", dtype::of(d)).to_lowercase()),
            Encoding::BitPacked(b) => format!(
                "bitpacked {}-bit {}{}",
                b.bits(),
                match b.axis {
                    super::QuantAxis::PerTensor => "per-tensor".to_string(),
                    super::QuantAxis::PerChannel(a) => format!("per-channel(axis {a})"),
                },
                store(&b.codes)
            ),
            Encoding::Codebook(c) => {
                format!("codebook {} x {}-bit{}", c.centroids.len(), c.indices.bits(), store(&c.indices))
            }
            Encoding::Sparse(s) => {
                format!("sparse gaps {}-bit{} + {}", s.gaps.bits(), store(&s.gaps), s.values.describe())
            }
            Encoding::SignedCodes(c) => format!("signed int{}{}", c.bits(), store(&c.codes)),
        }
    }

    /// Checks that the encoding holds exactly the elements of `shape` and decodes (every code
    /// in range); reading a file runs it on every tensor.
    pub fn validate(&self, shape: &[usize]) -> Result<()> {
        match self {
            Encoding::Sparse(s) => s.positions(volume(shape)?).map(|_| ()).and_then(|_| s.values_validate()),
            Encoding::Codebook(c) => c.check(volume(shape)?).and_then(|_| c.indices().map(|_| ())),
            _ => self.decode(shape).map(|_| ()),
        }
    }

    /// The elements of a tensor of `shape` (f32 for every encoding but raw).
    pub fn decode(&self, shape: &[usize]) -> Result<TensorData> {
        let n = volume(shape)?;
        Ok(match self {
            Encoding::Raw(d) => {
                if dtype::len(d) != n {
                    bail!("{} raw elements for shape {shape:?}", dtype::len(d));
                }
                d.clone()
            }
            Encoding::BitPacked(b) => TensorData::F32(b.decode(shape)?.into()),
            Encoding::Codebook(c) => TensorData::F32(c.decode(n)?.into()),
            Encoding::Sparse(s) => TensorData::F32(s.decode(n)?.into()),
            Encoding::SignedCodes(c) => TensorData::I8(c.decode(n)?.into()),
        })
    }

    /// The f32 elements of a tensor of `shape`.
    pub fn decode_f32(&self, shape: &[usize]) -> Result<Vec<f32>> {
        match self.decode(shape)? {
            TensorData::F32(v) => Ok(v.to_vec()),
            d => bail!("holds {:?} elements, not f32", dtype::of(&d)),
        }
    }

    /// Exact bytes [`Encoding::write`] appends.
    pub fn encoded_size(&self) -> usize {
        1 + match self {
            Encoding::Raw(d) => 1 + dtype::len(d) * dtype::size(dtype::of(d)),
            Encoding::BitPacked(b) => b.encoded_size(),
            Encoding::Codebook(c) => c.encoded_size(),
            Encoding::Sparse(s) => s.encoded_size(),
            Encoding::SignedCodes(c) => c.encoded_size(),
        }
    }

    /// Appends the payload.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Encoding::Raw(d) => {
                out.push(0);
                out.push(dtype::code(dtype::of(d)));
                dtype::write(d, out);
            }
            Encoding::BitPacked(b) => {
                out.push(1);
                b.write(out);
            }
            Encoding::Codebook(c) => {
                out.push(2);
                c.write(out);
            }
            Encoding::Sparse(s) => {
                out.push(3);
                s.write(out);
            }
            Encoding::SignedCodes(c) => {
                out.push(4);
                c.write(out);
            }
        }
    }

    /// Reads a payload for a tensor of `shape`; `dense_only` refuses a sparse encoding (the
    /// values inside a sparse one). Every count is checked against the bytes left.
    pub fn read(c: &mut Cursor, shape: &[usize], dense_only: bool) -> Result<Encoding> {
        let n = volume(shape)?;
        Ok(match c.u8("encoding tag")? {
            0 => {
                let dt = dtype::from_code(c.u8("dtype")?)?;
                let Some(len) = (n as u64).checked_mul(dtype::size(dt) as u64) else {
                    bail!("shape {shape:?} is too large")
                };
                Encoding::Raw(dtype::read(dt, c.take(len, "raw elements")?)?)
            }
            1 => Encoding::BitPacked(BitPacked::read(c, shape)?),
            2 => Encoding::Codebook(Codebook::read(c, n)?),
            3 if !dense_only => Encoding::Sparse(Sparse::read(c, n)?),
            3 => bail!("the values of a sparse tensor cannot be sparse themselves"),
            4 if !dense_only => Encoding::SignedCodes(SignedCodes::read(c, n)?),
            4 => bail!("the values of a sparse tensor cannot be signed codes"),
            t => bail!("unknown encoding tag {t}"),
        })
    }
}

/// Number of elements of `shape` (an error when it overflows).
pub fn volume(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| {
        super::DeployError::invalid(format!("shape {shape:?} has more elements than fit in memory"))
    })
}

/// A tensor's shape and encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub shape: Vec<usize>,
    pub encoding: Encoding,
}

impl Encoded {
    /// A tensor stored raw (sharing its data).
    pub fn raw(t: &Tensor) -> Self {
        Encoded { shape: t.shape.clone(), encoding: Encoding::Raw(t.data.clone()) }
    }

    /// The dtype it decodes to.
    pub fn dtype(&self) -> DType {
        self.encoding.dtype()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when it has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decoded tensor.
    pub fn to_tensor(&self) -> Result<Tensor> {
        Ok(Tensor { shape: self.shape.clone(), data: self.encoding.decode(&self.shape)? })
    }

    /// Exact payload bytes.
    pub fn encoded_size(&self) -> usize {
        self.encoding.encoded_size()
    }
}

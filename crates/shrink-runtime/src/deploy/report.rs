//! Bytes per tensor and encoding: what the Deep Compression per-stage table reads.
use super::error::Result;
use super::file::{CHECKSUM, PREAMBLE};
use super::model::DeployModel;
use std::fmt;

/// One tensor's line of a [`SizeReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorSize {
    pub name: String,
    pub shape: Vec<usize>,
    /// [`super::Encoding::describe`].
    pub encoding: String,
    /// Bytes of the tensor stored raw in its dtype.
    pub raw_bytes: u64,
    /// Bytes of its payload.
    pub bytes: u64,
}

/// The sizes of a deploy file, per tensor and in total.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SizeReport {
    pub tensors: Vec<TensorSize>,
    /// Magic, version, header length and the JSON header.
    pub header_bytes: u64,
    /// Alignment padding.
    pub padding_bytes: u64,
    /// The trailing checksum.
    pub checksum_bytes: u64,
    /// The whole file (what [`DeployModel::to_bytes`] returns).
    pub file_bytes: u64,
}

impl SizeReport {
    /// Sum of the payloads.
    pub fn payload_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Sum of the tensors stored raw.
    pub fn raw_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.raw_bytes).sum()
    }
}

impl DeployModel {
    /// Bytes per tensor and encoding, and the file's total (computed without writing it).
    pub fn size_report(&self) -> Result<SizeReport> {
        self.size_report_as(super::Form::Plain)
    }

    /// The size report of the file in the given form.
    pub fn size_report_as(&self, form: super::Form) -> Result<SizeReport> {
        let layout = self.layout_as(form)?;
        let tensors: Vec<TensorSize> = self
            .tensors
            .iter()
            .map(|(name, t)| TensorSize {
                name: name.clone(),
                shape: t.shape.clone(),
                encoding: t.encoding.describe(),
                raw_bytes: (t.len() * super::dtype::size(t.dtype())) as u64,
                bytes: t.encoded_size() as u64,
            })
            .collect();
        let header_bytes = (PREAMBLE + layout.header.len()) as u64;
        let payload: u64 = tensors.iter().map(|t| t.bytes).sum();
        Ok(SizeReport {
            padding_bytes: layout.total - header_bytes - payload - CHECKSUM as u64,
            tensors,
            header_bytes,
            checksum_bytes: CHECKSUM as u64,
            file_bytes: layout.total,
        })
    }
}

impl fmt::Display for SizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<40} {:>14} {:>12} {:>8}  encoding", "tensor", "raw bytes", "bytes", "ratio")?;
        for t in &self.tensors {
            let ratio = t.raw_bytes as f64 / t.bytes.max(1) as f64;
            writeln!(
                f,
                "{:<40} {:>14} {:>12} {:>7.1}x  {}",
                t.name, t.raw_bytes, t.bytes, ratio, t.encoding
            )?;
        }
        writeln!(
            f,
            "header {} + padding {} + checksum {} bytes; file {} bytes ({:.1}x smaller than the raw tensors)",
            self.header_bytes,
            self.padding_bytes,
            self.checksum_bytes,
            self.file_bytes,
            self.raw_bytes() as f64 / self.file_bytes.max(1) as f64
        )
    }
}

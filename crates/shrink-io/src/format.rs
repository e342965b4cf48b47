//! Model-file formats, recognised by content (never by file name): a safetensors file named
//! `.onnx` or `.ckpt` is read as safetensors, an ONNX file named `.safetensors` as ONNX.
//!
//! - shrink bit-packed: the 8-byte magic [`crate::packed::MAGIC`];
//! - shrink deploy (`.shrink` v1, run by `shrink run`): the magic [`shrink_runtime::deploy::MAGIC`];
//! - PyTorch (`torch.save` >= 1.6): a zip archive (`PK\x03\x04`, or `PK\x05\x06` when empty);
//! - PyTorch legacy (older `torch.save`): a pickle stream (`\x80` then protocol 2..=5);
//! - safetensors: an 8-byte little-endian header length (at most 100 MB) then a `{` opening the
//!   JSON header;
//! - ONNX: a protobuf `ModelProto` whose leading fields (as far as the first bytes show) are
//!   ModelProto fields of the right wire type with lengths that fit the file.
use crate::error::{IoError, Result};
use std::path::Path;

/// A model-file format shrink reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// shrink's bit-packed file ([`crate::packed`]).
    Packed,
    /// A deploy file ([`shrink_runtime::deploy`]): run, not loaded as a layer model.
    Deploy,
    /// A `torch.save` zip archive ([`crate::pt`]).
    PyTorchZip,
    /// A pre-1.6 `torch.save` pickle (recognised to say it is unsupported).
    PyTorchLegacy,
    /// safetensors (shrink model files, plain state_dicts, training checkpoints).
    Safetensors,
    /// An ONNX `ModelProto` ([`crate::onnx`]).
    Onnx,
}

/// The formats [`detect`] recognises, as listed in its errors.
pub const RECOGNISED: &str = "safetensors, PyTorch .pt (zip), ONNX, shrink bit-packed, shrink deploy";

/// Bytes of a file's head that [`detect`] looks at.
pub const SNIFF_LEN: usize = 4096;

/// Largest safetensors header (the safetensors crate's own limit).
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

/// The format of a file whose first bytes are `head` (up to [`SNIFF_LEN`]) and whose length is
/// `file_len`; `None` when it is none of them.
pub fn detect_bytes(head: &[u8], file_len: u64) -> Option<ModelFormat> {
    if head.starts_with(crate::packed::MAGIC) {
        return Some(ModelFormat::Packed);
    }
    if shrink_runtime::deploy::is_deploy(head) {
        return Some(ModelFormat::Deploy);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(ModelFormat::PyTorchZip);
    }
    if is_safetensors(head) {
        return Some(ModelFormat::Safetensors);
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Some(ModelFormat::PyTorchLegacy);
    }
    if is_onnx_proto(head, file_len) {
        return Some(ModelFormat::Onnx);
    }
    None
}

/// Reads the head of `path` and tells its format; an empty or unrecognised file is a one-line
/// error naming the file and listing the formats shrink reads.
pub fn detect(path: &Path) -> Result<ModelFormat> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| IoError::file(path, e))?;
    let file_len = file.metadata().map_err(|e| IoError::file(path, e))?.len();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.take(SNIFF_LEN as u64).read_to_end(&mut head).map_err(|e| IoError::file(path, e))?;
    detect_or_error(&head, file_len, path)
}

/// [`detect_bytes`], with the error [`detect`] gives.
pub fn detect_or_error(head: &[u8], file_len: u64, path: &Path) -> Result<ModelFormat> {
    if file_len == 0 {
        return Err(unrecognised(path, "empty file"));
    }
    detect_bytes(head, file_len).ok_or_else(|| unrecognised(path, "not a model file"))
}

fn unrecognised(path: &Path, what: &str) -> IoError {
    IoError::InFile {
        path: path.to_path_buf(),
        msg: format!("{what}: its content matches none of the formats shrink reads ({RECOGNISED})"),
    }
}

/// Whether `head` starts like a safetensors file (a header length of at most 100 MB, then `{`).
/// A header longer than the file still counts: the reader then reports the truncation.
pub fn is_safetensors(head: &[u8]) -> bool {
    head.len() >= 9
        && u64::from_le_bytes(head[..8].try_into().unwrap_or_default()) <= MAX_SAFETENSORS_HEADER
        && head[8] == b'{'
}

/// ModelProto field numbers and their wire types (0 varint, 2 length-delimited).
const ONNX_FIELDS: &[(u64, u64)] = &[
    (1, 0),  // ir_version
    (2, 2),  // producer_name
    (3, 2),  // producer_version
    (4, 2),  // domain
    (5, 0),  // model_version
    (6, 2),  // doc_string
    (7, 2),  // graph
    (8, 2),  // opset_import
    (14, 2), // metadata_props
    (20, 2), // training_info
    (25, 2), // functions
];

/// Whether `head` (the first bytes of a `file_len`-byte file) parses as the start of an ONNX
/// `ModelProto`: every field it shows is a ModelProto field of the right wire type, every
/// length fits the file, and the fields end exactly at the end of the file (or run past the
/// head, which is all that can be checked without reading the whole file).
pub fn is_onnx_proto(head: &[u8], file_len: u64) -> bool {
    let cut = (head.len() as u64) < file_len;
    let mut pos = 0usize;
    let mut fields = 0usize;
    loop {
        if pos as u64 == file_len {
            return fields > 0;
        }
        let Some((tag, after_tag)) = varint(head, pos) else { return cut && fields > 0 };
        let (field, wire) = (tag >> 3, tag & 7);
        if !ONNX_FIELDS.contains(&(field, wire)) {
            return false;
        }
        let Some((value, next)) = varint(head, after_tag) else { return cut };
        fields += 1;
        pos = next;
        if wire == 2 {
            let end = (next as u64).saturating_add(value);
            if end > file_len {
                return false;
            }
            if end > head.len() as u64 {
                return true;
            }
            pos = end as usize;
        }
    }
}

/// The protobuf varint at `pos` and the position after it (`None` if it runs past `bytes` or
/// is longer than 10 bytes).
fn varint(bytes: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let b = *bytes.get(pos + i)?;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, pos + i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_onnx_heads() {
        assert_eq!(varint(&[0x96, 0x01], 0), Some((150, 2)));
        assert_eq!(varint(&[0x96], 0), None);
        // ir_version 8, producer_name "x": the whole file.
        let small = [0x08, 0x08, 0x12, 0x01, b'x'];
        assert!(is_onnx_proto(&small, small.len() as u64));
        // A string that claims more bytes than the file has.
        assert!(!is_onnx_proto(&[0x08, 0x08, 0x12, 0x09, b'x'], 5));
        // Field 9 (not a ModelProto field).
        assert!(!is_onnx_proto(&[0x48, 0x01], 2));
        assert!(!is_onnx_proto(b"hello world", 11));
    }

    #[test]
    fn safetensors_and_others() {
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(detect_bytes(&st, st.len() as u64), Some(ModelFormat::Safetensors));
        assert_eq!(detect_bytes(b"PK\x03\x04rest", 8), Some(ModelFormat::PyTorchZip));
        assert_eq!(detect_bytes(b"\x80\x02\x8a\x0a", 4), Some(ModelFormat::PyTorchLegacy));
        assert_eq!(detect_bytes(b"SHRKPAK1........", 16), Some(ModelFormat::Packed));
        assert_eq!(detect_bytes(b"SHRKDPL1........", 16), Some(ModelFormat::Deploy));
        assert_eq!(detect_bytes(b"just some text\n", 15), None);
    }
}

//! The deploy format `.shrink` v1: a model's graph, every constant in a compact encoding, and
//! metadata, in one checksummed file that [`crate`] runs without any training stack.
//!
//! # Layout (version 1)
//!
//! All integers are little-endian.
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `SHRKDPL1` ([`MAGIC`]) |
//! | 4 | format version, u32 ([`VERSION`]) |
//! | 8 | header length `H`, u64 |
//! | `H` | header: UTF-8 JSON, below |
//! | 0..63 | zero padding to a multiple of 64: the payload area starts there |
//! | ... | payloads, each at a multiple of 64 bytes from the area's start (zero padding between) |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The header is `{"graph": G, "meta": M, "tensors": T}`:
//! - `G` = `{"values": [...], "nodes": [...], "inputs": [ids], "outputs": [ids]}`: each value
//!   `{"name", "fact": {"dtype", "shape"}, "def"}` with `def` `"input"`, `"const"` (its data is
//!   the tensor of the same name) or `{"node": {"node": k, "slot": s}}`; each node
//!   `{"name", "op": <Op as serde writes it>, "inputs": [ids], "outputs": [ids]}`. Values are
//!   in the order the graph was built: a node's outputs directly follow the values it reads,
//!   in node order.
//! - `M` = [`DeployMeta`]: dataset, mean/std, class names, producer, other strings.
//! - `T` = the tensor table, sorted by name: `{"name", "dtype", "shape", "encoding": "raw" |
//!   "bitpacked" | "codebook" | "sparse" | "signed", "offset", "length"}`, offsets from the start of the
//!   payload area.
//!
//! A payload is one [`Encoding`]: a tag byte then its fields ([`encoding`]): raw elements;
//! bit-packed codes ([`BitPacked`]); codebook ([`Codebook`]); sparse ([`Sparse`]). Their
//! integer streams ([`Codes`]) are bit-packed LSB-first at 1..=8 bits or canonical-Huffman
//! coded ([`huffman`]); signed codes ([`SignedCodes`]: an int8 tensor of small values, e.g.
//! int4 weight codes, at their bit width).
//!
//! # The compact form (version 2)
//!
//! The same layout with the version field 2, the header stored as raw DEFLATE of the same JSON
//! (`H` is the deflated length) and payloads packed back to back (alignment 1, no padding): for
//! models of a few KB, where the header would be a large share of the file ([`compact`]).
//!
//! # Reading untrusted files
//!
//! [`DeployModel::read`] checks the magic, the version and the checksum before anything else,
//! then every count, length and offset against the bytes left before it allocates; every
//! payload must decode (indices below the centroid count, gaps inside the shape) and the graph
//! is rebuilt through shape inference, which must agree with the stored facts. Errors are one
//! line naming the field (``tensor `fc1.weight`: payload [1234, 5678) ends past the file's
//! 4096 bytes``).
pub mod bitpacked;
pub mod codebook;
pub mod codes;
pub mod compact;
pub mod dtype;
pub mod encoding;
pub mod error;
pub mod file;
pub mod huffman;
pub mod model;
pub mod report;
pub mod signed;
pub mod sparse;
pub mod wire;

pub use bitpacked::{BitPacked, Int8Weights, QuantAxis, Scheme};
pub use codebook::Codebook;
pub use codes::{CodeStore, Codes};
pub use encoding::{Encoded, Encoding};
pub use error::DeployError;
pub use file::Form;
pub use model::{DeployMeta, DeployModel};
pub use report::{SizeReport, TensorSize};
pub use signed::SignedCodes;
pub use sparse::{CsrPattern, Sparse};

/// First bytes of a deploy file.
pub const MAGIC: &[u8; 8] = b"SHRKDPL1";
/// The format version of the plain form ([`Form::Plain`], written by default); this build also
/// reads and writes the compact form ([`compact::VERSION_COMPACT`], [`Form::Compact`]).
pub const VERSION: u32 = 1;
/// Alignment of payloads, in bytes.
pub const ALIGN: u64 = 64;

/// Whether `bytes` start like a deploy file.
pub fn is_deploy(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

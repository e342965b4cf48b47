//! ONNX interchange. [`export`] writes a shrink layer model as an ONNX graph (opset 17) that
//! onnxruntime runs with the same predictions, [`graph_export`] any open-IR graph (opset 21); the
//! protobuf wire format is written by the tiny encoder in [`proto`] (ONNX needs only varints,
//! fixed 32-bit floats and length-delimited fields, so no protobuf code generator is pulled in).
//! [`graph_import`] reads ONNX models into the open graph IR, decoding the protobuf with the
//! bounds-checked reader in [`decode`]; [`import`] turns such a graph into a layer model.
pub mod decode;
pub mod export;
pub mod graph_export;
pub mod graph_import;
pub mod import;
pub mod proto;

pub use export::{onnx_bytes, save_onnx};
pub use import::{import_onnx, is_onnx, load_onnx};

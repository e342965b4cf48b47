//! ONNX interchange. [`export`] writes a shrink model as an ONNX graph (opset 17) that
//! onnxruntime runs with the same predictions; the protobuf wire format is written by the tiny
//! encoder in [`proto`] (ONNX needs only varints, fixed 32-bit floats and length-delimited
//! fields, so no protobuf code generator is pulled in). [`import`] reads ONNX models (opset 9
//! onwards) back into the IR, decoding the protobuf with the bounds-checked reader in
//! [`decode`] and folding shape subgraphs with [`import_const`].
pub mod decode;
pub mod export;
pub mod graph_export;
pub mod graph_import;
pub mod import;
pub mod import_const;
pub mod proto;

pub use export::{onnx_bytes, save_onnx};
pub use import::{import_onnx, is_onnx, load_onnx};

//! ONNX interchange. [`export`] writes a shrink model as an ONNX graph (opset 17) that
//! onnxruntime runs with the same predictions; the protobuf wire format is written by the tiny
//! encoder in [`proto`] (ONNX needs only varints, fixed 32-bit floats and length-delimited
//! fields, so no protobuf code generator is pulled in).
pub mod export;
pub mod proto;

pub use export::{onnx_bytes, save_onnx};

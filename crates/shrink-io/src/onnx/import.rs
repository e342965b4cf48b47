//! ONNX → layer model: the graph importer ([`super::graph_import`]: every op mapping, constant
//! folding, shape arithmetic) followed by [`Model::from_graph`], which recognises the patterns
//! the 12 layer ops express and names layers after their PyTorch modules (`layer1.0.conv1`).
//! A model the layer IR cannot express is a one-line error naming the node and pointing at
//! `--engine graph`, which runs any graph the importer reads.
//!
//! Metadata written by shrink's own exporter (`shrink.meta`: normalization, class names) is
//! restored when it fits the imported model.
use super::decode;
use crate::error::{IoError, Result};
use shrink_ir::{Model, ModelMeta};
use std::path::Path;

/// Imports an ONNX model (ModelProto bytes) into the layer IR.
pub fn import_onnx(bytes: &[u8]) -> Result<Model> {
    let graph = super::graph_import::import_graph(bytes)?;
    let mut model = Model::from_graph(&graph)?;
    let m = decode::model(bytes)?;
    let stored: Option<ModelMeta> = m
        .metadata_props
        .iter()
        .find(|(k, _)| k == "shrink.meta")
        .and_then(|(_, v)| serde_json::from_str(v).ok());
    if let Some(meta) = stored {
        if meta.input_shape == model.meta.input_shape && meta.classes.len() == model.meta.classes.len() {
            model.meta = meta;
        }
    }
    Ok(model)
}

/// Whether `bytes` (a whole file) are an ONNX `ModelProto`, by content
/// ([`crate::format::is_onnx_proto`]), whatever the file is named.
pub fn is_onnx(bytes: &[u8]) -> bool {
    crate::format::is_onnx_proto(&bytes[..bytes.len().min(crate::format::SNIFF_LEN)], bytes.len() as u64)
}

/// Reads and imports an ONNX file.
pub fn load_onnx(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    import_onnx(&bytes).map_err(|e| e.in_file(path))
}

//! A PyTorch state_dict (`.pt` or `.safetensors`) loaded into an imported graph: the ONNX file
//! gives the architecture, the state_dict the weights, matched by name (`--graph M.onnx`).
//!
//! The graph must name its weights as the state_dict does: PyTorch's exporter keeps parameter
//! names when it does not fold constants (`torch.onnx.export(..., do_constant_folding=False)`,
//! plus `training=torch.onnx.TrainingMode.PRESERVE` to keep BatchNorm). Filling is all or
//! nothing: every check passes before any constant changes, and each failure is one line — a
//! key whose shape differs from the graph's, graph weights the state_dict lacks, state_dict keys
//! that match nothing (listed), or a graph whose BatchNorm was folded away by its exporter.
use crate::error::{IoError, Result};
use crate::format::ModelFormat;
use crate::masks::MASK_SUFFIX;
use crate::model_file::RawTensors;
use candle_core::Tensor;
use shrink_graph::{DType, Graph, ValueDef, ValueId};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Suffixes of PyTorch module parameters and buffers: a graph constant ending in one is a weight
/// the state_dict must provide.
const PARAM_SUFFIXES: &[&str] = &["weight", "bias", "running_mean", "running_var"];

/// How many names an error lists before "and N more".
const LIST: usize = 8;

fn err(msg: String) -> IoError {
    IoError::Format(msg)
}

fn listing(names: &[&str]) -> String {
    let shown: Vec<String> = names.iter().take(LIST).map(|n| format!("`{n}`")).collect();
    let more = names.len().saturating_sub(LIST);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Module path of a parameter name (`layer1.0.conv1.weight` → `layer1.0.conv1`).
fn module(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(m, _)| m)
}

fn pytorch_like(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The f32 values of a state_dict tensor, masked by its `{name}_mask` when present.
fn values(name: &str, t: &Tensor, mask: Option<&Tensor>) -> Result<Vec<f32>> {
    let t = match mask {
        Some(m) => t.mul(m).map_err(|e| err(format!("`{name}`: {e}")))?,
        None => t.clone(),
    };
    Ok(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
}

/// Fills the graph's f32 constants from `state_dict` by name; returns how many were filled.
/// See the module documentation for the checks.
pub fn fill_from_state_dict(graph: &mut Graph, state_dict: &BTreeMap<String, Tensor>) -> Result<usize> {
    let used: HashSet<ValueId> = graph.nodes.iter().flat_map(|n| n.inputs.iter().copied()).collect();
    let is_const = |g: &Graph, id: ValueId| matches!(g.values[id].def, ValueDef::Const(_));
    let mut updates: Vec<(ValueId, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut unmatched: Vec<&str> = Vec::new();
    for (key, t) in state_dict {
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        if let Some(base) = key.strip_suffix(MASK_SUFFIX) {
            if state_dict.contains_key(base) {
                continue;
            }
        }
        match graph.find(key).filter(|&id| is_const(graph, id)) {
            Some(id) => {
                let gt = graph.const_value(id).expect("a constant");
                if gt.dtype() != DType::F32 {
                    return Err(err(format!(
                        "`{key}` is a {:?} constant of the graph, not a weight",
                        gt.dtype()
                    )));
                }
                if gt.shape != t.dims() {
                    return Err(err(format!(
                        "`{key}` has shape {:?} in the state_dict, the graph expects {:?}",
                        t.dims(),
                        gt.shape
                    )));
                }
                let mask = state_dict.get(&format!("{key}{MASK_SUFFIX}"));
                updates.push((id, gt.shape.clone(), values(key, t, mask)?));
            }
            None => unmatched.push(key),
        }
    }
    let has_const = |suffix: &str| graph.consts().any(|(_, n, _)| n.ends_with(suffix));
    let bn_stats: Vec<&str> = unmatched
        .iter()
        .copied()
        .filter(|k| k.ends_with(".running_mean") || k.ends_with(".running_var"))
        .collect();
    if !bn_stats.is_empty() && !has_const(".running_mean") {
        return Err(err(format!(
            "the graph has no BatchNorm statistics ({}): its exporter folded BatchNorm into the \
             convolutions, so those names are gone; export the model again with \
             torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE, \
             do_constant_folding=False) to load a state_dict into it",
            listing(&bn_stats)
        )));
    }
    let modules: HashSet<&str> = state_dict.keys().map(|k| module(k)).collect();
    let filled: HashSet<ValueId> = updates.iter().map(|u| u.0).collect();
    let missing: Vec<&str> = graph
        .consts()
        .filter(|(id, name, t)| {
            used.contains(id)
                && !filled.contains(id)
                && t.dtype() == DType::F32
                && pytorch_like(name)
                && name.contains('.')
                && (PARAM_SUFFIXES.contains(&name.rsplit('.').next().unwrap_or(""))
                    || modules.contains(module(name)))
        })
        .map(|(_, name, _)| name)
        .collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "the state_dict has no {} ({} weight(s) of the graph missing)",
            listing(&missing),
            missing.len()
        )));
    }
    if !unmatched.is_empty() {
        return Err(err(format!(
            "{} state_dict key(s) match no weight of the graph: {} (was the ONNX file exported with \
             do_constant_folding=False from the same model?)",
            unmatched.len(),
            listing(&unmatched)
        )));
    }
    let n = updates.len();
    for (id, shape, v) in updates {
        graph.set_const(id, shrink_graph::Tensor::f32(shape, v));
    }
    Ok(n)
}

/// Reads a state_dict file (`.pt` or `.safetensors`, recognised by content); masks stored the
/// shrink way are expanded.
pub fn read_state_dict(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    let raw: RawTensors = match crate::format::detect(path)? {
        ModelFormat::Safetensors => crate::model_file::read_safetensors_streaming(path)?,
        ModelFormat::PyTorchZip | ModelFormat::PyTorchLegacy => crate::pt::read_pt(path)?,
        other => {
            let msg =
                format!("--graph takes its weights from a state_dict (.pt or .safetensors), not {other:?}");
            return Err(IoError::InFile { path: path.to_path_buf(), msg });
        }
    };
    let RawTensors { mut tensors, metadata } = raw;
    crate::masks::expand_masks(&mut tensors, &metadata).map_err(|e| e.in_file(path))?;
    Ok(tensors)
}

/// The graph of ONNX file `onnx` with its weights from the state_dict file `weights`; errors
/// name the file they concern.
pub fn load_graph_with_state_dict(onnx: &Path, weights: &Path) -> Result<Graph> {
    let mut graph = crate::onnx::graph_import::load_graph(onnx)?;
    let sd = read_state_dict(weights)?;
    fill_from_state_dict(&mut graph, &sd).map_err(|e| e.in_file(weights))?;
    Ok(graph)
}

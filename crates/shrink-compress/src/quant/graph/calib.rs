//! Calibration: the min/max of every activation that a quantized node reads, over batches run
//! through the reference executor (`shrink_runtime::exec`).

use super::{targets, QdqConfig, QdqError};
use shrink_graph::{Graph, Tensor, ValueId};
use std::collections::BTreeMap;

/// Observed `(min, max)` per activation value name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActRanges {
    pub ranges: BTreeMap<String, (f32, f32)>,
}

impl ActRanges {
    /// The range of value `name`.
    pub fn get(&self, name: &str) -> Option<(f32, f32)> {
        self.ranges.get(name).copied()
    }
}

/// Run `batches` (each the graph inputs in order) and record the min/max of every activation
/// feeding a Conv/Gemm/MatMul that `cfg` quantizes. NaNs are ignored; a value that only ever
/// holds NaN (or nothing) gets the range `(0, 0)`.
pub fn calibrate(graph: &Graph, batches: &[Vec<Tensor>], cfg: &QdqConfig) -> Result<ActRanges, QdqError> {
    cfg.check(graph)?;
    if batches.is_empty() {
        return Err(QdqError::NoBatches);
    }
    let mut watched: Vec<ValueId> = Vec::new();
    for t in targets(graph, cfg) {
        for (_, v) in t.acts {
            if !watched.contains(&v) {
                watched.push(v);
            }
        }
    }
    let mut probe = graph.clone();
    probe.set_outputs(watched.clone());
    let mut lo = vec![f32::INFINITY; watched.len()];
    let mut hi = vec![f32::NEG_INFINITY; watched.len()];
    for (b, inputs) in batches.iter().enumerate() {
        let outs = shrink_runtime::exec::run(&probe, inputs)
            .map_err(|e| QdqError::Run { batch: b, msg: e.to_string() })?;
        for (k, t) in outs.iter().enumerate() {
            let v = t.as_f32().ok_or_else(|| QdqError::Run {
                batch: b,
                msg: format!("activation `{}` is not f32", graph.values[watched[k]].name),
            })?;
            for &x in v.iter().filter(|x| !x.is_nan()) {
                lo[k] = lo[k].min(x);
                hi[k] = hi[k].max(x);
            }
        }
    }
    let ranges = watched
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let r = if lo[k] <= hi[k] { (lo[k], hi[k]) } else { (0.0, 0.0) };
            (graph.values[v].name.clone(), r)
        })
        .collect();
    Ok(ActRanges { ranges })
}

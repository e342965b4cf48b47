//! [`DeployModel`]: a graph, its constants' encodings and metadata.
use super::encoding::{Encoded, Encoding};
use super::error::{bail, Result};
use serde::{Deserialize, Serialize};
use shrink_graph::{Graph, Tensor, TensorData, ValueDef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a deployed model needs besides its graph: how inputs are normalised and what the
/// outputs mean.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployMeta {
    /// The data set the model was trained on (`mnist`, `cifar10`).
    #[serde(default)]
    pub dataset: Option<String>,
    /// Per-channel input mean (subtracted before the graph runs).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel input standard deviation (divided by).
    #[serde(default)]
    pub std: Vec<f32>,
    /// Class names, by output index.
    #[serde(default)]
    pub classes: Vec<String>,
    /// What wrote the file (`shrink 0.1.0`).
    #[serde(default)]
    pub producer: String,
    /// Anything else.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// A model ready to deploy: its graph, every constant's encoding by name, and metadata.
///
/// In `graph`, a constant stored [`Encoding::Raw`] holds its data (shared with `tensors`); a
/// constant stored any other way holds an empty f32 placeholder while its value's fact keeps
/// the real shape: read it from `tensors` (its compressed form) or run
/// [`DeployModel::to_graph_f32`].
#[derive(Debug, Clone, PartialEq)]
pub struct DeployModel {
    pub graph: Graph,
    pub tensors: BTreeMap<String, Encoded>,
    pub meta: DeployMeta,
}

/// The placeholder of an encoded constant in [`DeployModel::graph`].
pub(crate) fn placeholder() -> Tensor {
    Tensor { shape: vec![0], data: TensorData::F32(Vec::new().into()) }
}

impl DeployModel {
    /// Every constant of `graph` stored raw.
    pub fn from_graph(graph: Graph, meta: DeployMeta) -> Self {
        let tensors = graph.consts().map(|(_, name, t)| (name.to_string(), Encoded::raw(t))).collect();
        DeployModel { graph, tensors, meta }
    }

    /// Stores constant `name` as `encoding`, which must hold as many elements as its shape
    /// (and decode); the graph keeps a placeholder for it unless it is raw.
    pub fn set_encoding(&mut self, name: &str, encoding: Encoding) -> Result<()> {
        let fail = |m: String| super::DeployError::invalid(format!("tensor `{name}`: {m}"));
        let Some(id) = self.graph.find(name) else { return Err(fail("no such value in the graph".into())) };
        let value = &self.graph.values[id];
        if !matches!(value.def, ValueDef::Const(_)) {
            return Err(fail("is not a constant".into()));
        }
        let shape = value.fact.fixed_shape().map_err(|e| fail(e.to_string()))?;
        if encoding.dtype() != value.fact.dtype {
            return Err(fail(format!(
                "encoding gives {:?}, the graph has {:?}",
                encoding.dtype(),
                value.fact.dtype
            )));
        }
        encoding.validate(&shape).map_err(|e| fail(e.to_string()))?;
        let data = match &encoding {
            Encoding::Raw(d) => Tensor { shape: shape.clone(), data: d.clone() },
            _ => placeholder(),
        };
        let fact = value.fact.clone();
        let v = &mut self.graph.values[id];
        v.def = ValueDef::Const(Arc::new(data));
        v.fact = fact;
        self.tensors.insert(name.to_string(), Encoded { shape, encoding });
        Ok(())
    }

    /// The graph with every constant decoded: runnable by [`crate::exec::run`].
    pub fn to_graph_f32(&self) -> Result<Graph> {
        let mut g = self.graph.clone();
        for id in 0..g.values.len() {
            if !matches!(g.values[id].def, ValueDef::Const(_)) {
                continue;
            }
            let name = &g.values[id].name;
            let Some(enc) = self.tensors.get(name) else { bail!("constant `{name}` has no tensor") };
            if matches!(enc.encoding, Encoding::Raw(_)) {
                continue;
            }
            let t = enc.to_tensor().map_err(|e| e.context(&format!("tensor `{name}`")))?;
            g.set_const(id, t);
        }
        Ok(g)
    }
}

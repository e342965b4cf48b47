//! shrink's model IR: a [`Graph`] of layers whose weights live in a [`ParamStore`] under
//! PyTorch state_dict names, with per-weight pruning masks and quantizer slots, a forward pass
//! in eval/train mode on candle, the model zoo and per-layer statistics.
pub mod alloc;
pub mod error;
pub mod from_graph;
pub mod graph;
pub mod graph_exec;
pub mod init;
pub mod model;
pub mod ops;
pub mod params;
pub mod prepared;
pub mod stats;
pub mod to_graph;
pub mod view;
pub mod zoo;

pub use error::{IrError, Result};
pub use graph::{Graph, Node, NodeId, Op, ParamKind, ParamSpec};
pub use model::{ForwardHooks, Mode, Model, ModelMeta};
pub use ops::backward;
pub use params::{Param, ParamStore, QuantSlot};
pub use prepared::{Kernel, Prepared, WeightRows};
pub use stats::{model_stats, LayerStats, ModelStats};

/// Re-exported so downstream crates use the same candle version.
pub use candle_core;

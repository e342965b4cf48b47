//! Structured pruning of open-IR graphs, driven only by each op's axes mapping.
//!
//! [`depgraph`] couples index slots of every (value, axis) through the ops' `AxesMapping`s (a
//! union-find, Torch-Pruning's DepGraph idea) and groups the coupled channels into layers;
//! [`importance`] scores channels; [`plan`] selects what to remove into a serializable
//! [`PrunePlan`]; [`apply`] slices the constants and updates shape attributes. The three steps
//! are independent: a saved plan re-applies to the same graph.

pub mod apply;
pub mod depgraph;
pub mod importance;
pub mod plan;

pub use apply::apply_plan;
pub use depgraph::{ChannelGroup, DepGraph};
pub use importance::{channel_scores, GroupImportance};
pub use plan::{plan_local, Cut, PrunePlan};

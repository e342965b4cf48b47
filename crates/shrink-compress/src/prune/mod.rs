//! Pruning: unstructured magnitude masks ([`unstructured`]) and structured removal of neurons,
//! filters and channels with residual-aware dependency groups ([`deps`], [`structured`]).
//! Every numeric rule is a small pure function in [`select`] matching the seeds' PyTorch/NumPy.
pub mod deps;
pub mod graph;
pub mod select;
pub mod sensitivity;
pub mod structured;
pub mod torch_like;
pub mod unstructured;

pub use structured::{
    prune_structured, remove_zero_groups, Importance, KeepRule, LayerChange, StructuredPlan,
};
pub use unstructured::{prune_magnitude, MagnitudeRule, WeightImportance};

use thiserror::Error;

/// Errors of the pruning passes; each names the offending layer or value.
#[derive(Debug, Error)]
pub enum PruneError {
    #[error("{field} must be in [0, 1], got {value}")]
    Ratio { field: String, value: f64 },
    #[error("unknown layer `{layer}` (prunable: {known})")]
    UnknownLayer { layer: String, known: String },
    #[error("pruning would remove every unit of layer `{0}`")]
    RemovesAll(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Ir(#[from] shrink_ir::IrError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for pruning.
pub type Result<T> = std::result::Result<T, PruneError>;

/// Checks that a ratio is a finite number in [0, 1].
pub fn check_ratio(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(PruneError::Ratio { field: field.to_string(), value })
    }
}

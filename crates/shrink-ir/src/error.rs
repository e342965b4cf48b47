//! The IR's error type: structured fields so callers can print one precise line.
use thiserror::Error;

/// Errors raised while building, checking or running a model graph.
#[derive(Debug, Error)]
pub enum IrError {
    #[error("unknown architecture `{0}` (known: {1})")]
    UnknownArch(String, String),
    #[error("node `{node}`: {msg}")]
    Node { node: String, msg: String },
    #[error("missing weight `{0}`")]
    MissingParam(String),
    #[error("weight `{name}` has shape {got:?}, the model expects {expected:?}")]
    ParamShape { name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("input has shape {got:?}, the model expects [batch, {expected:?}]")]
    InputShape { expected: Vec<usize>, got: Vec<usize> },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias for the IR crate.
pub type Result<T> = std::result::Result<T, IrError>;

/// Shorthand for a node-scoped error.
pub(crate) fn node_err(node: &str, msg: impl Into<String>) -> IrError {
    IrError::Node { node: node.to_string(), msg: msg.into() }
}

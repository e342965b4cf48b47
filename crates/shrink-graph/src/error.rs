//! Errors of graph construction and shape inference.

use thiserror::Error;

/// An error of one operator's shape inference or attribute check; the graph adds the node name.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum OpError {
    /// The node got the wrong number of inputs.
    #[error("expects {expected} inputs, got {got}")]
    Arity { expected: String, got: usize },
    /// Input shapes or dtypes do not fit the operator.
    #[error("{0}")]
    Shape(String),
    /// An attribute is out of range or inconsistent.
    #[error("attribute `{name}`: {msg}")]
    Attr { name: &'static str, msg: String },
    /// A symbolic dimension where the operator needs a number.
    #[error("needs a fixed size where the shape has symbolic dimension `{0}`")]
    Symbolic(String),
}

/// An error building or checking a [`crate::Graph`]; always names the node or value.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GraphError {
    /// Shape inference of a node failed.
    #[error("node `{node}` ({op}): {source}")]
    Op {
        node: String,
        op: &'static str,
        #[source]
        source: OpError,
    },
    /// A name is defined twice.
    #[error("value `{0}` is defined twice")]
    Duplicate(String),
    /// A node reads a value that nothing defines (or that is defined only later: a cycle).
    #[error("node `{node}` reads `{value}`, which no input, constant or earlier node defines")]
    Dangling { node: String, value: String },
    /// An output names no value.
    #[error("graph output `{0}` is not defined")]
    MissingOutput(String),
    /// The nodes cannot be ordered.
    #[error("the graph has a cycle through node `{0}`")]
    Cycle(String),
}

/// Shorthand for operator results.
pub type OpResult<T> = Result<T, OpError>;

/// Build an [`OpError::Shape`] from format arguments.
#[macro_export]
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::error::OpError::Shape(format!($($arg)*)) };
}

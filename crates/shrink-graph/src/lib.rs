//! The open graph IR.
//!
//! A [`Graph`] is a list of [`Node`]s in topological order over typed [`Value`]s. A value is a
//! graph input, a named constant (weights keep their PyTorch names, e.g.
//! `layer1.0.conv1.weight`) or one output of a node; its [`Fact`] is a dtype and a shape whose
//! dimensions may be symbolic (a batch dimension `N`). Every operator is one struct implementing
//! [`OpDef`]: shape inference, an [`AxesMapping`] (which input axes flow to which output axes —
//! what structured pruning reads) and a cost. [`Op`] lists every operator once; backends (ONNX
//! import/export, the runtime, candle) lower ops through one exhaustive match over it.
//!
//! This crate has no numeric kernels and no file formats: it depends only on serde.

pub mod axes;
pub mod error;
pub mod fact;
pub mod graph;
pub mod ops;
pub mod tensor;

pub use axes::{AxesMapping, AxisRel, Port};
pub use error::{GraphError, OpError};
pub use fact::{DType, Dim, Fact};
pub use graph::{Graph, Node, NodeId, Value, ValueDef, ValueId};
pub use ops::{Cost, InFact, Op, OpDef};
pub use tensor::{Tensor, TensorData};

//! Operators. Every operator is one struct implementing [`OpDef`]; [`Op`] lists them all once.
//!
//! Families, one file each: `conv` (Conv, ConvTranspose), `matmul` (Gemm, MatMul), `norm`
//! (BatchNorm, LayerNorm, GroupNorm, InstanceNorm), `pool` (Pool, GlobalPool, Resize),
//! `activation` (Unary, LeakyRelu, HardSigmoid, Elu, Gelu, Clip, Softmax, LogSoftmax), `binary`
//! (Binary, Where, Cast), `reduce` (Reduce), `shape` (Reshape, Flatten, Transpose, Squeeze,
//! Unsqueeze, Expand, Shape), `combine` (Concat, Split, Slice, Pad, Gather, Identity), `quant`
//! (QuantizeLinear, DequantizeLinear).
//!
//! Adding an operator: its struct and `OpDef` impl in the family file, one line in
//! [`declare_ops!`] below; the compiler then points at the one match of each backend (ONNX
//! import/export in shrink-io, evaluation in shrink-runtime).

pub mod activation;
pub mod binary;
pub mod combine;
pub mod conv;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod shape;

use crate::axes::AxesMapping;
use crate::error::{OpError, OpResult};
use crate::fact::Fact;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// One input as shape inference sees it: its fact, and its data when it is a constant.
#[derive(Debug, Clone, Copy)]
pub struct InFact<'a> {
    pub fact: &'a Fact,
    pub value: Option<&'a Tensor>,
}

/// Compute cost of one node. Symbolic dimensions (the batch) count as 1: figures are per example.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-accumulate operations.
    pub macs: u64,
}

/// What every operator implements.
pub trait OpDef {
    /// The operator's type name (ONNX spelling), used in errors.
    fn name(&self) -> &'static str;
    /// Output facts from input facts (and constant inputs' data); checks attributes and arity.
    fn infer(&self, ins: &[InFact]) -> OpResult<Vec<Fact>>;
    /// How input axes relate to output axes (what structured pruning reads).
    fn axes(&self, ins: &[&Fact], outs: &[&Fact]) -> AxesMapping;
    /// Cost per example.
    fn cost(&self, _ins: &[&Fact], _outs: &[&Fact]) -> Cost {
        Cost::default()
    }
}

/// Check that `ins` has between `min` and `max` entries.
pub fn check_arity(ins: &[InFact], min: usize, max: usize) -> OpResult<()> {
    if ins.len() < min || ins.len() > max {
        let expected = if min == max { min.to_string() } else { format!("{min} to {max}") };
        return Err(OpError::Arity { expected, got: ins.len() });
    }
    Ok(())
}

/// Product of the fixed dimensions (symbolic ones count as 1), for per-example costs.
pub fn per_example_volume(fact: &Fact) -> u64 {
    fact.shape.iter().map(|d| d.fixed().unwrap_or(1) as u64).product()
}

macro_rules! declare_ops {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Every operator of the IR. Backends lower ops through one exhaustive match over it.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        pub enum Op {
            $($variant($ty)),*
        }

        impl Op {
            /// The operator's [`OpDef`].
            pub fn def(&self) -> &dyn OpDef {
                match self {
                    $(Op::$variant(o) => o),*
                }
            }
        }

        $(impl From<$ty> for Op {
            fn from(o: $ty) -> Op {
                Op::$variant(o)
            }
        })*
    };
}

declare_ops! {
    Conv(conv::Conv),
    ConvTranspose(conv::ConvTranspose),
    Gemm(matmul::Gemm),
    MatMul(matmul::MatMul),
    BatchNorm(norm::BatchNorm),
    LayerNorm(norm::LayerNorm),
    GroupNorm(norm::GroupNorm),
    InstanceNorm(norm::InstanceNorm),
    Pool(pool::Pool),
    GlobalPool(pool::GlobalPool),
    Resize(pool::Resize),
    Unary(activation::Unary),
    LeakyRelu(activation::LeakyRelu),
    HardSigmoid(activation::HardSigmoid),
    Elu(activation::Elu),
    Gelu(activation::Gelu),
    Clip(activation::Clip),
    Softmax(activation::Softmax),
    LogSoftmax(activation::LogSoftmax),
    Binary(binary::Binary),
    Where(binary::Where),
    Cast(binary::Cast),
    Reduce(reduce::Reduce),
    Reshape(shape::Reshape),
    Flatten(shape::Flatten),
    Transpose(shape::Transpose),
    Squeeze(shape::Squeeze),
    Unsqueeze(shape::Unsqueeze),
    Expand(shape::Expand),
    Shape(shape::Shape),
    Concat(combine::Concat),
    Split(combine::Split),
    Slice(combine::Slice),
    Pad(combine::Pad),
    Gather(combine::Gather),
    Identity(combine::Identity),
    QuantizeLinear(quant::QuantizeLinear),
    DequantizeLinear(quant::DequantizeLinear),
}

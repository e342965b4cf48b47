//! Constant and runtime tensor data (row-major, contiguous).

use crate::fact::{DType, Fact};
use std::sync::Arc;

/// The elements of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Arc<[f32]>),
    I64(Arc<[i64]>),
    Bool(Arc<[bool]>),
}

/// A dense row-major tensor with fixed shape. Cloning shares the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    /// An f32 tensor; `data.len()` must equal the shape's volume.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "f32 tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::F32(data.into()) }
    }

    /// An i64 tensor; `data.len()` must equal the shape's volume.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "i64 tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::I64(data.into()) }
    }

    /// A bool tensor; `data.len()` must equal the shape's volume.
    pub fn bool(shape: Vec<usize>, data: Vec<bool>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "bool tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::Bool(data.into()) }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// Its fact (all dimensions fixed).
    pub fn fact(&self) -> Fact {
        Fact::new(self.dtype(), &self.shape)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when it has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The f32 elements, if it is f32.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The i64 elements, if it is i64.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The bool elements, if it is bool.
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            TensorData::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Integer view of an i64 or f32 tensor (shape-like inputs).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::I64(v) => v.to_vec(),
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    /// Float view of any tensor.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.to_vec(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
        }
    }
}

//! Constant and runtime tensor data (row-major, contiguous).

use crate::fact::{DType, Fact};
use std::sync::Arc;

/// The elements of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Arc<[f32]>),
    I64(Arc<[i64]>),
    Bool(Arc<[bool]>),
    I8(Arc<[i8]>),
    U8(Arc<[u8]>),
    I32(Arc<[i32]>),
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

    /// An i8 tensor; `data.len()` must equal the shape's volume.
    pub fn i8(shape: Vec<usize>, data: Vec<i8>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "i8 tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::I8(data.into()) }
    }

    /// A u8 tensor; `data.len()` must equal the shape's volume.
    pub fn u8(shape: Vec<usize>, data: Vec<u8>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "u8 tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::U8(data.into()) }
    }

    /// An i32 tensor; `data.len()` must equal the shape's volume.
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "i32 tensor: shape/data mismatch");
        Tensor { shape, data: TensorData::I32(data.into()) }
    }

    /// A tensor of `dtype` from integer values, each saturated to the dtype's range (bool:
    /// non-zero is true). Used for zero points and quantization codes.
    pub fn from_i64s(dtype: DType, shape: Vec<usize>, v: &[i64]) -> Self {
        let sat = |lo: i64, hi: i64| v.iter().map(move |&x| x.clamp(lo, hi));
        match dtype {
            DType::F32 => Tensor::f32(shape, v.iter().map(|&x| x as f32).collect()),
            DType::I64 => Tensor::i64(shape, v.to_vec()),
            DType::Bool => Tensor::bool(shape, v.iter().map(|&x| x != 0).collect()),
            DType::I8 => Tensor::i8(shape, sat(i8::MIN.into(), i8::MAX.into()).map(|x| x as i8).collect()),
            DType::U8 => Tensor::u8(shape, sat(0, u8::MAX.into()).map(|x| x as u8).collect()),
            DType::I32 => {
                Tensor::i32(shape, sat(i32::MIN.into(), i32::MAX.into()).map(|x| x as i32).collect())
            }
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::I32(_) => DType::I32,
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

    /// The i8 elements, if it is i8.
    pub fn as_i8(&self) -> Option<&[i8]> {
        match &self.data {
            TensorData::I8(v) => Some(v),
            _ => None,
        }
    }

    /// The u8 elements, if it is u8.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::U8(v) => Some(v),
            _ => None,
        }
    }

    /// The i32 elements, if it is i32.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Integer view of any tensor (shape-like inputs; f32 truncates toward zero).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::I64(v) => v.to_vec(),
            TensorData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
        }
    }

    /// Float view of any tensor.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.to_vec(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f32).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Bytes of its elements in memory (what a file stores them in, before encoding).
    pub fn byte_len(&self) -> usize {
        let per = match self.dtype() {
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
            DType::Bool | DType::I8 | DType::U8 => 1,
        };
        self.len() * per
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_tensors_keep_their_dtype_and_saturate() {
        let t = Tensor::from_i64s(DType::I8, vec![4], &[-200, -128, 5, 300]);
        assert_eq!(t.as_i8(), Some(&[-128i8, -128, 5, 127][..]));
        assert_eq!(t.dtype(), DType::I8);
        let u = Tensor::from_i64s(DType::U8, vec![3], &[-1, 7, 256]);
        assert_eq!(u.as_u8(), Some(&[0u8, 7, 255][..]));
        let w = Tensor::from_i64s(DType::I32, vec![2], &[-(1 << 40), 9]);
        assert_eq!(w.as_i32(), Some(&[i32::MIN, 9][..]));
        assert_eq!(u.to_f32_vec(), vec![0.0, 7.0, 255.0]);
        assert_eq!(t.to_i64_vec(), vec![-128, -128, 5, 127]);
        assert_eq!(w.byte_len(), 8);
        for d in [DType::I8, DType::U8, DType::I32] {
            assert_eq!(DType::from_onnx_code(d.onnx_code()), Some(d));
        }
        assert_eq!(DType::I8.onnx_code(), 3);
        assert_eq!(DType::U8.onnx_code(), 2);
        assert_eq!(DType::I32.onnx_code(), 6);
    }
}

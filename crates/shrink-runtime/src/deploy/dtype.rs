//! The element types a raw tensor payload can hold: their codes in the file, sizes and byte
//! conversions. Every match over [`DType`] / [`TensorData`] of the deploy format is here, so a
//! new dtype is one arm in each function.
use super::error::{bail, Result};
use shrink_graph::{DType, TensorData};

/// The dtype's code in payloads.
pub fn code(d: DType) -> u8 {
    match d {
        DType::F32 => 0,
        DType::I64 => 1,
        DType::Bool => 2,
        DType::I8 => 3,
        DType::U8 => 4,
        DType::I32 => 5,
    }
}

/// The dtype of a payload code.
pub fn from_code(c: u8) -> Result<DType> {
    Ok(match c {
        0 => DType::F32,
        1 => DType::I64,
        2 => DType::Bool,
        3 => DType::I8,
        4 => DType::U8,
        5 => DType::I32,
        _ => bail!("unknown dtype code {c}"),
    })
}

/// Bytes per element.
pub fn size(d: DType) -> usize {
    match d {
        DType::F32 => 4,
        DType::I64 => 8,
        DType::Bool | DType::I8 | DType::U8 => 1,
        DType::I32 => 4,
    }
}

/// The dtype of some data.
pub fn of(data: &TensorData) -> DType {
    match data {
        TensorData::F32(_) => DType::F32,
        TensorData::I64(_) => DType::I64,
        TensorData::Bool(_) => DType::Bool,
        TensorData::I8(_) => DType::I8,
        TensorData::U8(_) => DType::U8,
        TensorData::I32(_) => DType::I32,
    }
}

/// Number of elements.
pub fn len(data: &TensorData) -> usize {
    match data {
        TensorData::F32(v) => v.len(),
        TensorData::I64(v) => v.len(),
        TensorData::Bool(v) => v.len(),
        TensorData::I8(v) => v.len(),
        TensorData::U8(v) => v.len(),
        TensorData::I32(v) => v.len(),
    }
}

/// Appends the elements, little-endian.
pub fn write(data: &TensorData, out: &mut Vec<u8>) {
    match data {
        TensorData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::Bool(v) => out.extend(v.iter().map(|&b| b as u8)),
        TensorData::I8(v) => out.extend(v.iter().map(|&b| b as u8)),
        TensorData::U8(v) => out.extend_from_slice(v),
        TensorData::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}

/// Elements of `dtype` from exactly `bytes` (whose length the caller checked).
pub fn read(dtype: DType, bytes: &[u8]) -> Result<TensorData> {
    fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }
    Ok(match dtype {
        DType::F32 => TensorData::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(arr(c))).collect()),
        DType::I64 => TensorData::I64(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(arr(c))).collect()),
        DType::Bool => {
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                bail!("bool element {i} is {}, not 0 or 1", bytes[i]);
            }
            TensorData::Bool(bytes.iter().map(|&b| b == 1).collect())
        }
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U8 => TensorData::U8(bytes.to_vec().into()),
        DType::I32 => TensorData::I32(bytes.chunks_exact(4).map(|c| i32::from_le_bytes(arr(c))).collect()),
    })
}

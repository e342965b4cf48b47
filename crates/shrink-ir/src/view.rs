//! Reading a tensor's f32 values where they live, without a copy when possible.
use crate::error::Result;
use candle_core::{CpuStorage, DType, Storage, Tensor};

/// Calls `f` with the values of `t` in row-major order: in place for a contiguous f32 CPU
/// tensor (a 100 MB weight is not duplicated), through a temporary copy otherwise.
pub fn with_f32_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    if t.dtype() == DType::F32 {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(data)), Some((a, b))) = (&*storage, layout.contiguous_offsets())
        {
            return Ok(f(&data[a..b]));
        }
    }
    let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(f(&v))
}

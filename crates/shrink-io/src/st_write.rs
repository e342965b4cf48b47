//! Streaming safetensors writer: the header is built from names, dtypes and shapes alone, then
//! every tensor's bytes go to the writer straight from its own buffer, so writing a model never
//! holds a second copy of it (the old writer held the weights three more times: f32 copies, their
//! bytes and the serialized file). The output is byte-identical to `safetensors::serialize` for
//! the same tensors (same order: descending dtype, then name; header padded to 8 bytes).
use crate::error::{IoError, Result};
use candle_core::Tensor;
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use std::collections::HashMap;
use std::io::Write;

/// The safetensors crate's limit on the header length.
const MAX_HEADER: usize = 100_000_000;
/// Elements converted per chunk where values cannot be written in place (big-endian hosts).
const CHUNK: usize = 1 << 16;

/// One tensor to write.
pub enum StTensor {
    /// Written as F32 (a tensor of another dtype is converted).
    F32(Tensor),
    /// Raw U8 bytes of the given shape (e.g. a bit-packed mask).
    U8 { shape: Vec<usize>, bytes: Vec<u8> },
}

impl StTensor {
    fn dtype(&self) -> Dtype {
        match self {
            StTensor::F32(_) => Dtype::F32,
            StTensor::U8 { .. } => Dtype::U8,
        }
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            StTensor::F32(t) => t.dims().to_vec(),
            StTensor::U8 { shape, .. } => shape.clone(),
        }
    }

    fn data_len(&self) -> usize {
        match self {
            StTensor::F32(t) => t.elem_count() * 4,
            StTensor::U8 { bytes, .. } => bytes.len(),
        }
    }

    fn write_to<W: Write>(&self, w: &mut W) -> Result<()> {
        match self {
            StTensor::F32(t) => shrink_ir::view::with_f32_values(t, |v| write_f32s(w, v))?.map_err(write_err),
            StTensor::U8 { bytes, .. } => w.write_all(bytes).map_err(write_err),
        }
    }
}

fn write_err(e: std::io::Error) -> IoError {
    IoError::Format(format!("write failed: {e}"))
}

/// Writes `v` as little-endian f32 bytes (in place on little-endian hosts).
pub fn write_f32s<W: Write>(w: &mut W, v: &[f32]) -> std::io::Result<()> {
    if cfg!(target_endian = "little") {
        return w.write_all(bytemuck::cast_slice(v));
    }
    let mut buf = Vec::with_capacity(CHUNK.min(v.len()) * 4);
    for chunk in v.chunks(CHUNK) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Writes `tensors` and string `metadata` as a safetensors file to `w` (deterministic for
/// equal input). Tensor data goes out tensor by tensor; `w` should be buffered.
pub fn write_safetensors<W: Write>(
    w: &mut W,
    mut tensors: Vec<(String, StTensor)>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    tensors.sort_by(|(ln, lt), (rn, rt)| rt.dtype().cmp(&lt.dtype()).then(ln.cmp(rn)));
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for (name, t) in &tensors {
        let n = t.data_len();
        infos.push((
            name.clone(),
            TensorInfo { dtype: t.dtype(), shape: t.shape(), data_offsets: (offset, offset + n) },
        ));
        offset += n;
    }
    let header = Metadata::new(metadata, infos)?;
    let mut header = serde_json::to_string(&header)?.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    if header.len() > MAX_HEADER {
        return Err(IoError::Format(format!("safetensors header of {} bytes is too large", header.len())));
    }
    w.write_all(&(header.len() as u64).to_le_bytes()).map_err(write_err)?;
    w.write_all(&header).map_err(write_err)?;
    for (_, t) in &tensors {
        t.write_to(w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use safetensors::tensor::TensorView;

    #[test]
    fn matches_the_safetensors_crate() {
        let a = Tensor::from_vec(vec![1f32, -2.5, 3.0, 0.0, 7.0, 8.0], (2, 3), &Device::Cpu).unwrap();
        let b = Tensor::from_vec(vec![0.5f32], 1, &Device::Cpu).unwrap();
        let bits = vec![0b1010_0101u8, 1];
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        let mut ours = Vec::new();
        let tensors = vec![
            ("b".to_string(), StTensor::F32(b.clone())),
            ("m".to_string(), StTensor::U8 { shape: vec![2], bytes: bits.clone() }),
            ("a".to_string(), StTensor::F32(a.clone())),
        ];
        write_safetensors(&mut ours, tensors, Some(meta.clone())).unwrap();
        let fa: Vec<u8> =
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect();
        let fb: Vec<u8> = 0.5f32.to_le_bytes().to_vec();
        let views = vec![
            ("a", TensorView::new(Dtype::F32, vec![2, 3], &fa).unwrap()),
            ("b", TensorView::new(Dtype::F32, vec![1], &fb).unwrap()),
            ("m", TensorView::new(Dtype::U8, vec![2], &bits).unwrap()),
        ];
        let theirs = safetensors::serialize(views, Some(meta)).unwrap();
        assert_eq!(ours, theirs);
    }
}

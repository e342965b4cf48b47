//! How safetensors model files store pruning masks, so a pruned file is never larger than the
//! dense one:
//! - **implied**: when the mask is exactly `weight != 0` (every kept weight is non-zero, every
//!   pruned one is zero, as pruning leaves them), nothing is written; the weight's name goes in
//!   the metadata list [`IMPLIED_MASKS_KEY`] and the mask is rebuilt from the weight on load;
//! - **bits**: any other 0/1 mask is a `{weight}_mask` tensor of dtype U8 and shape
//!   `[ceil(n/8)]`, element `i` (row-major) being bit `i % 8` of byte `i / 8`
//!   (least-significant bit first, the order of `shrink_runtime::pack` at 1 bit) — 1/32 of the
//!   f32 weight;
//! - **f32**: a mask with values other than 0 and 1 (never made by shrink) stays an f32
//!   `{weight}_mask` tensor, as every mask was before (such files still load).
use crate::error::{IoError, Result};
use candle_core::{DType, Device, Tensor};
use shrink_ir::view::with_f32_values;
use std::collections::BTreeMap;

/// Metadata key listing (as a JSON array) the weights whose masks are implied by their zeros.
pub const IMPLIED_MASKS_KEY: &str = "shrink.implied_masks";
/// Suffix of a stored mask's tensor name (the naming of `torch.nn.utils.prune`).
pub const MASK_SUFFIX: &str = "_mask";

/// How one mask is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskEncoding {
    /// Not stored: the mask is `weight != 0`.
    Implied,
    /// Stored as bits (see the module docs).
    Bits(Vec<u8>),
    /// Stored as f32 (values other than 0 and 1).
    F32,
}

/// The most compact encoding that restores `mask` of `weight` exactly.
pub fn encode(weight: &Tensor, mask: &Tensor) -> Result<MaskEncoding> {
    if weight.dims() != mask.dims() {
        return Err(IoError::Format(format!(
            "mask shape {:?} differs from its weight's {:?}",
            mask.dims(),
            weight.dims()
        )));
    }
    let enc = with_f32_values(mask, |m| {
        if m.iter().any(|&x| x != 0.0 && x != 1.0) {
            return Ok(MaskEncoding::F32);
        }
        let implied = with_f32_values(weight, |w| w.iter().zip(m).all(|(&w, &k)| (w != 0.0) == (k != 0.0)))?;
        Ok::<_, IoError>(if implied { MaskEncoding::Implied } else { MaskEncoding::Bits(pack_bits(m)) })
    })??;
    Ok(enc)
}

/// Packs keep flags (`x != 0`) at 1 bit each, least-significant bit first.
pub fn pack_bits(mask: &[f32]) -> Vec<u8> {
    mask.chunks(8)
        .map(|c| c.iter().enumerate().fold(0u8, |b, (i, &x)| b | (((x != 0.0) as u8) << i)))
        .collect()
}

/// The `n` 0/1 values packed by [`pack_bits`].
pub fn unpack_bits(bytes: &[u8], n: usize) -> Vec<f32> {
    (0..n).map(|i| ((bytes[i / 8] >> (i % 8)) & 1) as f32).collect()
}

/// Rebuilds stored masks as f32 `{weight}_mask` tensors of their weight's shape: the implied
/// ones listed in `metadata` and the bit-packed (U8) ones. f32 masks are left as they are.
pub fn expand_masks(
    tensors: &mut BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let bad = |m: String| IoError::Format(m);
    if let Some(list) = metadata.get(IMPLIED_MASKS_KEY) {
        let names: Vec<String> = serde_json::from_str(list)
            .map_err(|e| bad(format!("bad `{IMPLIED_MASKS_KEY}` metadata: {e}")))?;
        for name in names {
            let w =
                tensors.get(&name).ok_or_else(|| bad(format!("implied mask of missing weight `{name}`")))?;
            let keep =
                with_f32_values(w, |v| v.iter().map(|&x| (x != 0.0) as u8 as f32).collect::<Vec<_>>())?;
            let mask = Tensor::from_vec(keep, w.dims(), &Device::Cpu)?;
            let key = format!("{name}{MASK_SUFFIX}");
            if tensors.insert(key.clone(), mask).is_some() {
                return Err(bad(format!("mask `{key}` is both stored and implied")));
            }
        }
    }
    let packed: Vec<String> = tensors
        .iter()
        .filter(|(k, t)| k.ends_with(MASK_SUFFIX) && t.dtype() == DType::U8)
        .map(|(k, _)| k.clone())
        .collect();
    for key in packed {
        let base = &key[..key.len() - MASK_SUFFIX.len()];
        let dims = tensors
            .get(base)
            .ok_or_else(|| bad(format!("mask `{key}` has no weight `{base}`")))?
            .dims()
            .to_vec();
        let n: usize = dims.iter().product();
        let bytes = tensors[&key].flatten_all()?.to_vec1::<u8>()?;
        if bytes.len() != n.div_ceil(8) {
            return Err(bad(format!(
                "bit mask `{key}` has {} bytes, its weight {dims:?} needs {}",
                bytes.len(),
                n.div_ceil(8)
            )));
        }
        tensors.insert(key, Tensor::from_vec(unpack_bits(&bytes, n), dims.as_slice(), &Device::Cpu)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    #[test]
    fn bits_round_trip_lsb_first() {
        let m = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let b = pack_bits(&m);
        assert_eq!(b, vec![0b0011_1001, 0b0000_0001]);
        assert_eq!(unpack_bits(&b, m.len()), m.to_vec());
    }

    #[test]
    fn picks_the_encoding() {
        let w = t(&[0.5, 0.0, -1.0, 0.0]);
        assert_eq!(encode(&w, &t(&[1.0, 0.0, 1.0, 0.0])).unwrap(), MaskEncoding::Implied);
        // A kept weight that is exactly zero: the zeros do not tell the mask.
        assert_eq!(encode(&w, &t(&[1.0, 1.0, 1.0, 0.0])).unwrap(), MaskEncoding::Bits(vec![0b0111]));
        assert_eq!(encode(&w, &t(&[0.5, 0.0, 1.0, 0.0])).unwrap(), MaskEncoding::F32);
    }
}

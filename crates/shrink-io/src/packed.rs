//! Bit-packed model files: every quantized weight (one with a [`QuantSlot`]) is stored as its
//! integer codes packed at the slot's bit width plus one f32 scale and offset per tensor or
//! output channel; other tensors stay f32. A 4-bit model is about 1/8 of its fp32 file.
//!
//! Layout: `MAGIC` (8 bytes), header length (u64 LE), a JSON header (version, model metadata,
//! graph, and per tensor its shape and byte ranges), then the data. The codes are
//! `round_half_even((w - offset)/scale)` clamped to `[qmin, qmax]`, i.e. what the forward
//! pass's fake quant computes, so a loaded model has exactly the fake-quant model's effective
//! weights: the stored weight becomes `code*scale + offset`, which fake-quantizes to itself.
//! Pruning masks are stored at 1 bit per weight. [`crate::load_model`] recognizes the magic.
use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use crate::model_file::SHRINK_VERSION;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use shrink_ir::ops::round_half_even;
use shrink_ir::{zoo, Graph, Model, ModelMeta, QuantSlot};
use shrink_runtime::{pack, unpack, PackedTensor};
use std::collections::BTreeMap;
use std::path::Path;

/// First bytes of a bit-packed shrink model file.
pub const MAGIC: &[u8; 8] = b"SHRKPAK1";

/// Byte range `[start, end)` in the data section.
type Span = [u64; 2];

#[derive(Serialize, Deserialize)]
struct Header {
    version: String,
    meta: ModelMeta,
    graph: Graph,
    tensors: Vec<Entry>,
    /// Activation quantizers by node name (f32 parameters, nothing to pack).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    act_quant: BTreeMap<String, QuantSlot>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    /// f32 values (unquantized tensors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f32: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quant: Option<PackedQuant>,
    /// Keep-mask at 1 bit per element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mask: Option<Span>,
}

#[derive(Serialize, Deserialize)]
struct PackedQuant {
    scheme: String,
    bits: u32,
    qmin: f32,
    qmax: f32,
    axis: Option<usize>,
    channels: usize,
    /// Codes minus `qmin`, packed at `bits`.
    codes: Span,
    /// `channels` f32 scales then `channels` f32 offsets.
    params: Span,
}

/// Whether `bytes` start like a bit-packed model file.
pub fn is_packed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn push(data: &mut Vec<u8>, bytes: &[u8]) -> Span {
    let start = data.len() as u64;
    data.extend_from_slice(bytes);
    [start, data.len() as u64]
}

/// Integer codes of `w` under `slot` (exactly the fake-quant op's), checked to fit its bits.
fn codes_of(
    name: &str,
    w: &[f32],
    dims: &[usize],
    slot: &QuantSlot,
    keep: Option<&[bool]>,
) -> Result<Vec<i32>> {
    let bad = |m: String| IoError::Format(format!("cannot bit-pack `{name}`: {m}"));
    let levels = slot.qmax as f64 - slot.qmin as f64 + 1.0;
    if !(1..=16).contains(&slot.bits) || slot.qmin.fract() != 0.0 || levels > (1u64 << slot.bits) as f64 {
        return Err(bad(format!("codes {}..={} do not fit {} bits", slot.qmin, slot.qmax, slot.bits)));
    }
    let channels = slot.scales.len();
    let inner = match slot.axis {
        None => w.len(),
        Some(0) if dims.first() == Some(&channels) => w.len() / channels.max(1),
        Some(a) => return Err(bad(format!("per-channel axis {a} with {channels} scales on shape {dims:?}"))),
    };
    if channels == 0 || slot.offsets.len() != channels || (slot.axis.is_none() && channels != 1) {
        return Err(bad(format!("{channels} scales and {} offsets", slot.offsets.len())));
    }
    let mut out = Vec::with_capacity(w.len());
    for (i, &x) in w.iter().enumerate() {
        let c = i / inner.max(1);
        let (s, o) = (slot.scales[c], slot.offsets[c]);
        let kept = keep.is_none_or(|k| k[i]);
        if s == 0.0 {
            // Fake quant passes such a slice through; it packs only if it is the offset.
            if kept && x != o {
                return Err(bad(format!("zero scale on a non-constant slice (channel {c})")));
            }
            out.push(slot.qmin as i32);
        } else {
            out.push(round_half_even((x - o) / s).clamp(slot.qmin, slot.qmax) as i32);
        }
    }
    Ok(out)
}

/// The bytes of a bit-packed model file (deterministic for equal models).
pub fn packed_bytes(model: &Model) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut tensors = Vec::new();
    for (name, p) in model.params.iter() {
        let t = p.var.as_tensor();
        let shape = t.dims().to_vec();
        let w = t.flatten_all()?.to_vec1::<f32>()?;
        let keep: Option<Vec<bool>> = match model.params.mask(name) {
            Some(m) => Some(m.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x != 0.0).collect()),
            None => None,
        };
        let mask = match &keep {
            Some(k) => Some(push(
                &mut data,
                &pack(&k.iter().map(|&b| b as u32).collect::<Vec<_>>(), 1).map_err(pack_err)?,
            )),
            None => None,
        };
        let (f32_span, quant) = match model.params.quant(name) {
            Some(slot) if !w.is_empty() => {
                let codes = codes_of(name, &w, &shape, slot, keep.as_deref())?;
                let channels = slot.scales.len();
                let packed = PackedTensor::new(
                    &codes,
                    slot.bits,
                    slot.qmin as i32,
                    w.len() / channels,
                    slot.scales.clone(),
                    slot.offsets.clone(),
                    None,
                )
                .map_err(pack_err)?;
                let codes = push(&mut data, &packed.codes);
                let mut params = f32_bytes(&slot.scales);
                params.extend(f32_bytes(&slot.offsets));
                let params = push(&mut data, &params);
                let q = PackedQuant {
                    scheme: slot.scheme.clone(),
                    bits: slot.bits,
                    qmin: slot.qmin,
                    qmax: slot.qmax,
                    axis: slot.axis,
                    channels,
                    codes,
                    params,
                };
                (None, Some(q))
            }
            _ => (Some(push(&mut data, &f32_bytes(&w))), None),
        };
        tensors.push(Entry { name: name.clone(), shape, f32: f32_span, quant, mask });
    }
    let header = Header {
        version: SHRINK_VERSION.to_string(),
        meta: model.meta.clone(),
        graph: model.graph.clone(),
        tensors,
        act_quant: model.act_quant.clone(),
    };
    let header = serde_json::to_vec(&header)?;
    let mut out = Vec::with_capacity(16 + header.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    Ok(out)
}

fn pack_err(e: shrink_runtime::PackError) -> IoError {
    IoError::Format(e.to_string())
}

/// Writes `model` as a bit-packed file, atomically.
pub fn save_packed(model: &Model, path: &Path) -> Result<()> {
    let bytes = packed_bytes(model)?;
    write_atomic(path, &bytes)
}

/// Parses a bit-packed model file (`arch` replaces the stored graph with a zoo one, as for
/// safetensors files).
pub fn model_from_packed(bytes: &[u8], arch: Option<&str>) -> Result<Model> {
    let bad = |m: &str| IoError::Format(format!("bad bit-packed model file: {m}"));
    if !is_packed(bytes) || bytes.len() < 16 {
        return Err(bad("no header"));
    }
    let hlen = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
    let hend = 16usize.checked_add(usize::try_from(hlen).map_err(|_| bad("header length"))?);
    let hend = hend.filter(|&e| e <= bytes.len()).ok_or_else(|| bad("truncated header"))?;
    let header: Header = serde_json::from_slice(&bytes[16..hend]).map_err(|e| bad(&e.to_string()))?;
    let data = &bytes[hend..];
    let slice = |s: Span| -> Result<&[u8]> {
        let (a, b) = (s[0] as usize, s[1] as usize);
        if a > b || b > data.len() {
            return Err(bad("tensor data out of range"));
        }
        Ok(&data[a..b])
    };
    let mut tensors = BTreeMap::new();
    let mut quant = BTreeMap::new();
    for e in header.tensors {
        let n: usize = e.shape.iter().product();
        if let Some(m) = e.mask {
            let bits = unpack(slice(m)?, 1, n).map_err(pack_err)?;
            let m: Vec<f32> = bits.iter().map(|&b| b as f32).collect();
            tensors
                .insert(format!("{}_mask", e.name), Tensor::from_vec(m, e.shape.as_slice(), &Device::Cpu)?);
        }
        let values = match (&e.f32, &e.quant) {
            (Some(s), None) => {
                let v = to_f32s(slice(*s)?);
                if v.len() != n {
                    return Err(bad(&format!("`{}` has {} values for shape {:?}", e.name, v.len(), e.shape)));
                }
                v
            }
            (None, Some(q)) => {
                let params = to_f32s(slice(q.params)?);
                if params.len() != 2 * q.channels || q.channels == 0 || !n.is_multiple_of(q.channels) {
                    return Err(bad(&format!("`{}` has bad scales", e.name)));
                }
                let (scales, offsets) = params.split_at(q.channels);
                let t = PackedTensor {
                    bits: q.bits,
                    len: n,
                    inner: n / q.channels,
                    qmin: q.qmin as i32,
                    scales: scales.to_vec(),
                    offsets: offsets.to_vec(),
                    codes: slice(q.codes)?.to_vec(),
                    mask: None,
                };
                let v = t.dequantize().map_err(|err| bad(&format!("`{}`: {err}", e.name)))?;
                quant.insert(
                    e.name.clone(),
                    QuantSlot {
                        scheme: q.scheme.clone(),
                        bits: q.bits,
                        scales: t.scales,
                        offsets: t.offsets,
                        qmin: q.qmin,
                        qmax: q.qmax,
                        axis: q.axis,
                    },
                );
                v
            }
            _ => return Err(bad(&format!("`{}` needs exactly one of f32 data or codes", e.name))),
        };
        tensors.insert(e.name, Tensor::from_vec(values, e.shape.as_slice(), &Device::Cpu)?);
    }
    let (graph, meta) = match arch {
        Some(a) => (zoo::graph(a)?, ModelMeta { arch: a.to_string(), ..header.meta }),
        None => (header.graph, header.meta),
    };
    let mut model = crate::model_file::model_from_tensors(graph, meta, tensors, quant)?;
    crate::model_file::attach_act_quant(&mut model, header.act_quant)?;
    Ok(model)
}

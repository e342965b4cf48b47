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
use crate::atomic::write_atomic_with;
use crate::error::{IoError, Result};
use crate::model_file::SHRINK_VERSION;
use crate::st_write::write_f32s;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use shrink_ir::ops::round_half_even;
use shrink_ir::view::with_f32_values;
use shrink_ir::{zoo, Graph, Model, ModelMeta, QuantSlot};
use shrink_runtime::{pack, packed_len, unpack, PackedTensor};
use std::collections::BTreeMap;
use std::io::Write;
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

#[derive(Clone, Serialize, Deserialize)]
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

#[derive(Clone, Serialize, Deserialize)]
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

fn to_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Elements coded per chunk when writing (a multiple of 8, so chunks pack to whole bytes at
/// any bit width and their concatenation is the packing of the whole tensor).
const CHUNK: usize = 1 << 16;

/// Hands out consecutive spans of the data section.
struct Spans(u64);

impl Spans {
    fn take(&mut self, len: usize) -> Span {
        let start = self.0;
        self.0 += len as u64;
        [start, self.0]
    }
}

/// Per-element integer coding of a quantized tensor: exactly the fake-quant op's codes.
struct Coder<'a> {
    name: &'a str,
    slot: &'a QuantSlot,
    /// Elements per channel.
    inner: usize,
}

impl<'a> Coder<'a> {
    /// Checks that `slot`'s codes fit its bits and its scales fit `dims`.
    fn new(name: &'a str, dims: &[usize], slot: &'a QuantSlot) -> Result<Self> {
        let bad = |m: String| IoError::Format(format!("cannot bit-pack `{name}`: {m}"));
        let levels = slot.qmax as f64 - slot.qmin as f64 + 1.0;
        if !(1..=16).contains(&slot.bits) || slot.qmin.fract() != 0.0 || levels > (1u64 << slot.bits) as f64 {
            return Err(bad(format!("codes {}..={} do not fit {} bits", slot.qmin, slot.qmax, slot.bits)));
        }
        let n: usize = dims.iter().product();
        let channels = slot.scales.len();
        let inner = match slot.axis {
            None => n,
            Some(0) if dims.first() == Some(&channels) => n / channels.max(1),
            Some(a) => {
                return Err(bad(format!("per-channel axis {a} with {channels} scales on shape {dims:?}")))
            }
        };
        if channels == 0 || slot.offsets.len() != channels || (slot.axis.is_none() && channels != 1) {
            return Err(bad(format!("{channels} scales and {} offsets", slot.offsets.len())));
        }
        Ok(Coder { name, slot, inner })
    }

    /// The code of element `i` (value `x`, kept or pruned), minus `qmin`.
    fn code(&self, i: usize, x: f32, kept: bool) -> Result<u32> {
        let c = i / self.inner.max(1);
        let (s, o) = (self.slot.scales[c], self.slot.offsets[c]);
        let code = if s == 0.0 {
            // Fake quant passes such a slice through; it packs only if it is the offset.
            if kept && x != o {
                return Err(IoError::Format(format!(
                    "cannot bit-pack `{}`: zero scale on a non-constant slice (channel {c})",
                    self.name
                )));
            }
            self.slot.qmin
        } else {
            round_half_even((x - o) / s).clamp(self.slot.qmin, self.slot.qmax)
        };
        Ok((code - self.slot.qmin) as u32)
    }
}

/// What one parameter contributes to the file: its header entry, and how its data is made.
struct Planned<'a> {
    entry: Entry,
    weight: &'a Tensor,
    mask: Option<&'a Tensor>,
    coder: Option<Coder<'a>>,
}

/// Header entries with their data spans, computed from shapes and slots alone (no data).
fn plan(model: &Model) -> Result<Vec<Planned<'_>>> {
    let mut spans = Spans(0);
    let mut out = Vec::new();
    for (name, p) in model.params.iter() {
        let weight = p.var.as_tensor();
        let shape = weight.dims().to_vec();
        let n = weight.elem_count();
        let mask = model.params.mask(name);
        let mask_span = mask.map(|_| spans.take(packed_len(n, 1)));
        let (f32_span, quant, coder) = match model.params.quant(name) {
            Some(slot) if n > 0 => {
                let coder = Coder::new(name, &shape, slot)?;
                let q = PackedQuant {
                    scheme: slot.scheme.clone(),
                    bits: slot.bits,
                    qmin: slot.qmin,
                    qmax: slot.qmax,
                    axis: slot.axis,
                    channels: slot.scales.len(),
                    codes: spans.take(packed_len(n, slot.bits)),
                    params: spans.take(8 * slot.scales.len()),
                };
                (None, Some(q), Some(coder))
            }
            _ => (Some(spans.take(4 * n)), None, None),
        };
        let entry = Entry { name: name.clone(), shape, f32: f32_span, quant, mask: mask_span };
        out.push(Planned { entry, weight, mask, coder });
    }
    Ok(out)
}

fn io_err(e: std::io::Error) -> IoError {
    IoError::Format(format!("write failed: {e}"))
}

/// Writes one planned tensor's data (mask bits, then codes and scales/offsets or f32 values),
/// chunk by chunk from the tensors' own buffers.
fn write_data<W: Write>(w: &mut W, p: &Planned<'_>) -> Result<()> {
    with_f32_values(p.weight, |values| {
        let write_with_keep = |w: &mut W, keep: Option<&[f32]>| -> Result<()> {
            if let Some(keep) = keep {
                for chunk in keep.chunks(CHUNK) {
                    w.write_all(&crate::masks::pack_bits(chunk)).map_err(io_err)?;
                }
            }
            match &p.coder {
                Some(coder) => {
                    let mut codes = Vec::with_capacity(CHUNK.min(values.len()));
                    for (k, chunk) in values.chunks(CHUNK).enumerate() {
                        codes.clear();
                        for (j, &x) in chunk.iter().enumerate() {
                            let i = k * CHUNK + j;
                            codes.push(coder.code(i, x, keep.is_none_or(|m| m[i] != 0.0))?);
                        }
                        w.write_all(&pack(&codes, coder.slot.bits).map_err(pack_err)?).map_err(io_err)?;
                    }
                    write_f32s(w, &coder.slot.scales).map_err(io_err)?;
                    write_f32s(w, &coder.slot.offsets).map_err(io_err)
                }
                None => write_f32s(w, values).map_err(io_err),
            }
        };
        match p.mask {
            Some(m) => with_f32_values(m, |keep| write_with_keep(w, Some(keep)))?,
            None => write_with_keep(w, None),
        }
    })?
}

/// Writes `model` as a bit-packed file to `w` (deterministic for equal models): the header is
/// planned from shapes and slots, then the data streams out tensor by tensor, so writing holds
/// no copy of the model.
pub fn write_packed<W: Write>(model: &Model, w: &mut W) -> Result<()> {
    let planned = plan(model)?;
    let header = Header {
        version: SHRINK_VERSION.to_string(),
        meta: model.meta.clone(),
        graph: model.graph.clone(),
        tensors: planned.iter().map(|p| p.entry.clone()).collect(),
        act_quant: model.act_quant.clone(),
    };
    let header = serde_json::to_vec(&header)?;
    w.write_all(MAGIC).map_err(io_err)?;
    w.write_all(&(header.len() as u64).to_le_bytes()).map_err(io_err)?;
    w.write_all(&header).map_err(io_err)?;
    for p in &planned {
        write_data(w, p)?;
    }
    Ok(())
}

/// The bytes of a bit-packed model file (see [`write_packed`]).
pub fn packed_bytes(model: &Model) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_packed(model, &mut out)?;
    Ok(out)
}

fn pack_err(e: shrink_runtime::PackError) -> IoError {
    IoError::Format(e.to_string())
}

/// Writes `model` as a bit-packed file, atomically and streamed (see [`write_packed`]).
pub fn save_packed(model: &Model, path: &Path) -> Result<()> {
    write_atomic_with(path, |file| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write_packed(model, &mut w)?;
        w.flush().map_err(io_err)
    })
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

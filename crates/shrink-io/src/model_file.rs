//! shrink model files: safetensors with PyTorch-named tensors plus metadata (graph, arch,
//! input shape, normalization, classes, quantizers, version). Plain PyTorch state_dicts saved as
//! safetensors load too: their architecture is recognized from keys and shapes.
//!
//! Masks are implied by exact zeros or stored as bits under `{weight}_mask` (the naming of
//! `torch.nn.utils.prune`), see [`crate::masks`]; older files' f32 masks still load.
//!
//! The format of a file is recognised by its content ([`crate::format`]), never by its name.
use crate::atomic::write_atomic_with;
use crate::error::{IoError, Result};
use crate::format::ModelFormat;
use crate::masks::{MaskEncoding, IMPLIED_MASKS_KEY, MASK_SUFFIX};
use crate::st_write::{write_safetensors, StTensor};
use candle_core::{Device, Tensor};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use shrink_ir::{zoo, Graph, Model, ModelMeta, ParamKind, ParamStore, QuantSlot};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Metadata key of a training checkpoint's loop state (see `shrink_train::checkpoint`).
pub const TRAIN_STATE_KEY: &str = "shrink.train_state";
/// Version string written into every file.
pub const SHRINK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Metadata key of the layer-graph format version ([`GRAPH_VERSION`]) of `shrink.graph`.
pub const GRAPH_VERSION_KEY: &str = "shrink.graph_version";
/// Version of the `shrink.graph` layout this build writes and the newest it reads. Files written
/// before the key existed have none and are version 1.
pub const GRAPH_VERSION: u32 = 1;

/// Checks that this build reads the stored graph's version (absent: version 1, the files written
/// before versioning); a newer or unreadable version is a one-line error.
pub fn check_graph_version(metadata: &BTreeMap<String, String>) -> Result<()> {
    let Some(v) = metadata.get(GRAPH_VERSION_KEY) else { return Ok(()) };
    match v.trim().parse::<u32>() {
        Ok(n) if (1..=GRAPH_VERSION).contains(&n) => Ok(()),
        Ok(n) if n > GRAPH_VERSION => Err(IoError::Format(format!(
            "the model's graph is version {n}, newer than this shrink reads (up to {GRAPH_VERSION}); \
             upgrade shrink (this is {SHRINK_VERSION})"
        ))),
        _ => Err(IoError::Format(format!("bad `{GRAPH_VERSION_KEY}` metadata `{v}`"))),
    }
}

/// Metadata key holding all of shrink's metadata as one JSON object. A single key keeps files
/// byte-identical across runs (safetensors stores metadata in a randomly ordered hash map).
const METADATA_KEY: &str = "shrink";

/// shrink's metadata folded into the single [`METADATA_KEY`] entry.
fn packed_metadata(metadata: &BTreeMap<String, String>) -> Result<HashMap<String, String>> {
    Ok(HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(metadata)?)]))
}

/// Serializes tensors (as f32) + string metadata into safetensors bytes (deterministic for
/// equal input).
pub fn safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let entries = tensors.iter().map(|(n, t)| (n.clone(), StTensor::F32(t.clone()))).collect();
    let mut out = Vec::new();
    write_safetensors(&mut out, entries, Some(packed_metadata(&metadata)?))?;
    Ok(out)
}

/// Writes `model` to `path` atomically (temp file + rename), tensor by tensor from the
/// weights' own buffers (no copy of the model is built in memory). Masks are implied or bits
/// ([`crate::masks`]).
pub fn save_model(model: &Model, path: &Path) -> Result<()> {
    let (tensors, meta) = model_entries(model)?;
    let meta = packed_metadata(&meta)?;
    write_atomic_with(path, |file| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write_safetensors(&mut w, tensors, Some(meta))?;
        std::io::Write::flush(&mut w).map_err(|e| IoError::Format(format!("write failed: {e}")))
    })
}

/// Named tensors to write.
type Entries = Vec<(String, StTensor)>;

/// The tensors and metadata [`save_model`] writes.
fn model_entries(model: &Model) -> Result<(Entries, BTreeMap<String, String>)> {
    let mut tensors = Vec::new();
    for (name, p) in model.params.iter() {
        tensors.push((name.clone(), StTensor::F32(p.var.as_tensor().clone())));
    }
    let mut implied = Vec::new();
    for (name, m) in model.params.masks() {
        let key = format!("{name}{MASK_SUFFIX}");
        match crate::masks::encode(model.params.get(name)?.var.as_tensor(), m)? {
            MaskEncoding::Implied => implied.push(name.clone()),
            MaskEncoding::Bits(bytes) => {
                tensors.push((key, StTensor::U8 { shape: vec![bytes.len()], bytes }))
            }
            MaskEncoding::F32 => tensors.push((key, StTensor::F32(m.clone()))),
        }
    }
    let mut meta = BTreeMap::new();
    if !implied.is_empty() {
        meta.insert(IMPLIED_MASKS_KEY.into(), serde_json::to_string(&implied)?);
    }
    meta.insert("shrink.version".into(), SHRINK_VERSION.to_string());
    meta.insert("shrink.meta".into(), serde_json::to_string(&model.meta)?);
    meta.insert("shrink.graph".into(), serde_json::to_string(&model.graph)?);
    meta.insert(GRAPH_VERSION_KEY.into(), GRAPH_VERSION.to_string());
    if !model.params.quants().is_empty() {
        meta.insert("shrink.quant".into(), serde_json::to_string(model.params.quants())?);
    }
    if !model.act_quant.is_empty() {
        meta.insert("shrink.act_quant".into(), serde_json::to_string(&model.act_quant)?);
    }
    Ok((tensors, meta))
}

/// Raw contents of a safetensors file: tensors by name (f32; U8 ones, bit-packed masks, stay
/// U8) and the metadata map.
pub struct RawTensors {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// Reads every tensor of a safetensors file as f32 (F64/F16/BF16/I64 are converted; U8 stays
/// U8).
pub fn read_safetensors(path: &Path) -> Result<RawTensors> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    parse_safetensors(&bytes).map_err(|e| e.in_file(path))
}

/// Parses safetensors bytes (see [`read_safetensors`]).
pub fn parse_safetensors(bytes: &[u8]) -> Result<RawTensors> {
    let st = SafeTensors::deserialize(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let metadata = shrink_metadata(&header)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let t = if view.dtype() == Dtype::U8 {
            Tensor::from_vec(view.data().to_vec(), view.shape(), &Device::Cpu)?
        } else {
            variable(values_f32(&name, view.dtype(), view.data())?, view.shape())?
        };
        tensors.insert(name, t);
    }
    Ok(RawTensors { tensors, metadata })
}

/// Reads a safetensors file one tensor at a time, straight into the tensors' own buffers, so
/// loading never holds the file and the weights at once: peak memory is the model plus one
/// tensor of a non-f32 dtype (f32, the usual case, is read in place).
pub fn read_safetensors_streaming(path: &Path) -> Result<RawTensors> {
    stream_safetensors(path, |_| Ok(())).map_err(|e| e.in_file(path))
}

/// The metadata of a safetensors file (shrink's keys unpacked), read from its header alone.
pub fn read_safetensors_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let mut file = std::fs::File::open(path).map_err(|e| IoError::file(path, e))?;
    let (header, _, _) = read_header(&mut file, path).map_err(|e| e.in_file(path))?;
    shrink_metadata(&header).map_err(|e| e.in_file(path))
}

/// Reads the header of an open safetensors file: (header, data start offset, file length).
fn read_header(file: &mut std::fs::File, path: &Path) -> Result<(safetensors::tensor::Metadata, u64, u64)> {
    use std::io::Read;
    let file_len = file.metadata().map_err(|e| IoError::file(path, e))?.len();
    let truncated = || IoError::Format("truncated safetensors file".into());
    let mut len8 = [0u8; 8];
    file.read_exact(&mut len8).map_err(|_| truncated())?;
    let header_len = u64::from_le_bytes(len8);
    // safetensors caps headers at 100 MB; anything longer than the file is truncation.
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(IoError::Format(format!("safetensors header length {header_len} does not fit the file")));
    }
    let mut head = vec![0u8; header_len as usize];
    file.read_exact(&mut head).map_err(|_| truncated())?;
    let header: safetensors::tensor::Metadata =
        serde_json::from_slice(&head).map_err(|e| IoError::Format(format!("bad safetensors header: {e}")))?;
    Ok((header, 8 + header_len, file_len))
}

/// [`read_safetensors_streaming`], calling `check` on the metadata before any tensor is read.
fn stream_safetensors(
    path: &Path,
    check: impl FnOnce(&BTreeMap<String, String>) -> Result<()>,
) -> Result<RawTensors> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| IoError::file(path, e))?;
    let (header, data_start, file_len) = read_header(&mut file, path)?;
    let truncated = || IoError::Format("truncated safetensors file".into());
    // The tensors must tile the data section exactly, each as long as its shape and dtype say.
    let mut infos: Vec<(String, &safetensors::tensor::TensorInfo)> = header.tensors().into_iter().collect();
    infos.sort_by_key(|(_, info)| info.data_offsets);
    let mut end = 0usize;
    for (name, info) in &infos {
        let (a, b) = info.data_offsets;
        let want = info.shape.iter().product::<usize>() * info.dtype.bitsize() / 8;
        if a != end || b < a || b - a != want {
            return Err(IoError::Format(format!("tensor `{name}`: bad data offsets {a}..{b}")));
        }
        end = b;
    }
    let expected = data_start + end as u64;
    if expected != file_len {
        return Err(IoError::Format(format!(
            "safetensors file is {file_len} bytes but its header describes {expected}{}",
            if file_len < expected { " (truncated)" } else { "" }
        )));
    }
    let metadata = shrink_metadata(&header)?;
    check(&metadata)?;
    let mut tensors = BTreeMap::new();
    for (name, info) in infos {
        let (a, b) = info.data_offsets;
        file.seek(SeekFrom::Start(data_start + a as u64)).map_err(|e| IoError::file(path, e))?;
        if info.dtype == Dtype::U8 {
            let mut raw = vec![0u8; b - a];
            file.read_exact(&mut raw).map_err(|_| truncated())?;
            tensors.insert(name, Tensor::from_vec(raw, info.shape.as_slice(), &Device::Cpu)?);
            continue;
        }
        let values = if info.dtype == Dtype::F32 && cfg!(target_endian = "little") {
            let mut v = vec![0f32; (b - a) / 4];
            file.read_exact(bytemuck::cast_slice_mut(&mut v)).map_err(|_| truncated())?;
            v
        } else {
            let mut raw = vec![0u8; b - a];
            file.read_exact(&mut raw).map_err(|_| truncated())?;
            values_f32(&name, info.dtype, &raw)?
        };
        if values.len() != info.shape.iter().product::<usize>() {
            return Err(IoError::Format(format!(
                "tensor `{name}`: data does not match shape {:?}",
                info.shape
            )));
        }
        tensors.insert(name, variable(values, &info.shape)?);
    }
    Ok(RawTensors { tensors, metadata })
}

/// A tensor created as a candle variable, so the model's parameter store adopts its buffer
/// instead of copying it (`Var::from_tensor` copies plain tensors).
fn variable(values: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(candle_core::Var::from_vec(values, shape, &Device::Cpu)?.into_inner())
}

/// The string metadata of a safetensors header, shrink's packed key unfolded.
fn shrink_metadata(header: &safetensors::tensor::Metadata) -> Result<BTreeMap<String, String>> {
    let mut metadata: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in header.metadata().clone().unwrap_or_default() {
        if k == METADATA_KEY {
            let inner: BTreeMap<String, String> = serde_json::from_str(&v)
                .map_err(|e| IoError::Format(format!("bad `{METADATA_KEY}` metadata: {e}")))?;
            metadata.extend(inner);
        } else {
            metadata.insert(k, v);
        }
    }
    Ok(metadata)
}

/// Little-endian tensor bytes of `dtype` as f32 values.
fn values_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F64 => {
            data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        }
        Dtype::F16 => data.chunks_exact(2).map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::I64 => {
            data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect()
        }
        other => return Err(IoError::Format(format!("tensor `{name}` has unsupported dtype {other:?}"))),
    })
}

pub(crate) fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: renormalize.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Builds a model from named tensors and a graph, checking every key and shape.
pub fn model_from_tensors(
    graph: Graph,
    meta: ModelMeta,
    mut tensors: BTreeMap<String, Tensor>,
    quant: BTreeMap<String, QuantSlot>,
) -> Result<Model> {
    let mut store = ParamStore::new();
    for node in &graph.nodes {
        for spec in node.op.params() {
            let name = format!("{}.{}", node.name, spec.suffix);
            let t = tensors.remove(&name).ok_or_else(|| IoError::MissingKey(name.clone()))?;
            if t.dims() != spec.shape.as_slice() {
                return Err(IoError::KeyShape {
                    key: name,
                    expected: spec.shape.clone(),
                    got: t.dims().to_vec(),
                });
            }
            store.insert(name, t, spec.kind)?;
        }
    }
    let mut masks = Vec::new();
    let mut unexpected = Vec::new();
    for (name, t) in tensors {
        if let Some(base) = name.strip_suffix(MASK_SUFFIX) {
            if store.contains(base) {
                masks.push((base.to_string(), t));
                continue;
            }
        }
        if !name.ends_with("num_batches_tracked") {
            unexpected.push(name);
        }
    }
    if let Some(first) = unexpected.first() {
        return Err(IoError::UnexpectedKey(first.clone(), unexpected.len()));
    }
    for (name, m) in masks {
        store.set_mask(&name, m)?;
    }
    for (name, slot) in quant {
        store.set_quant(&name, slot)?;
    }
    Ok(Model::new(graph, store, meta)?)
}

/// Finds the zoo architecture whose parameter names and shapes match `tensors` exactly.
pub fn infer_arch(tensors: &BTreeMap<String, Tensor>) -> Option<&'static str> {
    zoo::ARCHS.iter().copied().find(|arch| {
        let Ok(g) = zoo::graph(arch) else { return false };
        let mut expected = 0usize;
        for node in &g.nodes {
            for spec in node.op.params() {
                expected += 1;
                match tensors.get(&format!("{}.{}", node.name, spec.suffix)) {
                    Some(t) if t.dims() == spec.shape.as_slice() => {}
                    _ => return false,
                }
            }
        }
        let present = tensors
            .keys()
            .filter(|k| !k.ends_with("num_batches_tracked") && !k.ends_with(MASK_SUFFIX))
            .count();
        present == expected
    })
}

/// Loads a model file. shrink files carry their graph; plain state_dicts are matched against
/// the zoo (or `arch` when given). The format is recognised by content ([`crate::format`]):
/// safetensors, PyTorch `.pt` ([`crate::pt`]), ONNX ([`crate::onnx::import`]) or bit-packed
/// ([`crate::packed`]), whatever the file is named. A training checkpoint is an error saying
/// so (`shrink train --resume` takes it).
pub fn load_model(path: &Path, arch: Option<&str>) -> Result<Model> {
    if crate::format::detect(path)? == ModelFormat::Safetensors {
        // Tensor by tensor into the weights' own buffers: peak memory is the model, not 2x.
        let raw =
            stream_safetensors(path, |meta| reject_checkpoint(meta, path)).map_err(|e| e.in_file(path))?;
        return model_from_raw(raw, arch).map_err(|e| e.in_file(path));
    }
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    model_from_bytes(&bytes, path, arch)
}

/// The error for a training checkpoint given where a model is expected.
fn reject_checkpoint(metadata: &BTreeMap<String, String>, path: &Path) -> Result<()> {
    if metadata.contains_key(TRAIN_STATE_KEY) {
        return Err(IoError::TrainingCheckpoint(path.to_path_buf()));
    }
    Ok(())
}

/// [`load_model`] on bytes already read; `path` names them in errors (its extension plays no
/// part in recognising the format).
pub fn model_from_bytes(bytes: &[u8], path: &Path, arch: Option<&str>) -> Result<Model> {
    let head = &bytes[..bytes.len().min(crate::format::SNIFF_LEN)];
    match crate::format::detect_or_error(head, bytes.len() as u64, path)? {
        ModelFormat::Packed => crate::packed::model_from_packed(bytes, arch).map_err(|e| e.in_file(path)),
        ModelFormat::Deploy => Err(IoError::DeployFile(path.to_path_buf())),
        ModelFormat::PyTorchZip | ModelFormat::PyTorchLegacy => {
            let raw = crate::pt::parse_pt(bytes).map_err(|e| e.in_file(path))?;
            model_from_raw(raw, arch).map_err(|e| e.in_file(path))
        }
        // The graph comes from the file; `arch` does not apply.
        ModelFormat::Onnx => crate::onnx::import_onnx(bytes).map_err(|e| e.in_file(path)),
        ModelFormat::Safetensors => {
            let raw = parse_safetensors(bytes).map_err(|e| e.in_file(path))?;
            reject_checkpoint(&raw.metadata, path)?;
            model_from_raw(raw, arch).map_err(|e| e.in_file(path))
        }
    }
}

/// Builds a model from already-read tensors and metadata (see [`load_model`]).
pub fn model_from_raw(raw: RawTensors, arch: Option<&str>) -> Result<Model> {
    let act_quant: BTreeMap<String, QuantSlot> = match raw.metadata.get("shrink.act_quant") {
        Some(s) => serde_json::from_str(s)
            .map_err(|e| IoError::Format(format!("bad shrink.act_quant metadata: {e}")))?,
        None => BTreeMap::new(),
    };
    let mut model = model_from_weights(raw, arch)?;
    attach_act_quant(&mut model, act_quant)?;
    Ok(model)
}

/// Sets stored activation quantizers on `model` (each must name a node of its graph).
pub fn attach_act_quant(model: &mut Model, act_quant: BTreeMap<String, QuantSlot>) -> Result<()> {
    for (node, slot) in act_quant {
        model.set_act_quant(&node, slot)?;
    }
    Ok(())
}

fn model_from_weights(raw: RawTensors, arch: Option<&str>) -> Result<Model> {
    let RawTensors { mut tensors, metadata } = raw;
    check_graph_version(&metadata)?;
    crate::masks::expand_masks(&mut tensors, &metadata)?;
    let quant: BTreeMap<String, QuantSlot> = match metadata.get("shrink.quant") {
        Some(s) => {
            serde_json::from_str(s).map_err(|e| IoError::Format(format!("bad shrink.quant metadata: {e}")))?
        }
        None => BTreeMap::new(),
    };
    let stored_meta: Option<ModelMeta> = match metadata.get("shrink.meta") {
        Some(s) => Some(
            serde_json::from_str(s).map_err(|e| IoError::Format(format!("bad shrink.meta metadata: {e}")))?,
        ),
        None => None,
    };
    if let Some(arch) = arch {
        let graph = zoo::graph(arch)?;
        let meta = stored_meta.unwrap_or(zoo::meta(arch)?);
        return model_from_tensors(graph, ModelMeta { arch: arch.to_string(), ..meta }, tensors, quant);
    }
    if let (Some(g), Some(meta)) = (metadata.get("shrink.graph"), stored_meta.clone()) {
        let graph: Graph = serde_json::from_str(g)
            .map_err(|e| IoError::Format(format!("bad shrink.graph metadata: {e}")))?;
        return model_from_tensors(graph, meta, tensors, quant);
    }
    let arch = infer_arch(&tensors).ok_or_else(|| {
        IoError::Format(
            "not a shrink model and its keys/shapes match no zoo architecture (pass --arch)".into(),
        )
    })?;
    let meta = stored_meta.unwrap_or(zoo::meta(arch)?);
    model_from_tensors(zoo::graph(arch)?, meta, tensors, quant)
}

/// Tensors of a model as a PyTorch-style state_dict (`num_batches_tracked` omitted).
pub fn state_dict(model: &Model) -> Vec<(String, Tensor, ParamKind)> {
    model.params.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone(), p.kind)).collect()
}

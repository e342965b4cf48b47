//! shrink model files: safetensors with PyTorch-named tensors plus metadata (graph, arch,
//! input shape, normalization, classes, quantizers, version). Plain PyTorch state_dicts saved as
//! safetensors load too: their architecture is recognized from keys and shapes.
//!
//! Masks are stored as `{weight}_mask` (the naming of `torch.nn.utils.prune`).
use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use shrink_ir::{zoo, Graph, Model, ModelMeta, ParamKind, ParamStore, QuantSlot};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const MASK_SUFFIX: &str = "_mask";
/// Version string written into every file.
pub const SHRINK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Metadata key holding all of shrink's metadata as one JSON object. A single key keeps files
/// byte-identical across runs (safetensors stores metadata in a randomly ordered hash map).
const METADATA_KEY: &str = "shrink";

/// Serializes tensors + string metadata into safetensors bytes (deterministic for equal input).
pub fn safetensors_bytes(
    tensors: &[(String, Tensor)],
    metadata: BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let packed = HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(&metadata)?)]);
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        owned.push((name.clone(), t.dims().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (n.clone(), v)).map_err(IoError::from)
        })
        .collect::<Result<_>>()?;
    Ok(safetensors::serialize(views, Some(packed))?)
}

/// Writes `model` to `path` atomically (temp file + rename).
pub fn save_model(model: &Model, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, p) in model.params.iter() {
        tensors.push((name.clone(), p.var.as_tensor().clone()));
    }
    for (name, m) in model.params.masks() {
        tensors.push((format!("{name}{MASK_SUFFIX}"), m.clone()));
    }
    let mut meta = BTreeMap::new();
    meta.insert("shrink.version".into(), SHRINK_VERSION.to_string());
    meta.insert("shrink.meta".into(), serde_json::to_string(&model.meta)?);
    meta.insert("shrink.graph".into(), serde_json::to_string(&model.graph)?);
    if !model.params.quants().is_empty() {
        meta.insert("shrink.quant".into(), serde_json::to_string(model.params.quants())?);
    }
    if !model.act_quant.is_empty() {
        meta.insert("shrink.act_quant".into(), serde_json::to_string(&model.act_quant)?);
    }
    let bytes = safetensors_bytes(&tensors, meta)?;
    write_atomic(path, &bytes)
}

/// Raw contents of a safetensors file: f32 tensors by name and the metadata map.
pub struct RawTensors {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

/// Reads every tensor of a safetensors file as f32 (F64/F16/BF16/I64 are converted).
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
        let values = values_f32(&name, view.dtype(), view.data())?;
        tensors.insert(name, variable(values, view.shape())?);
    }
    Ok(RawTensors { tensors, metadata })
}

/// Reads a safetensors file one tensor at a time, straight into the tensors' own buffers, so
/// loading never holds the file and the weights at once: peak memory is the model plus one
/// tensor of a non-f32 dtype (f32, the usual case, is read in place).
pub fn read_safetensors_streaming(path: &Path) -> Result<RawTensors> {
    stream_safetensors(path).map_err(|e| e.in_file(path))
}

fn stream_safetensors(path: &Path) -> Result<RawTensors> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| IoError::file(path, e))?;
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
    let data_start = 8 + header_len;
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
    let mut tensors = BTreeMap::new();
    for (name, info) in infos {
        let (a, b) = info.data_offsets;
        file.seek(SeekFrom::Start(data_start + a as u64)).map_err(|e| IoError::file(path, e))?;
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
/// the zoo (or `arch` when given). Bit-packed files ([`crate::packed`]) are recognized by
/// their magic bytes, PyTorch `.pt` files ([`crate::pt`]) by their zip signature (or a
/// `.pt`/`.pth`/`.ckpt` extension), ONNX files ([`crate::onnx::import`]) by extension or content.
pub fn load_model(path: &Path, arch: Option<&str>) -> Result<Model> {
    if is_plain_safetensors(&sniff(path)?, path) {
        // Tensor by tensor into the weights' own buffers: peak memory is the model, not 2x.
        let raw = read_safetensors_streaming(path)?;
        return model_from_raw(raw, arch).map_err(|e| e.in_file(path));
    }
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    model_from_bytes(&bytes, path, arch)
}

/// The first bytes of a file (enough for every format check).
fn sniff(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| IoError::file(path, e))?;
    let mut head = Vec::with_capacity(64);
    file.take(64).read_to_end(&mut head).map_err(|e| IoError::file(path, e))?;
    Ok(head)
}

/// Whether [`model_from_bytes`] would read `bytes` as safetensors (no other format matches).
fn is_plain_safetensors(bytes: &[u8], path: &Path) -> bool {
    !crate::packed::is_packed(bytes)
        && !crate::pt::is_zip(bytes)
        && !crate::onnx::is_onnx(path, bytes)
        && !crate::pt::has_pt_extension(path)
}

/// [`load_model`] on bytes already read; `path` names them in errors and its extension
/// helps recognize the format.
pub fn model_from_bytes(bytes: &[u8], path: &Path, arch: Option<&str>) -> Result<Model> {
    if crate::packed::is_packed(bytes) {
        return crate::packed::model_from_packed(bytes, arch).map_err(|e| e.in_file(path));
    }
    if crate::pt::is_zip(bytes) {
        let raw = crate::pt::parse_pt(bytes).map_err(|e| e.in_file(path))?;
        return model_from_raw(raw, arch).map_err(|e| e.in_file(path));
    }
    if crate::onnx::is_onnx(path, bytes) {
        // The graph comes from the file; `arch` does not apply.
        return crate::onnx::import_onnx(bytes).map_err(|e| e.in_file(path));
    }
    if crate::pt::has_pt_extension(path) {
        let raw = crate::pt::parse_pt(bytes).map_err(|e| e.in_file(path))?;
        return model_from_raw(raw, arch).map_err(|e| e.in_file(path));
    }
    let raw = parse_safetensors(bytes).map_err(|e| e.in_file(path))?;
    model_from_raw(raw, arch).map_err(|e| e.in_file(path))
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
    let RawTensors { tensors, metadata } = raw;
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

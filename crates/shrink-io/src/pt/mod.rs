//! PyTorch `.pt` files (the zip format of `torch.save`, PyTorch >= 1.6) holding a state_dict.
//!
//! Reading never executes pickle code: `data.pkl` is run by a restricted interpreter
//! ([`pickle`]) that only knows the globals a state_dict needs, then each tensor view (offset,
//! size, stride; storages may be shared) is copied out of its `data/<key>` record, with every
//! claimed size checked against the record actually present. The state_dict may be the top
//! object or nested under `state_dict`, `model`, `model_state_dict`, `net` or `module`; a
//! `module.` (DataParallel) or `_orig_mod.` (torch.compile) prefix on every key is dropped.
//! float32 is read as is; float64, float16, bfloat16 and integer/bool tensors are converted to
//! f32 (as the safetensors reader does); other dtypes are an error naming the key.
//!
//! Writing ([`pt_bytes`], [`save_pt`]) produces what `torch.save(state_dict)` does: a zip of
//! uncompressed, 64-byte-aligned records (`archive/data.pkl`, `archive/data/<n>`,
//! `archive/version`, `archive/byteorder`, ...) that `torch.load(path, weights_only=True)` reads
//! into an `OrderedDict`.
pub mod pickle;
mod write;

pub use write::{pt_bytes, save_pt, PtTensor};

use crate::error::{IoError, Result};
use crate::model_file::{half_to_f32, RawTensors};
use candle_core::{Device, Tensor};
use pickle::{Obj, StorageKind, TensorRef, Unpickled, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};
use std::path::Path;

/// Elements a file may add by views reading storage elements more than once (stride 0,
/// overlapping views), beyond the elements actually stored: bounds the memory a tiny file
/// can demand.
const MAX_EXPANDED_ELEMS: u64 = 1 << 26;
/// Nesting levels searched for the state_dict inside a checkpoint dict.
const MAX_NESTING: usize = 4;
/// Keys under which checkpoints commonly nest their state_dict, in order of preference.
const NESTED_KEYS: &[&str] = &["state_dict", "model_state_dict", "model", "net", "module", "network"];

/// True for zip data (the `.pt` format of PyTorch >= 1.6; also TorchScript archives).
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Reads the state_dict of a `.pt` file (see the module docs).
pub fn read_pt(path: &Path) -> Result<RawTensors> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    parse_pt(&bytes).map_err(|e| e.in_file(path))
}

fn fmt_err(msg: impl Into<String>) -> IoError {
    IoError::Format(msg.into())
}

/// Parses `.pt` bytes (see [`read_pt`]). Metadata is empty: a `.pt` is a plain state_dict.
pub fn parse_pt(bytes: &[u8]) -> Result<RawTensors> {
    if !is_zip(bytes) {
        if bytes.first() == Some(&0x80) {
            return Err(fmt_err(
                "legacy (non-zip) PyTorch format is not supported: re-save it with PyTorch >= 1.6 \
                 (torch.save(torch.load(f), f))",
            ));
        }
        return Err(fmt_err("not a PyTorch .pt file (no zip signature)"));
    }
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| fmt_err(format!("invalid zip archive: {e}")))?;
    let names: Vec<String> = zip.file_names().filter_map(|n| n.ok()).map(|n| n.into_owned()).collect();
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .min()
        .cloned()
        .ok_or_else(|| {
            if names.iter().any(|n| n.ends_with("/constants.pkl")) {
                fmt_err("a TorchScript archive (torch.jit.save), not a torch.save state_dict")
            } else {
                fmt_err("zip archive has no <name>/data.pkl: not a torch.save file")
            }
        })?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    if let Some(order) = read_small_record(&mut zip, &format!("{prefix}byteorder"))? {
        match order.trim_ascii() {
            b"little" => {}
            b"big" => return Err(fmt_err("big-endian .pt files are not supported")),
            _ => return Err(fmt_err(format!("{prefix}byteorder: unknown byte order"))),
        }
    }
    let data = read_record(&mut zip, &pkl, None)?;
    let un = pickle::unpickle(&data).map_err(|e| fmt_err(format!("{pkl}: {e}")))?;
    let entries = find_state_dict(&un)?;
    let strip = common_prefix(&entries);
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut budget = MAX_EXPANDED_ELEMS;
    let mut tensors = BTreeMap::new();
    for (key, t) in entries {
        let name = key[strip.len()..].to_string();
        let tensor = materialize(&mut zip, &prefix, &key, t, &mut storages, &mut budget)?;
        if tensors.insert(name.clone(), tensor).is_some() {
            return Err(fmt_err(format!("duplicate key `{}`", pickle::printable(&name))));
        }
    }
    Ok(RawTensors { tensors, metadata: BTreeMap::new() })
}

/// A prefix (`module.`, `_orig_mod.`) carried by every key, to drop.
fn common_prefix(entries: &[(String, &TensorRef)]) -> &'static str {
    for p in ["module.", "_orig_mod."] {
        if !entries.is_empty() && entries.iter().all(|(k, _)| k.starts_with(p)) {
            return p;
        }
    }
    ""
}

/// Reads a record of at most 4 KiB (`byteorder`, `version`); `None` when absent.
fn read_small_record(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<Vec<u8>>> {
    if zip.index_for_name(name).is_none() {
        return Ok(None);
    }
    read_record(zip, name, Some(4096)).map(Some)
}

/// Reads a whole record, never allocating beyond what it really holds (nor beyond `limit`).
fn read_record(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: Option<u64>) -> Result<Vec<u8>> {
    let mut f = zip.by_name(name).map_err(|e| fmt_err(format!("{name}: {e}")))?;
    let claimed = f.size();
    if let Some(limit) = limit {
        if claimed > limit {
            return Err(fmt_err(format!("{name}: record of {claimed} bytes exceeds {limit}")));
        }
    }
    let mut buf = Vec::new();
    (&mut f)
        .take(claimed)
        .read_to_end(&mut buf)
        .map_err(|e| fmt_err(format!("{name}: cannot read record: {e}")))?;
    if buf.len() as u64 != claimed {
        return Err(fmt_err(format!("{name}: record truncated ({} of {claimed} bytes)", buf.len())));
    }
    Ok(buf)
}

/// Finds the dict of tensors: the top object or one nested under a well-known key.
fn find_state_dict(un: &Unpickled) -> Result<Vec<(String, &TensorRef)>> {
    let mut cur = &un.top;
    for _ in 0..MAX_NESTING {
        let Some(Obj::Dict(d)) = un.obj(cur) else {
            return Err(fmt_err(format!(
                "data.pkl holds a {}, not a dict (a state_dict was expected)",
                un.type_name(cur)
            )));
        };
        let is_tensor = |v: &Value| matches!(un.obj(v), Some(Obj::Tensor(_)));
        if d.entries.iter().any(|(_, v)| is_tensor(v)) {
            let mut out = Vec::with_capacity(d.entries.len());
            for (k, v) in &d.entries {
                let Value::Str(k) = k else {
                    return Err(fmt_err(format!("state_dict key is a {}, not a string", un.type_name(k))));
                };
                match un.obj(v) {
                    Some(Obj::Tensor(t)) => out.push((k.to_string(), t)),
                    _ => {
                        return Err(fmt_err(format!(
                            "state_dict entry `{}` is a {}, not a tensor",
                            pickle::printable(k),
                            un.type_name(v)
                        )))
                    }
                }
            }
            return Ok(out);
        }
        let nested = NESTED_KEYS.iter().find_map(|want| {
            d.entries.iter().find_map(|(k, v)| match (k, un.obj(v)) {
                (Value::Str(k), Some(Obj::Dict(_))) if &**k == *want => Some(v),
                _ => None,
            })
        });
        match nested {
            Some(v) => cur = v,
            None => {
                let keys: Vec<String> = d
                    .entries
                    .iter()
                    .take(8)
                    .map(|(k, _)| match k {
                        Value::Str(s) => format!("`{}`", pickle::printable(s)),
                        other => un.type_name(other).to_string(),
                    })
                    .collect();
                return Err(fmt_err(format!(
                    "no tensors found: the dict has {} keys ({}) and none of {:?} holds a state_dict",
                    d.entries.len(),
                    keys.join(", "),
                    NESTED_KEYS
                )));
            }
        }
    }
    Err(fmt_err("no state_dict found within the nesting limit"))
}

/// Copies a tensor view out of its storage record, converting to f32.
fn materialize(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    prefix: &str,
    key: &str,
    t: &TensorRef,
    storages: &mut HashMap<String, Vec<u8>>,
    budget: &mut u64,
) -> Result<Tensor> {
    let key_p = pickle::printable(key);
    let err = |msg: String| fmt_err(format!("tensor `{key_p}`: {msg}"));
    let kind = &t.storage.kind;
    let esize = kind.elem_size().ok_or_else(|| err(format!("unsupported dtype {}", kind.name())))? as u64;
    let record = format!("{prefix}data/{}", t.storage.key);
    let need = t
        .storage
        .numel
        .checked_mul(esize)
        .ok_or_else(|| err(format!("storage size {} overflows", t.storage.numel)))?;
    if !storages.contains_key(&record) {
        let idx = zip
            .index_for_name(&record)
            .ok_or_else(|| err(format!("storage record `{}` is missing", pickle::printable(&record))))?;
        let have = zip.by_index(idx).map_err(|e| err(format!("{record}: {e}")))?.size();
        if have < need {
            return Err(err(format!(
                "storage `{}` claims {} {} elements ({need} bytes) but the record holds {have} bytes",
                pickle::printable(&t.storage.key),
                t.storage.numel,
                kind.name()
            )));
        }
        let bytes = read_record(zip, &record, None)?;
        storages.insert(record.clone(), bytes);
    }
    let bytes = &storages[&record];
    if (bytes.len() as u64) < need {
        return Err(err(format!(
            "storage `{}` claims {need} bytes but the record holds {}",
            pickle::printable(&t.storage.key),
            bytes.len()
        )));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("size {:?} overflows", t.shape)))?;
    let shape: Vec<usize> = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| err(format!("size {:?} overflows", t.shape))))
        .collect::<Result<_>>()?;
    if numel > 0 {
        let mut last = t.offset;
        for (&d, &s) in t.shape.iter().zip(&t.stride) {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(|| err("view offsets overflow".into()))?;
        }
        if last >= t.storage.numel {
            return Err(err(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches element {last} of a {}-element storage",
                t.offset, t.shape, t.stride, t.storage.numel
            )));
        }
        if numel > t.storage.numel {
            let extra = numel - t.storage.numel;
            if extra > *budget {
                return Err(err(format!(
                    "view of {numel} elements over a {}-element storage exceeds the expansion limit",
                    t.storage.numel
                )));
            }
            *budget -= extra;
        }
    }
    let numel = usize::try_from(numel).map_err(|_| err("too many elements".into()))?;
    let mut values = Vec::with_capacity(numel);
    let esize = esize as usize;
    let decode = |i: u64| -> f32 {
        let o = i as usize * esize;
        let b = &bytes[o..o + esize];
        match kind {
            StorageKind::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            StorageKind::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            StorageKind::F16 => half_to_f32(u16::from_le_bytes([b[0], b[1]])),
            StorageKind::BF16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
            StorageKind::I64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            StorageKind::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            StorageKind::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            StorageKind::I8 => b[0] as i8 as f32,
            StorageKind::U8 => b[0] as f32,
            StorageKind::Bool => (b[0] != 0) as u8 as f32,
            StorageKind::Other(_) => 0.0, // rejected above (no element size)
        }
    };
    if numel > 0 {
        // Walk the view in row-major order (an odometer over the dims).
        let nd = shape.len();
        let mut idx = vec![0u64; nd];
        let mut pos = t.offset;
        for _ in 0..numel {
            values.push(decode(pos));
            for d in (0..nd).rev() {
                idx[d] += 1;
                pos += t.stride[d];
                if idx[d] < t.shape[d] {
                    break;
                }
                pos -= t.stride[d] * idx[d];
                idx[d] = 0;
            }
        }
    }
    Ok(Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?)
}

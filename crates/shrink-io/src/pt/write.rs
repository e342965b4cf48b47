//! `.pt` writer: the layout of `torch.save(state_dict)` (pickle protocol 2, one storage record
//! per tensor, uncompressed zip records aligned to 64 bytes).
use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use candle_core::{DType, Tensor};
use shrink_ir::Model;
use std::path::Path;

/// Top-level folder of the archive (what `torch.save` uses for in-memory buffers).
const ARCHIVE: &str = "archive";
/// Record alignment torch uses (`.storage_alignment`).
const ALIGN: usize = 64;
/// Items per SETITEMS batch (as Python's pickler does).
const BATCH: usize = 1000;

/// One tensor to write: f32 values, or an int64 (for `num_batches_tracked`).
pub enum PtTensor {
    F32 { shape: Vec<usize>, values: Vec<f32> },
    I64 { shape: Vec<usize>, values: Vec<i64> },
}

impl PtTensor {
    /// A float tensor from a candle tensor (any dtype/device; converted to f32, contiguous).
    pub fn from_tensor(t: &Tensor) -> Result<PtTensor> {
        let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(PtTensor::F32 { shape: t.dims().to_vec(), values })
    }

    fn shape(&self) -> &[usize] {
        match self {
            PtTensor::F32 { shape, .. } | PtTensor::I64 { shape, .. } => shape,
        }
    }

    fn numel(&self) -> usize {
        match self {
            PtTensor::F32 { values, .. } => values.len(),
            PtTensor::I64 { values, .. } => values.len(),
        }
    }

    fn storage_class(&self) -> &'static str {
        match self {
            PtTensor::F32 { .. } => "FloatStorage",
            PtTensor::I64 { .. } => "LongStorage",
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            PtTensor::F32 { values, .. } => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            PtTensor::I64 { values, .. } => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Pickle opcode writer (protocol 2).
struct Pickler(Vec<u8>);

impl Pickler {
    fn op(&mut self, b: u8) {
        self.0.push(b);
    }

    fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.0.extend([b'K', v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.0.push(b'M');
            self.0.extend((v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.0.push(b'J');
            self.0.extend((v as i32).to_le_bytes());
        } else {
            self.0.extend([0x8a, 8]); // LONG1, 8 bytes
            self.0.extend(v.to_le_bytes());
        }
    }

    fn str(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend(name.as_bytes());
        self.0.push(b'\n');
    }

    fn int_tuple(&mut self, v: &[usize]) {
        match v.len() {
            0 => self.op(b')'),
            n @ 1..=3 => {
                for &x in v {
                    self.int(x as i64);
                }
                self.op(0x84 + n as u8); // TUPLE1..3
            }
            _ => {
                self.op(b'(');
                for &x in v {
                    self.int(x as i64);
                }
                self.op(b't');
            }
        }
    }
}

/// Contiguous (row-major) strides of `shape`.
fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1].max(1);
    }
    s
}

fn data_pkl(tensors: &[(String, PtTensor)]) -> Vec<u8> {
    let mut p = Pickler(Vec::new());
    p.0.extend([0x80, 2]); // PROTO 2
    p.global("collections", "OrderedDict");
    p.op(b')');
    p.op(b'R');
    for (batch_no, batch) in tensors.chunks(BATCH).enumerate() {
        p.op(b'(');
        for (i, (name, t)) in batch.iter().enumerate() {
            let key = batch_no * BATCH + i;
            p.str(name);
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op(b'(');
            // persistent id ('storage', torch.XStorage, key, 'cpu', numel)
            p.op(b'(');
            p.str("storage");
            p.global("torch", t.storage_class());
            p.str(&key.to_string());
            p.str("cpu");
            p.int(t.numel() as i64);
            p.op(b't');
            p.op(b'Q'); // BINPERSID
            p.int(0); // storage offset
            p.int_tuple(t.shape());
            p.int_tuple(&contiguous_strides(t.shape()));
            p.op(0x89); // requires_grad = False
            p.global("collections", "OrderedDict"); // backward hooks
            p.op(b')');
            p.op(b'R');
            p.op(b't');
            p.op(b'R');
        }
        p.op(b'u'); // SETITEMS
    }
    p.op(b'.');
    p.0
}

/// Builds a stored (uncompressed) zip whose record data start on 64-byte boundaries, padding
/// with an `FB` extra field as PyTorch's writer does.
fn zip_stored(records: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend(v.to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend(v.to_le_bytes());
    }
    let too_big = || IoError::Format(".pt output exceeds 4 GiB (zip64 is not written)".into());
    let u32_of = |v: usize| u32::try_from(v).map_err(|_| too_big());
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let offset = u32_of(out.len())?;
        let base = out.len() + 30 + name.len();
        let extra_len = if base % ALIGN == 0 { 0 } else { 4 + (ALIGN - (base + 4) % ALIGN) % ALIGN };
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (crc, size) = (crc.sum(), u32_of(data.len())?);
        let name_len = u16::try_from(name.len()).map_err(|_| too_big())?;
        // local file header
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20); // version needed
        u16le(&mut out, 0); // flags
        u16le(&mut out, 0); // stored
        u16le(&mut out, 0); // time
        u16le(&mut out, 0); // date
        u32le(&mut out, crc);
        u32le(&mut out, size);
        u32le(&mut out, size);
        u16le(&mut out, name_len);
        u16le(&mut out, extra_len as u16);
        out.extend(name.as_bytes());
        if extra_len > 0 {
            out.extend(b"FB");
            u16le(&mut out, (extra_len - 4) as u16);
            out.resize(out.len() + extra_len - 4, b'Z');
        }
        debug_assert_eq!(out.len() % ALIGN, 0);
        out.extend(data);
        // central directory header
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // version made by
        u16le(&mut central, 20); // version needed
        u16le(&mut central, 0); // flags
        u16le(&mut central, 0); // stored
        u16le(&mut central, 0); // time
        u16le(&mut central, 0); // date
        u32le(&mut central, crc);
        u32le(&mut central, size);
        u32le(&mut central, size);
        u16le(&mut central, name_len);
        u16le(&mut central, 0); // extra
        u16le(&mut central, 0); // comment
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend(name.as_bytes());
    }
    let cd_offset = u32_of(out.len())?;
    let cd_size = u32_of(central.len())?;
    let n = u16::try_from(records.len()).map_err(|_| IoError::Format("too many tensors for a .pt".into()))?;
    out.extend(central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, n);
    u16le(&mut out, n);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}

/// Serializes a state_dict (in the given order) as `.pt` bytes.
pub fn pt_bytes(tensors: &[(String, PtTensor)]) -> Result<Vec<u8>> {
    let mut records = vec![
        (format!("{ARCHIVE}/data.pkl"), data_pkl(tensors)),
        (format!("{ARCHIVE}/.format_version"), b"1".to_vec()),
        (format!("{ARCHIVE}/.storage_alignment"), ALIGN.to_string().into_bytes()),
        (format!("{ARCHIVE}/byteorder"), b"little".to_vec()),
    ];
    for (i, (_, t)) in tensors.iter().enumerate() {
        records.push((format!("{ARCHIVE}/data/{i}"), t.bytes()));
    }
    records.push((format!("{ARCHIVE}/version"), b"3\n".to_vec()));
    zip_stored(&records)
}

/// Writes `model` as a PyTorch state_dict `.pt` (atomically). Weights are written as the
/// forward pass sees them (masked and fake-quantized, as for ONNX); every BatchNorm
/// (`*.running_mean`) also gets the `num_batches_tracked` counter PyTorch modules expect.
pub fn save_pt(model: &Model, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, _) in model.params.iter() {
        let t = model.effective_param(name)?;
        tensors.push((name.clone(), PtTensor::from_tensor(&t)?));
        if let Some(base) = name.strip_suffix(".running_var") {
            let nbt = format!("{base}.num_batches_tracked");
            if !model.params.contains(&nbt) {
                tensors.push((nbt, PtTensor::I64 { shape: vec![], values: vec![0] }));
            }
        }
    }
    write_atomic(path, &pt_bytes(&tensors)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides() {
        assert_eq!(contiguous_strides(&[16, 3, 3, 3]), vec![27, 9, 3, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<usize>::new());
        assert_eq!(contiguous_strides(&[4]), vec![1]);
    }

    #[test]
    fn records_are_aligned() {
        let t = vec![("w".to_string(), PtTensor::F32 { shape: vec![2], values: vec![1.0, 2.0] })];
        let b = pt_bytes(&t).unwrap();
        let needle = b"archive/data/0FB";
        let at = b.windows(needle.len()).position(|w| w == needle).unwrap();
        let len = u16::from_le_bytes([b[at + needle.len()], b[at + needle.len() + 1]]) as usize;
        assert_eq!((at + needle.len() + 2 + len) % ALIGN, 0);
    }
}

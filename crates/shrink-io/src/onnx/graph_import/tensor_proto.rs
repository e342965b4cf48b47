//! ONNX `TensorProto` payloads (initializers, `Constant` values) decoded into typed element
//! data: every float type as f32, every integer and bool type as i64. The element count is
//! checked against the payload before anything is allocated, so a tiny file cannot claim a
//! huge tensor.
use crate::onnx::decode::TensorProto;

/// Element data of a constant: floats (any float type) or integers (any integer or bool type).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub dims: Vec<usize>,
    pub data: Data,
}

type R<T> = std::result::Result<T, String>;

// TensorProto.DataType
const FLOAT: i64 = 1;
const UINT8: i64 = 2;
const INT8: i64 = 3;
const UINT16: i64 = 4;
const INT16: i64 = 5;
const INT32: i64 = 6;
const INT64: i64 = 7;
const BOOL: i64 = 9;
const FLOAT16: i64 = 10;
const DOUBLE: i64 = 11;
const UINT32: i64 = 12;
const UINT64: i64 = 13;
const BFLOAT16: i64 = 16;

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f * 2^-24.
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

fn numel_upto(dims: &[usize], max: usize) -> R<usize> {
    let mut n = 1usize;
    for &d in dims {
        n = n.checked_mul(d).filter(|&n| n <= max).ok_or_else(|| format!("shape {dims:?} is too large"))?;
    }
    Ok(n)
}

impl Const {
    /// Decodes a TensorProto (the element count is checked against the payload before any
    /// allocation).
    pub fn from_proto(t: &TensorProto) -> R<Const> {
        let what = if t.name.is_empty() { "tensor".to_string() } else { format!("tensor `{}`", t.name) };
        if t.data_location == 1 || t.has_external_data {
            return Err(format!("{what} keeps its data in an external file (unsupported)"));
        }
        let mut dims = Vec::with_capacity(t.dims.len());
        for &d in &t.dims {
            if d < 0 {
                return Err(format!("{what} has negative dimension {d}"));
            }
            dims.push(usize::try_from(d).map_err(|_| format!("{what}: dimension {d} too large"))?);
        }
        let n = numel_upto(&dims, usize::MAX / 8).map_err(|e| format!("{what}: {e}"))?;
        let size = match t.data_type {
            FLOAT | INT32 | UINT32 => 4,
            DOUBLE | INT64 | UINT64 => 8,
            UINT8 | INT8 | BOOL => 1,
            UINT16 | INT16 | FLOAT16 | BFLOAT16 => 2,
            other => return Err(format!("{what} has unsupported data type {other}")),
        };
        let count_err = |got: usize| format!("{what}: shape {dims:?} needs {n} values, the file holds {got}");
        if let Some(raw) = t.raw_data {
            if raw.len() != n * size {
                return Err(count_err(raw.len() / size));
            }
            let c = raw.chunks_exact(size);
            let data = match t.data_type {
                FLOAT => Data::F(c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
                DOUBLE => Data::F(c.map(|b| f64::from_le_bytes(b.try_into().expect("8")) as f32).collect()),
                FLOAT16 => Data::F(c.map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()),
                BFLOAT16 => Data::F(
                    c.map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).collect(),
                ),
                INT64 | UINT64 => Data::I(c.map(|b| i64::from_le_bytes(b.try_into().expect("8"))).collect()),
                INT32 => Data::I(c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
                UINT32 => Data::I(c.map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
                INT16 => Data::I(c.map(|b| i16::from_le_bytes([b[0], b[1]]) as i64).collect()),
                UINT16 => Data::I(c.map(|b| u16::from_le_bytes([b[0], b[1]]) as i64).collect()),
                INT8 => Data::I(c.map(|b| b[0] as i8 as i64).collect()),
                _ => Data::I(c.map(|b| b[0] as i64).collect()),
            };
            return Ok(Const { dims, data });
        }
        let data = match t.data_type {
            FLOAT => {
                if t.float_data.len() != n {
                    return Err(count_err(t.float_data.len()));
                }
                Data::F(t.float_data.clone())
            }
            DOUBLE => {
                if t.double_data.len() != n {
                    return Err(count_err(t.double_data.len()));
                }
                Data::F(t.double_data.iter().map(|&v| v as f32).collect())
            }
            FLOAT16 | BFLOAT16 => {
                if t.int32_data.len() != n {
                    return Err(count_err(t.int32_data.len()));
                }
                let bf = t.data_type == BFLOAT16;
                Data::F(
                    t.int32_data
                        .iter()
                        .map(|&v| {
                            let h = v as u16;
                            if bf {
                                f32::from_bits((h as u32) << 16)
                            } else {
                                f16_to_f32(h)
                            }
                        })
                        .collect(),
                )
            }
            INT64 => {
                if t.int64_data.len() != n {
                    return Err(count_err(t.int64_data.len()));
                }
                Data::I(t.int64_data.clone())
            }
            UINT32 | UINT64 => {
                if t.uint64_data.len() != n {
                    return Err(count_err(t.uint64_data.len()));
                }
                Data::I(t.uint64_data.clone())
            }
            _ => {
                if t.int32_data.len() != n {
                    return Err(count_err(t.int32_data.len()));
                }
                Data::I(t.int32_data.iter().map(|&v| v as i32 as i64).collect())
            }
        };
        Ok(Const { dims, data })
    }
}

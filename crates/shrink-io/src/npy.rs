//! NumPy `.npy` files (format 1.0, little-endian f32, C order): how per-example outputs leave
//! shrink for comparison with PyTorch or onnxruntime (`np.load`).

use crate::atomic::write_atomic;
use crate::error::{IoError, Result};
use std::path::Path;

/// The bytes of an `.npy` file holding `data` with `shape` (f32, C order).
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "npy: shape/data mismatch");
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Write an f32 `.npy` file atomically.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write_atomic(path, &npy_bytes(shape, data))
}

/// Read an f32 `.npy` file written by [`write_npy`] or NumPy (`<f4`, C order); returns shape and data.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    parse_npy(&bytes).map_err(|msg| IoError::InFile { path: path.to_path_buf(), msg })
}

fn parse_npy(b: &[u8]) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(start..start + hlen).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "bad .npy header")?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err("only little-endian float32 C-order .npy files are supported".into());
    }
    let open = header.find("'shape': (").ok_or("no shape in .npy header")? + 10;
    let close = header[open..].find(')').ok_or("bad shape in .npy header")? + open;
    let shape = header[open..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad dimension `{s}` in .npy header")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("shape too large")?;
    let body = &b[start + hlen..];
    if body.len() != 4 * n {
        return Err(format!("shape {shape:?} needs {} bytes of data, the file has {}", 4 * n, body.len()));
    }
    Ok((shape, body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads_the_header() {
        let b = npy_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(parse_npy(&b).unwrap(), (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]));
        let one = npy_bytes(&[3], &[0.0; 3]);
        assert!(
            std::str::from_utf8(&one[10..]).unwrap_or("").contains("(3,)")
                || one.windows(4).any(|w| w == b"(3,)")
        );
        assert!(parse_npy(&b[..b.len() - 1]).unwrap_err().contains("needs 24 bytes"));
    }
}

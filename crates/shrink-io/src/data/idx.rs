//! MNIST / Fashion-MNIST IDX files, raw or gzipped: `train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`
//! (the `train-images.idx3-ubyte` dot spelling is accepted too).
//!
//! The header is checked against the real file length (or, for gzip, the data is decompressed
//! in a stream capped by the header and by what the compressed size can hold) before anything
//! the size of the payload is allocated.

use std::io::Read;

use super::error::{one_line, DataError};
use super::tree::{join, read_up_to, Child, Tree};
use super::{Dataset, Split};

/// What [`super::load`] looks for, for the "no dataset found" message.
pub(crate) const LOOKED_FOR: &str = "MNIST IDX files (train-images-idx3-ubyte[.gz], \
     train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])";

/// Deflate cannot expand data more than about 1032 times.
const MAX_DEFLATE_RATIO: u64 = 1032;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Images,
    Labels,
}

impl Kind {
    fn magic(self) -> u32 {
        match self {
            Kind::Images => 0x0000_0803,
            Kind::Labels => 0x0000_0801,
        }
    }
    fn ndims(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Kind::Images => "images",
            Kind::Labels => "labels",
        }
    }
}

fn prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

/// The accepted file names for one file of a split, preferred first.
fn names(split: Split, kind: Kind) -> Vec<String> {
    let (p, w, d) = (prefix(split), kind.word(), kind.ndims());
    let mut out = Vec::with_capacity(4);
    for base in [format!("{p}-{w}-idx{d}-ubyte"), format!("{p}-{w}.idx{d}-ubyte")] {
        out.push(base.clone());
        out.push(format!("{base}.gz"));
    }
    out
}

/// Is `name` one of the IDX files of `split`?
pub(crate) fn is_idx_name(name: &str, split: Split) -> bool {
    [Kind::Images, Kind::Labels].iter().any(|&k| names(split, k).iter().any(|n| n == name))
}

/// Does a directory with these children hold MNIST-style files (of any split)?
pub(crate) fn detect(children: &[Child]) -> bool {
    children
        .iter()
        .any(|c| !c.is_dir && (is_idx_name(&c.name, Split::Train) || is_idx_name(&c.name, Split::Test)))
}

/// Loads one split of an MNIST-style directory.
pub(crate) fn load(tree: &Tree, base: &str, children: &[Child], split: Split) -> Result<Dataset, DataError> {
    let find = |kind| {
        let wanted = names(split, kind);
        wanted.iter().find(|n| children.iter().any(|c| !c.is_dir && &c.name == *n)).map(|n| join(base, n))
    };
    let (images_rel, labels_rel) = (find(Kind::Images), find(Kind::Labels));
    let (Some(images_rel), Some(labels_rel)) = (images_rel.clone(), labels_rel.clone()) else {
        let mut missing = Vec::new();
        if images_rel.is_none() {
            missing.push(format!("{}[.gz]", names(split, Kind::Images)[0]));
        }
        if labels_rel.is_none() {
            missing.push(format!("{}[.gz]", names(split, Kind::Labels)[0]));
        }
        return Err(DataError::MissingSplit {
            path: tree.display(base),
            split: split.to_string(),
            missing: missing.join(" and "),
        });
    };
    let (images, labels) = rayon::join(
        || read_idx(tree, &images_rel, Kind::Images),
        || read_idx(tree, &labels_rel, Kind::Labels),
    );
    let (images, labels) = (images?, labels?);
    let (n, height, width) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(DataError::CountMismatch {
            images_path: tree.display(&images_rel),
            images: n as u64,
            labels_path: tree.display(&labels_rel),
            labels: labels.dims[0] as u64,
        });
    }
    let max_label = labels.data.iter().copied().max().unwrap_or(0) as usize;
    let classes = (0..(max_label + 1).max(10)).map(|c| c.to_string()).collect();
    Ok(Dataset {
        channels: 1,
        height,
        width,
        images: images.data,
        labels: labels.data.into_iter().map(u32::from).collect(),
        classes,
        source: tree.display(base),
    })
}

struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// Reads one IDX file, gzipped or not (recognized by its magic bytes).
fn read_idx(tree: &Tree, rel: &str, kind: Kind) -> Result<Idx, DataError> {
    let path = tree.display(rel);
    let raw = tree.read(rel)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let bound = (raw.len() as u64).saturating_mul(MAX_DEFLATE_RATIO).saturating_add(1024);
        let decoder = flate2::read::MultiGzDecoder::new(&raw[..]);
        parse_idx(decoder, None, bound, &path, kind)
    } else {
        let len = raw.len() as u64;
        parse_idx(&raw[..], Some(len), len, &path, kind)
    }
}

/// Parses an IDX stream. `exact_len` is the stream's length when known (raw files); `bound` caps
/// what the stream can possibly hold, so the payload allocation never exceeds it.
fn parse_idx<R: Read>(
    mut r: R,
    exact_len: Option<u64>,
    bound: u64,
    path: &str,
    kind: Kind,
) -> Result<Idx, DataError> {
    let read_err =
        |e: std::io::Error| DataError::Gzip { path: path.to_string(), detail: one_line(&e.to_string()) };
    let header_len = 4 + 4 * kind.ndims();
    let mut header = vec![0u8; header_len];
    let got = read_up_to(&mut r, &mut header).map_err(read_err)?;
    if got >= 4 {
        let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if magic != kind.magic() {
            return Err(DataError::BadMagic {
                path: path.to_string(),
                kind: match kind {
                    Kind::Images => "image",
                    Kind::Labels => "label",
                },
                found: magic,
                expected: kind.magic(),
            });
        }
    }
    if got < header_len {
        return Err(DataError::IdxTruncated {
            path: path.to_string(),
            what: format!("an IDX {} header", kind.word()),
            expected: header_len as u64,
            actual: got as u64,
        });
    }
    let dims: Vec<u64> =
        header[4..].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64).collect();
    let what = match kind {
        Kind::Images => format!("{} images of {}x{}", dims[0], dims[1], dims[2]),
        Kind::Labels => format!("{} labels", dims[0]),
    };
    if kind == Kind::Images && (dims[1] == 0 || dims[2] == 0) {
        return Err(DataError::invalid(path, format!("IDX header says {what}: empty images")));
    }
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&p| usize::try_from(p).is_ok() && p < u64::MAX - header_len as u64)
        .ok_or_else(|| DataError::invalid(path, format!("IDX header says {what}: too large to load")))?;
    let expected = payload + header_len as u64;
    if let Some(len) = exact_len {
        if len < expected {
            return Err(DataError::IdxTruncated { path: path.to_string(), what, expected, actual: len });
        }
        if len > expected {
            return Err(DataError::IdxTrailingData { path: path.to_string(), what, expected });
        }
    }
    let mut data = Vec::with_capacity(payload.min(bound) as usize);
    (&mut r).take(payload).read_to_end(&mut data).map_err(read_err)?;
    if (data.len() as u64) < payload {
        return Err(DataError::IdxTruncated {
            path: path.to_string(),
            what,
            expected,
            actual: header_len as u64 + data.len() as u64,
        });
    }
    let mut one = [0u8; 1];
    if read_up_to(&mut r, &mut one).map_err(read_err)? > 0 {
        return Err(DataError::IdxTrailingData { path: path.to_string(), what, expected });
    }
    Ok(Idx { dims: dims.into_iter().map(|d| d as usize).collect(), data })
}

//! Deploy files (`.shrink` v1, [`shrink_runtime::deploy`]) from shrink models: every weight in
//! the smallest *lossless* encoding the allowed set offers — raw f32, a codebook when the
//! tensor holds at most 256 distinct values (weight sharing), sparse relative indices when it
//! has zeros (pruning), with canonical Huffman coding of codes and gaps when it is smaller.
//! Deep Compression's stages (pruned → quantized → Huffman) are the same model written with a
//! growing set of encodings.
use crate::{IoError, Result};
use shrink_graph::{Graph, TensorData};
use shrink_runtime::deploy::{
    Codebook, Codes, DeployMeta, DeployModel, Encoding, SignedCodes, SizeReport, Sparse,
};
use std::path::Path;

/// Which encodings the writer may choose from (raw is always allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encodings {
    /// Relative-index sparse storage of tensors with zeros.
    pub sparse: bool,
    /// Codebook + index storage of tensors with at most 256 distinct values.
    pub codebook: bool,
    /// Canonical Huffman coding of index and gap streams.
    pub huffman: bool,
}

impl Encodings {
    /// Every encoding.
    pub const ALL: Encodings = Encodings { sparse: true, codebook: true, huffman: true };
    /// Raw f32 only (the dense baseline).
    pub const RAW: Encodings = Encodings { sparse: false, codebook: false, huffman: false };
}

fn deploy_err(e: shrink_runtime::deploy::DeployError) -> IoError {
    IoError::Format(e.to_string())
}

/// Sorted distinct values of `w` (0 included when present), if there are at most 256.
fn distinct_values(w: &[f32]) -> Option<Vec<f32>> {
    let mut d: Vec<f32> = Vec::new();
    for &v in w {
        let v = if v == 0.0 { 0.0 } else { v };
        if let Err(pos) = d.binary_search_by(|c| c.total_cmp(&v)) {
            if d.len() == 256 {
                return None;
            }
            d.insert(pos, v);
        }
    }
    Some(d)
}

fn index_bits(n: usize) -> u8 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1) as u8
}

/// A codebook of exactly the values of `w` (lossless), Huffman-coded indices when allowed and
/// smaller; `None` when `w` holds more than 256 distinct values.
fn exact_codebook(w: &[f32], huffman: bool) -> Result<Option<Encoding>> {
    let Some(centroids) = distinct_values(w) else { return Ok(None) };
    let bits = index_bits(centroids.len());
    let mut book = Codebook::nearest(w, centroids, bits).map_err(deploy_err)?;
    if huffman {
        let idx = book.indices.decode().map_err(deploy_err)?;
        book.indices = Codes::smallest(&idx, bits).map_err(deploy_err)?;
    }
    Ok(Some(Encoding::Codebook(book)))
}

/// The smallest lossless encoding of one f32 tensor among those `allowed`.
pub fn encode_f32(w: &[f32], allowed: Encodings) -> Result<Encoding> {
    let mut best = Encoding::Raw(TensorData::F32(w.to_vec().into()));
    let consider = |e: Encoding, best: &mut Encoding| {
        if e.encoded_size() < best.encoded_size() {
            *best = e;
        }
    };
    if allowed.codebook {
        if let Some(e) = exact_codebook(w, allowed.huffman)? {
            consider(e, &mut best);
        }
    }
    if allowed.sparse && w.contains(&0.0) {
        for gap_bits in 1..=8u8 {
            let sparse = Sparse::encode(w, gap_bits, allowed.huffman, |vals| {
                if allowed.codebook {
                    if let Some(e) = exact_codebook(vals, allowed.huffman)
                        .map_err(|e| shrink_runtime::deploy::DeployError::invalid(e.to_string()))?
                    {
                        return Ok(e);
                    }
                }
                Ok(Encoding::Raw(TensorData::F32(vals.to_vec().into())))
            })
            .map_err(deploy_err)?;
            consider(Encoding::Sparse(sparse), &mut best);
        }
    }
    Ok(best)
}

/// `graph` as a deploy model: every f32 constant of rank ≥ 2 (weights) in the smallest lossless
/// encoding `allowed` offers, every int8 constant of rank ≥ 2 whose values fit fewer than 8 bits
/// (int4 weight codes) at its bit width ([`SignedCodes`]); other constants raw.
pub fn to_deploy(graph: Graph, meta: DeployMeta, allowed: Encodings) -> Result<DeployModel> {
    let mut model = DeployModel::from_graph(graph, meta);
    let weights: Vec<(String, Vec<f32>)> = model
        .tensors
        .iter()
        .filter(|(_, t)| t.shape.len() >= 2)
        .filter_map(|(n, t)| match &t.encoding {
            Encoding::Raw(TensorData::F32(v)) => Some((n.clone(), v.to_vec())),
            _ => None,
        })
        .collect();
    for (name, w) in weights {
        let e = encode_f32(&w, allowed)?;
        if !matches!(e, Encoding::Raw(_)) {
            model.set_encoding(&name, e).map_err(deploy_err)?;
        }
    }
    encode_small_int8(&mut model, allowed)?;
    Ok(model)
}

/// Writes `model` to `path` atomically and returns its size report.
pub fn save_deploy(model: &DeployModel, path: &Path) -> Result<SizeReport> {
    let bytes = model.to_bytes().map_err(deploy_err)?;
    crate::atomic::write_atomic(path, &bytes)?;
    model.size_report().map_err(deploy_err)
}

/// Writes `model` to `path` atomically in the given form (the compact form: deflated header,
/// packed payloads) and returns that file's size report.
pub fn save_deploy_as(
    model: &DeployModel,
    path: &Path,
    form: shrink_runtime::deploy::Form,
) -> Result<SizeReport> {
    let bytes = model.to_bytes_as(form).map_err(deploy_err)?;
    crate::atomic::write_atomic(path, &bytes)?;
    model.size_report_as(form).map_err(deploy_err)
}

/// Reads a deploy file; errors name the file.
pub fn load_deploy(path: &Path) -> Result<DeployModel> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    DeployModel::read(&bytes).map_err(|e| IoError::InFile { path: path.to_path_buf(), msg: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_lossless_and_pick_the_smallest() {
        let mut w = vec![0f32; 4096];
        for i in (0..4096).step_by(13) {
            w[i] = [0.5f32, -0.25, 0.125][i % 3];
        }
        let raw = encode_f32(&w, Encodings::RAW).unwrap();
        let all = encode_f32(&w, Encodings::ALL).unwrap();
        assert!(matches!(all, Encoding::Sparse(_)));
        assert!(
            all.encoded_size() * 10 < raw.encoded_size(),
            "{} vs {}",
            all.encoded_size(),
            raw.encoded_size()
        );
        assert_eq!(all.decode_f32(&[64, 64]).unwrap(), w);
        let dense: Vec<f32> = (0..300).map(|i| i as f32 * 0.01).collect();
        let e = encode_f32(&dense, Encodings::ALL).unwrap();
        assert!(matches!(e, Encoding::Raw(_)), "300 distinct nonzero values stay raw");
    }
}

/// Int8 constants of rank ≥ 2 whose values fit fewer than 8 bits (int4 weight codes) stored at
/// their width, Huffman-coded when allowed and smaller.
fn encode_small_int8(model: &mut DeployModel, allowed: Encodings) -> Result<()> {
    let small: Vec<(String, Vec<i8>)> = model
        .tensors
        .iter()
        .filter(|(_, t)| t.shape.len() >= 2)
        .filter_map(|(n, t)| match &t.encoding {
            Encoding::Raw(TensorData::I8(v)) if v.iter().all(|&x| (-64..64).contains(&x)) => {
                Some((n.clone(), v.to_vec()))
            }
            _ => None,
        })
        .collect();
    for (name, v) in small {
        let e = Encoding::SignedCodes(SignedCodes::encode(&v, allowed.huffman).map_err(deploy_err)?);
        model.set_encoding(&name, e).map_err(deploy_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod signed_tests {
    use super::*;
    use shrink_graph::{DType, Dim, Fact, Tensor};

    #[test]
    fn int4_codes_are_stored_at_four_bits_and_read_back() {
        let mut g = Graph::new();
        let x = g.add_input("x", Fact::dims(DType::I8, vec![Dim::Fixed(1)])).unwrap();
        let codes: Vec<i8> = (0..1000).map(|i| ((i * 7) % 15) as i8 - 7).collect();
        g.add_const("w_int4", Tensor::i8(vec![10, 100], codes.clone())).unwrap();
        g.set_outputs(vec![x]);
        let m = to_deploy(g, DeployMeta::default(), Encodings::RAW).unwrap();
        let t = &m.tensors["w_int4"];
        assert!(matches!(&t.encoding, Encoding::SignedCodes(c) if c.bits() == 4));
        assert!(t.encoded_size() < 520, "{}", t.encoded_size());
        let back = DeployModel::read(&m.to_bytes().unwrap()).unwrap();
        let g = back.to_graph_f32().unwrap();
        assert_eq!(g.const_value(g.find("w_int4").unwrap()).unwrap().as_i8().unwrap(), &codes[..]);
    }
}

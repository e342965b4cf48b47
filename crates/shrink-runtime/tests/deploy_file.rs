//! Deploy files as a whole: a small graph written and read back runs identically; truncated,
//! bit-flipped and crafted files are one-line errors.
mod common;

use shrink_graph::Tensor;
use shrink_runtime::deploy::{DeployError, DeployModel, Encoding, MAGIC};
use shrink_runtime::exec::run;

fn input() -> Tensor {
    Tensor::f32(vec![3, 1, 6, 6], common::values(108, 9))
}

#[test]
fn a_small_graph_round_trips_and_runs_identically() {
    let m = common::model();
    let bytes = m.to_bytes().unwrap();
    assert!(bytes.starts_with(MAGIC));
    let back = DeployModel::read(&bytes).unwrap();
    assert_eq!(back, m, "the model read back equals the one written");
    let before = run(&m.to_graph_f32().unwrap(), &[input()]).unwrap();
    let after = run(&back.to_graph_f32().unwrap(), &[input()]).unwrap();
    assert_eq!(before, after, "identical outputs");
    assert_eq!(after[0].shape, vec![3, 10]);
    // Close to the uncompressed graph (8-bit conv, codebook fc).
    let dense = run(&common::graph(), &[input()]).unwrap();
    let (a, b) = (dense[0].as_f32().unwrap(), after[0].as_f32().unwrap());
    let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(err < 0.5, "max error {err}");
    assert!(err > 0.0, "the weights really were compressed");
    // Every encoding is in the file, and the graph keeps placeholders for encoded constants.
    let kinds: Vec<&str> = back.tensors.values().map(|t| t.encoding.kind()).collect();
    assert_eq!(kinds, vec!["raw", "bitpacked", "bitpacked", "sparse"]);
    assert_eq!(back.meta.classes.len(), 10);
    // Writing again gives the same bytes; write_to and to_bytes agree.
    let mut streamed = Vec::new();
    back.write_to(&mut streamed).unwrap();
    assert_eq!(streamed, bytes);
}

#[test]
fn payloads_are_aligned_and_the_size_report_matches_the_file() {
    let m = common::model();
    let bytes = m.to_bytes().unwrap();
    let r = m.size_report().unwrap();
    assert_eq!(r.file_bytes, bytes.len() as u64);
    assert_eq!(r.header_bytes + r.payload_bytes() + r.padding_bytes + r.checksum_bytes, r.file_bytes);
    for t in &r.tensors {
        assert_eq!(t.bytes as usize, m.tensors[&t.name].encoded_size());
    }
    let fc = r.tensors.iter().find(|t| t.name == "fc.weight").unwrap();
    assert_eq!(fc.raw_bytes, 1440 * 4);
    assert!(fc.bytes * 8 < fc.raw_bytes, "sparse codebook fc is > 8x smaller: {r}");
    assert!(r.to_string().contains("sparse gaps 3-bit huffman + codebook 16 x 4-bit"), "{r}");
    // Every payload starts at a multiple of 64: find each payload's tag byte after its offset.
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let area = (20 + hlen).div_ceil(64) * 64;
    assert!(bytes[20 + hlen..area].iter().all(|&b| b == 0), "zero padding");
    let header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + hlen]).unwrap();
    for t in header["tensors"].as_array().unwrap() {
        assert_eq!(t["offset"].as_u64().unwrap() % 64, 0);
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = common::model().to_bytes().unwrap();
    for n in 0..bytes.len() {
        let e = DeployModel::read(&bytes[..n]).expect_err(&format!("prefix {n}"));
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
}

#[test]
fn every_single_bit_flip_is_an_error() {
    let bytes = common::model().to_bytes().unwrap();
    let mut b = bytes.clone();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            b[i] ^= 1 << bit;
            assert!(DeployModel::read(&b).is_err(), "flip of bit {bit} of byte {i} went unnoticed");
            b[i] ^= 1 << bit;
        }
    }
}

#[test]
fn versions_and_checksums_are_checked_first() {
    let mut bytes = common::model().to_bytes().unwrap();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let e = DeployModel::read(&bytes).unwrap_err();
    assert_eq!(e.to_string(), "format version 7 is newer than this shrink (2)");
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let last = bytes.len() - 1;
    bytes[last] ^= 0x10;
    assert!(matches!(DeployModel::read(&bytes), Err(DeployError::Checksum { .. })));
    assert_eq!(DeployModel::read(b"SHRKPAK1 something else").unwrap_err(), DeployError::Magic);
}

/// Replaces `from` by `to` in the JSON header (same length or not) and reseals the file.
fn edit_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[20..20 + hlen]).unwrap();
    assert!(header.contains(from), "{from} not in {header}");
    let new = header.replacen(from, to, 1);
    let old_area = (20 + hlen).div_ceil(64) * 64;
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(new.len() as u64).to_le_bytes());
    out.extend_from_slice(new.as_bytes());
    out.resize((20 + new.len()).div_ceil(64) * 64, 0);
    out.extend_from_slice(&bytes[old_area..]);
    common::reseal(&mut out);
    out
}

#[test]
fn crafted_files_with_valid_checksums_are_one_line_errors() {
    let m = common::model();
    let bytes = m.to_bytes().unwrap();
    let len = bytes.len();
    // A payload length past the end of the file.
    let fc = m.tensors["fc.weight"].encoded_size();
    let e = DeployModel::read(&edit_header(&bytes, &format!("\"length\":{fc}"), "\"length\":999999"))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("tensor `fc.weight`: payload ["), "{msg}");
    assert!(msg.ends_with(&format!("ends past the file's {len} bytes")), "{msg}");
    // A huge shape for a raw tensor: checked against the payload, nothing allocated.
    let e =
        DeployModel::read(&edit_header(&bytes, "\"shape\":[4]", "\"shape\":[1099511627776]")).unwrap_err();
    assert!(e.to_string().starts_with("tensor `conv.bias`: raw elements needs 4398046511104 bytes"), "{e}");
    // A graph fact that disagrees with the tensor.
    let e = DeployModel::read(&edit_header(&bytes, "\"shape\":[{\"Fixed\":4}]", "\"shape\":[{\"Fixed\":5}]"))
        .unwrap_err();
    assert!(e.to_string().contains("conv.bias"), "{e}");
    // A node reading a value defined after it.
    let e = DeployModel::read(&edit_header(&bytes, "\"inputs\":[0,1,2]", "\"inputs\":[0,1,9]")).unwrap_err();
    assert!(e.to_string().starts_with("graph: node `conv` reads value 9"), "{e}");
    // A header length past the end.
    let mut b = bytes.clone();
    b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    common::reseal(&mut b);
    let e = DeployModel::read(&b).unwrap_err();
    assert!(e.to_string().starts_with("header: header needs 18446744073709551615 bytes"), "{e}");
}

#[test]
fn invalid_codes_are_rejected_when_decoding() {
    let m = common::model();
    let bytes = m.to_bytes().unwrap();
    let Encoding::BitPacked(fb) = &m.tensors["fc.bias"].encoding else { panic!() };
    // Locate fc.bias's payload: its codes are the last bytes of the payload (4-bit, 10 codes).
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + hlen]).unwrap();
    let area = (20 + hlen).div_ceil(64) * 64;
    let t = header["tensors"].as_array().unwrap().iter().find(|t| t["name"] == "fc.bias").unwrap();
    let end = area + (t["offset"].as_u64().unwrap() + t["length"].as_u64().unwrap()) as usize;
    assert_eq!(fb.codes.bits(), 4);
    // Claim 11 codes where 10 are stored: the length no longer fits the payload.
    let len_at = end - 5 - 8;
    let mut b = bytes.clone();
    b[len_at..len_at + 8].copy_from_slice(&11u64.to_le_bytes());
    common::reseal(&mut b);
    let e = DeployModel::read(&b).unwrap_err().to_string();
    assert!(e.starts_with("tensor `fc.bias`:"), "{e}");
}

#[test]
fn the_writer_refuses_what_would_not_read_back() {
    use shrink_graph::Op;
    let mut m = common::model();
    let fc = m.graph.nodes.iter().position(|n| n.name == "fc").unwrap();
    if let Op::Gemm(g) = &mut m.graph.nodes[fc].op {
        g.alpha = f32::INFINITY;
    }
    assert_eq!(m.to_bytes().unwrap_err().to_string(), "node `fc`: an attribute is not a finite number");
    let mut m = common::model();
    m.meta.mean = vec![f32::NAN];
    assert_eq!(m.to_bytes().unwrap_err().to_string(), "meta: mean and std must be finite");
    // A constant without a tensor, and a tensor that is no constant.
    let mut m = common::model();
    let t = m.tensors.remove("fc.bias").unwrap();
    assert_eq!(m.to_bytes().unwrap_err().to_string(), "constant `fc.bias` has no tensor");
    m.tensors.insert("fc.bias".into(), t.clone());
    m.tensors.insert("stray".into(), t);
    assert_eq!(m.to_bytes().unwrap_err().to_string(), "tensor `stray` is not a constant of the graph");
}

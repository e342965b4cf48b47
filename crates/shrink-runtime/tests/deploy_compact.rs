//! The compact form (format version 2: deflated header, packed payloads): it reads back to the
//! same model as the plain form, is smaller, is checked like the plain form (truncations, bit
//! flips, crafted headers are one-line errors), and plain version-1 files still load.
mod common;

use shrink_runtime::deploy::{DeployModel, Form};

/// A version-1 file of `common::model()` written by the plain writer, kept as bytes: the reader
/// must keep loading it (set `BLESS=1` to rewrite it after a deliberate change of the model).
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/small_v1.shrink");

#[test]
fn compact_files_read_back_to_the_same_model_and_are_smaller() {
    let m = common::model();
    let plain = m.to_bytes().unwrap();
    let compact = m.to_bytes_as(Form::Compact).unwrap();
    assert_eq!(u32::from_le_bytes(compact[8..12].try_into().unwrap()), 2, "version 2");
    assert_eq!(DeployModel::read(&compact).unwrap(), m);
    assert_eq!(DeployModel::read(&plain).unwrap(), m);
    let (rp, rc) = (m.size_report().unwrap(), m.size_report_as(Form::Compact).unwrap());
    assert_eq!(rc.file_bytes, compact.len() as u64, "the report matches the file");
    assert_eq!(rc.header_bytes + rc.payload_bytes() + rc.padding_bytes + rc.checksum_bytes, rc.file_bytes);
    assert_eq!(rc.padding_bytes, 0, "packed payloads");
    assert_eq!(rc.payload_bytes(), rp.payload_bytes(), "the same payloads");
    assert!(rc.header_bytes * 2 < rp.header_bytes, "header {} vs {}", rc.header_bytes, rp.header_bytes);
    assert!(compact.len() < plain.len());
    // Streaming and to_bytes_as agree; reading then writing gives the same bytes.
    let mut streamed = Vec::new();
    m.write_as(&mut streamed, Form::Compact).unwrap();
    assert_eq!(streamed, compact);
    assert_eq!(DeployModel::read(&compact).unwrap().to_bytes_as(Form::Compact).unwrap(), compact);
}

#[test]
fn plain_version_1_files_still_load() {
    let plain = common::model().to_bytes().unwrap();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(FIXTURE, &plain).unwrap();
    }
    let stored = std::fs::read(FIXTURE).expect("fixture (BLESS=1 writes it)");
    assert_eq!(u32::from_le_bytes(stored[8..12].try_into().unwrap()), 1, "a version-1 file");
    assert_eq!(stored, plain, "the plain writer still writes version-1 bytes");
    assert_eq!(DeployModel::read(&stored).unwrap(), common::model());
}

#[test]
fn every_truncation_and_bit_flip_of_a_compact_file_is_a_one_line_error() {
    let bytes = common::model().to_bytes_as(Form::Compact).unwrap();
    for n in 0..bytes.len() {
        let e = DeployModel::read(&bytes[..n]).expect_err(&format!("prefix {n}"));
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
    let mut b = bytes.clone();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            b[i] ^= 1 << bit;
            assert!(DeployModel::read(&b).is_err(), "flip of bit {bit} of byte {i} went unnoticed");
            b[i] ^= 1 << bit;
        }
    }
}

/// Rewrites the compact file's header (inflated, edited, deflated again) and reseals it.
fn edit_compact_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let hlen = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let json = shrink_runtime::deploy::compact::inflate(&bytes[20..20 + hlen]).unwrap();
    let json = String::from_utf8(json).unwrap();
    assert!(json.contains(from), "{from} not in {json}");
    let new = shrink_runtime::deploy::compact::deflate(json.replacen(from, to, 1).as_bytes());
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(new.len() as u64).to_le_bytes());
    out.extend_from_slice(&new);
    out.extend_from_slice(&bytes[20 + hlen..]);
    common::reseal(&mut out);
    out
}

#[test]
fn crafted_compact_headers_are_one_line_errors() {
    let m = common::model();
    let bytes = m.to_bytes_as(Form::Compact).unwrap();
    let fc = m.tensors["fc.weight"].encoded_size();
    let edited = edit_compact_header(&bytes, &format!("\"length\":{fc}"), "\"length\":999999");
    let len = edited.len();
    let e = DeployModel::read(&edited).unwrap_err().to_string();
    assert!(e.starts_with("tensor `fc.weight`: payload ["), "{e}");
    assert!(e.ends_with(&format!("ends past the file's {len} bytes")), "{e}");
    let e = DeployModel::read(&edit_compact_header(&bytes, "\"shape\":[4]", "\"shape\":[1099511627776]"))
        .unwrap_err();
    assert!(e.to_string().starts_with("tensor `conv.bias`: raw elements needs 4398046511104 bytes"), "{e}");
    // A header that is not deflate at all, with a valid checksum.
    let mut b = bytes.clone();
    b[20] ^= 0xff;
    b[21] ^= 0xff;
    common::reseal(&mut b);
    let e = DeployModel::read(&b).unwrap_err().to_string();
    assert!(e.starts_with("header:"), "{e}");
    assert!(!e.contains('\n'));
    // A header length past the end.
    let mut b = bytes.clone();
    b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    common::reseal(&mut b);
    let e = DeployModel::read(&b).unwrap_err();
    assert!(e.to_string().starts_with("header: header needs 18446744073709551615 bytes"), "{e}");
}

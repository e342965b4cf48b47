//! Deploy files (`.shrink` v1): reading arbitrary bytes must be an error or a model, never a
//! panic or a huge allocation; a model that reads must decode every tensor, convert to an f32
//! graph and write back to bytes that read again and write the same bytes.
//!
//! Each input is read twice: as it is (the checksum path, which rejects almost every mutation)
//! and with its trailing CRC-32 recomputed, so mutations reach the header and payload parsers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shrink_runtime::deploy::DeployModel;

fn check(data: &[u8]) {
    let Ok(m) = DeployModel::read(data) else { return };
    for t in m.tensors.values() {
        t.to_tensor().expect("a tensor that read must decode");
    }
    m.to_graph_f32().expect("a model that read converts to f32");
    let bytes = m.to_bytes().expect("a model that read writes");
    let again = DeployModel::read(&bytes).expect("what was written reads");
    // Bytes, not models: a raw f32 NaN is not equal to itself.
    assert_eq!(again.to_bytes().expect("writes again"), bytes);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 24 {
        let mut sealed = data.to_vec();
        let n = sealed.len() - 4;
        let crc = crc32fast::hash(&sealed[..n]);
        sealed[n..].copy_from_slice(&crc.to_le_bytes());
        check(&sealed);
    }
});

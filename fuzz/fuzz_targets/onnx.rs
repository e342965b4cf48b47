//! The ONNX reader: protobuf decoding, constant folding and the mapping onto the IR.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = shrink_io::onnx::import_onnx(data);
});

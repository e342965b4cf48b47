//! safetensors parsing, then building a model from the tensors (zoo inference, metadata JSON).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = shrink_io::model_file::parse_safetensors(data) {
        let _ = shrink_io::model_file::model_from_raw(raw, None);
    }
});

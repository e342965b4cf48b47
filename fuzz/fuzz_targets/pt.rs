//! `.pt` parsing (zip + restricted pickle + tensor views), then building a model.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = shrink_io::pt::parse_pt(data) {
        let _ = shrink_io::model_file::model_from_raw(raw, None);
    }
});

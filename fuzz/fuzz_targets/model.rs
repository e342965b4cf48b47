//! Model loading in general (format detection by content: packed, .pt, ONNX, safetensors), as
//! `load_model` does after reading the file. The first byte picks the file name (which must
//! play no part in detection) and the architecture override.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let path = Path::new(match sel % 4 {
        0 => "fuzz.safetensors",
        1 => "fuzz.pt",
        2 => "fuzz.onnx",
        _ => "fuzz.shrink",
    });
    let arch = match (sel / 4) % 3 {
        0 => None,
        1 => Some("resnet20"),
        _ => Some("lenet5"),
    };
    let _ = shrink_io::model_file::model_from_bytes(rest, path, arch);
});

//! The streaming safetensors reader (what `load_model` uses) reads the same tensors and
//! metadata as the in-memory parser and rejects damaged files with a one-line error.
use candle_core::Device;
use shrink_io::load_model;
use shrink_io::model_file::{parse_safetensors, read_safetensors_streaming, save_model};

fn saved_model(dir: &std::path::Path) -> std::path::PathBuf {
    let mut model = shrink_ir::zoo::build("lenet5", 3, &Device::Cpu).unwrap();
    let dims = model.params.tensor("fc1.weight").unwrap().dims().to_vec();
    let n: usize = dims.iter().product();
    let keep: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
    model
        .params
        .set_mask("fc1.weight", candle_core::Tensor::from_vec(keep, dims.as_slice(), &Device::Cpu).unwrap())
        .unwrap();
    let path = dir.join("m.safetensors");
    save_model(&model, &path).unwrap();
    path
}

#[test]
fn streaming_equals_in_memory_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_model(dir.path());
    let a = parse_safetensors(&std::fs::read(&path).unwrap()).unwrap();
    let b = read_safetensors_streaming(&path).unwrap();
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.tensors.keys().collect::<Vec<_>>(), b.tensors.keys().collect::<Vec<_>>());
    for (name, t) in &a.tensors {
        let u = &b.tensors[name];
        assert_eq!(t.dims(), u.dims(), "{name}");
        let (x, y) = (
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            u.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(x, y, "{name}");
    }
    // The loaded model keeps its mask, and the mask is no trainable variable.
    let model = load_model(&path, None).unwrap();
    let mask = model.params.mask("fc1.weight").unwrap();
    assert!(!mask.is_variable());
    assert!(model.params.get("fc1.weight").unwrap().var.as_tensor().is_variable());
}

#[test]
fn damaged_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_model(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated data", bytes[..bytes.len() - 10].to_vec()),
        ("trailing bytes", [bytes.as_slice(), &[0u8; 4]].concat()),
        ("truncated header", bytes[..20].to_vec()),
        ("huge header length", [&u64::MAX.to_le_bytes()[..], &bytes[8..]].concat()),
        ("garbage header", [&bytes[..8], &vec![b'x'; 64][..], &bytes[72..]].concat()),
    ];
    for (what, data) in cases {
        let bad = dir.path().join("bad.safetensors");
        std::fs::write(&bad, &data).unwrap();
        let err = load_model(&bad, None).err().unwrap_or_else(|| panic!("{what}: loaded")).to_string();
        assert!(err.contains("bad.safetensors"), "{what}: {err}");
        assert!(!err.contains('\n'), "{what}: {err}");
    }
}

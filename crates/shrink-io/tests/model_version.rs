//! Model files carry the version of their layer graph (`shrink.graph_version`): files written
//! before the key existed (fixtures/model_v0/, written by that code: `shrink prune` of
//! tiny_mlp_opset13.onnx, magnitude 0.5) keep loading, new files carry the key, and a version
//! newer than this build reads is a one-line error naming the file.
use candle_core::{Device, Tensor};
use shrink_io::model_file::{
    read_safetensors, read_safetensors_metadata, safetensors_bytes, GRAPH_VERSION, GRAPH_VERSION_KEY,
};
use shrink_ir::Mode;
use std::path::{Path, PathBuf};

fn old_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model_v0/tiny_mlp_pruned.safetensors")
}

fn outputs(m: &shrink_ir::Model) -> Vec<f32> {
    let x: Vec<f32> = (0..2 * 48).map(|i| ((i * 37) % 17) as f32 / 8.0 - 1.0).collect();
    let x = Tensor::from_vec(x, (2, 3, 4, 4), &Device::Cpu).unwrap();
    m.forward(&x, Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn files_written_before_the_version_key_load_and_new_files_carry_it() {
    let meta = read_safetensors_metadata(&old_file()).unwrap();
    assert!(!meta.contains_key(GRAPH_VERSION_KEY), "the fixture predates the key");
    assert!(meta.contains_key("shrink.graph"));
    let old = shrink_io::load_model(&old_file(), None).unwrap();
    assert!(old.params.contains("fc1.weight") && !old.params.masks().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.safetensors");
    shrink_io::save_model(&old, &new).unwrap();
    let meta = read_safetensors_metadata(&new).unwrap();
    assert_eq!(meta.get(GRAPH_VERSION_KEY), Some(&GRAPH_VERSION.to_string()));
    let back = shrink_io::load_model(&new, None).unwrap();
    assert_eq!(back.graph, old.graph);
    assert_eq!(outputs(&back), outputs(&old));
}

#[test]
fn a_newer_graph_version_is_a_one_line_error() {
    let raw = read_safetensors(&old_file()).unwrap();
    let tensors: Vec<(String, Tensor)> = raw.tensors.into_iter().collect();
    let dir = tempfile::tempdir().unwrap();
    for (version, needle) in
        [("2", "graph is version 2, newer than this shrink reads"), ("x", "bad `shrink.graph_version`")]
    {
        let mut metadata = raw.metadata.clone();
        metadata.insert(GRAPH_VERSION_KEY.into(), version.into());
        let path = dir.path().join(format!("v{version}.safetensors"));
        std::fs::write(&path, safetensors_bytes(&tensors, metadata).unwrap()).unwrap();
        let e = shrink_io::load_model(&path, None).unwrap_err().to_string();
        assert!(e.contains(needle) && e.starts_with(&path.display().to_string()), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

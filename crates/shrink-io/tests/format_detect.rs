//! Model files are recognised by content, whatever they are named: a safetensors model named
//! `.onnx`, `.pt` or `.ckpt` loads, an ONNX file named `.safetensors` loads, a training
//! checkpoint says what it is, and anything else is a one-line error naming the file and the
//! formats shrink reads.
use candle_core::{Device, Tensor};
use shrink_io::model_file::{safetensors_bytes, save_model};
use shrink_io::{load_model, IoError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn weights(m: &shrink_ir::Model) -> Vec<(String, Vec<f32>)> {
    m.params
        .iter()
        .map(|(n, p)| (n.clone(), p.var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn safetensors_loads_under_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = shrink_ir::zoo::build("lenet5", 1, &Device::Cpu).unwrap();
    let st = dir.path().join("m.safetensors");
    save_model(&model, &st).unwrap();
    for name in ["m.onnx", "m.pt", "m.pth", "m.ckpt", "m.shrink", "m"] {
        let renamed = dir.path().join(name);
        std::fs::copy(&st, &renamed).unwrap();
        let back = load_model(&renamed, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.meta.arch, "lenet5", "{name}");
        assert_eq!(weights(&back), weights(&model), "{name}");
    }
}

#[test]
fn onnx_and_pt_load_under_a_safetensors_name() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = fixtures().join("tiny_mlp_opset13.onnx");
    let want = weights(&load_model(&onnx, None).unwrap());
    let renamed = dir.path().join("tiny.safetensors");
    std::fs::copy(&onnx, &renamed).unwrap();
    assert_eq!(weights(&load_model(&renamed, None).unwrap()), want);

    let model = shrink_ir::zoo::build("lenet-300-100", 2, &Device::Cpu).unwrap();
    let pt = dir.path().join("m.safetensors");
    shrink_io::pt::save_pt(&model, &pt).unwrap();
    assert_eq!(weights(&load_model(&pt, None).unwrap()), weights(&model));

    let packed = dir.path().join("p.onnx");
    shrink_io::save_packed(&model, &packed).unwrap();
    assert_eq!(weights(&load_model(&packed, None).unwrap()), weights(&model));
}

#[test]
fn a_training_checkpoint_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let model = shrink_ir::zoo::build("lenet-300-100", 3, &Device::Cpu).unwrap();
    // Shaped like `shrink train`'s checkpoints: weights, optimizer buffers, loop state.
    let mut tensors: Vec<(String, Tensor)> =
        model.params.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone())).collect();
    tensors.push(("__optimizer__.fc1.weight.momentum".into(), model.params.tensor("fc1.weight").unwrap()));
    let meta = BTreeMap::from([
        ("shrink.meta".to_string(), serde_json::to_string(&model.meta).unwrap()),
        ("shrink.graph".to_string(), serde_json::to_string(&model.graph).unwrap()),
        ("shrink.train_state".to_string(), r#"{"epochs_done":1}"#.to_string()),
    ]);
    let path = dir.path().join("OUT.ckpt");
    std::fs::write(&path, safetensors_bytes(&tensors, meta).unwrap()).unwrap();
    let Err(err) = load_model(&path, None) else { panic!("a checkpoint is not a model") };
    assert!(matches!(err, IoError::TrainingCheckpoint(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("`{}` is a training checkpoint", path.display())), "{msg}");
    assert!(msg.contains(&format!("--resume {}", path.display())), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    // The same through the in-memory entry point.
    let bytes = std::fs::read(&path).unwrap();
    let err = shrink_io::model_file::model_from_bytes(&bytes, &path, None).err().unwrap();
    assert!(matches!(err, IoError::TrainingCheckpoint(_)), "{err}");
}

#[test]
fn unrecognised_and_damaged_files_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = shrink_ir::zoo::build("lenet5", 1, &Device::Cpu).unwrap();
    let st = dir.path().join("good.safetensors");
    save_model(&model, &st).unwrap();
    let good = std::fs::read(&st).unwrap();
    let onnx = std::fs::read(fixtures().join("tiny_cnn_opset17_bn.onnx")).unwrap();
    // Deterministic pseudo-random bytes (xorshift).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("random bytes", random, true),
        ("text", b"this is not a model\n".to_vec(), true),
        ("empty", Vec::new(), true),
        ("truncated safetensors", good[..good.len() / 2].to_vec(), false),
        ("truncated onnx", onnx[..onnx.len() / 2].to_vec(), false),
        ("truncated zip", b"PK\x03\x04\x14\x00".to_vec(), false),
        ("legacy pickle", b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.".to_vec(), false),
    ];
    for (what, data, unrecognised) in cases {
        for name in ["bad.safetensors", "bad.onnx", "bad.pt"] {
            let path = dir.path().join(name);
            std::fs::write(&path, &data).unwrap();
            let err = load_model(&path, None).err().unwrap_or_else(|| panic!("{what} as {name}: loaded"));
            let msg = err.to_string();
            assert!(msg.contains(name), "{what} as {name}: {msg}");
            assert!(!msg.contains('\n'), "{what} as {name}: {msg}");
            if unrecognised {
                assert!(msg.contains(shrink_io::format::RECOGNISED), "{what} as {name}: {msg}");
            }
        }
    }
}

#[test]
fn a_deploy_file_is_recognised_and_sent_to_shrink_run() {
    use shrink_graph::{DType, Fact, Graph};
    use shrink_runtime::deploy::{DeployMeta, DeployModel};
    let mut g = Graph::new();
    let x = g.add_input("x", Fact::new(DType::F32, &[2])).unwrap();
    g.set_outputs(vec![x]);
    let bytes = DeployModel::from_graph(g, DeployMeta::default()).to_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Recognised by content, whatever its name.
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(shrink_io::format::detect(&path).unwrap(), shrink_io::format::ModelFormat::Deploy);
    let err = load_model(&path, None).unwrap_err();
    assert_eq!(err.to_string(), format!("{} is a deploy file: run it with `shrink run`", path.display()));
}

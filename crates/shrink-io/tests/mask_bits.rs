//! Pruning masks in model files: implied by exact zeros (nothing stored) or bit-packed, so a
//! pruned file is the size of the dense one (plus the names of its masked weights in the
//! header), masks round-trip exactly, and files with the old f32 masks still load.
use candle_core::{DType, Device, Tensor};
use shrink_io::model_file::{read_safetensors, safetensors_bytes, save_model};
use shrink_io::{load_model, save_packed};
use shrink_ir::Model;
use std::collections::BTreeMap;

const MASKED: [&str; 3] = ["fc1.weight", "fc2.weight", "fc3.weight"];

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// lenet-300-100 with every weight 50 % masked (an irregular pattern).
fn half_masked() -> Model {
    let mut model = shrink_ir::zoo::build("lenet-300-100", 7, &Device::Cpu).unwrap();
    for name in MASKED {
        let dims = model.params.tensor(name).unwrap().dims().to_vec();
        let n: usize = dims.iter().product();
        let keep: Vec<f32> = (0..n).map(|i| ((i * 7919 + i / 3) % 2) as f32).collect();
        model.params.set_mask(name, Tensor::from_vec(keep, dims.as_slice(), &Device::Cpu).unwrap()).unwrap();
    }
    model
}

/// The same weights without masks.
fn unmasked(model: &Model) -> Model {
    let dense = shrink_ir::zoo::build("lenet-300-100", 7, &Device::Cpu).unwrap();
    for (name, p) in model.params.iter() {
        dense.params.set(name, p.var.as_tensor()).unwrap();
    }
    dense
}

fn assert_same_masks(a: &Model, b: &Model) {
    assert_eq!(a.params.masks().keys().collect::<Vec<_>>(), b.params.masks().keys().collect::<Vec<_>>());
    for (name, m) in a.params.masks() {
        assert_eq!(values(m), values(b.params.mask(name).unwrap()), "mask of {name}");
        assert_eq!(
            values(a.params.get(name).unwrap().var.as_tensor()),
            values(b.params.get(name).unwrap().var.as_tensor()),
            "{name}"
        );
    }
}

/// Allowance for the header naming the masked weights (the tensor data is the same size).
const NAMES_ALLOWANCE: u64 = 32 * MASKED.len() as u64 + 16;

#[test]
fn a_pruned_file_is_no_larger_than_the_dense_one_and_masks_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let model = half_masked();
    let (pruned, dense) = (dir.path().join("pruned.safetensors"), dir.path().join("dense.safetensors"));
    save_model(&model, &pruned).unwrap();
    save_model(&unmasked(&model), &dense).unwrap();
    let (p, d) = (std::fs::metadata(&pruned).unwrap().len(), std::fs::metadata(&dense).unwrap().len());
    assert!(p <= d + NAMES_ALLOWANCE, "pruned {p} bytes, dense {d}");
    // No mask tensor was written: every mask is implied by the zeros.
    let raw = read_safetensors(&pruned).unwrap();
    assert!(raw.tensors.keys().all(|k| !k.ends_with("_mask")), "{:?}", raw.tensors.keys());
    let back = load_model(&pruned, None).unwrap();
    assert_same_masks(&model, &back);
    // Saving the loaded model again gives the same bytes.
    let again = dir.path().join("again.safetensors");
    save_model(&back, &again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&pruned).unwrap());
}

#[test]
fn a_kept_exact_zero_falls_back_to_bits() {
    let dir = tempfile::tempdir().unwrap();
    let model = half_masked();
    // fc2.weight element 0 is kept (mask 1) but exactly 0: its zeros no longer tell the mask.
    let w = model.params.tensor("fc2.weight").unwrap();
    let mut v = values(&w);
    let keep = values(model.params.mask("fc2.weight").unwrap());
    let i = keep.iter().position(|&k| k == 1.0).unwrap();
    v[i] = 0.0;
    model.params.set("fc2.weight", &Tensor::from_vec(v, w.dims(), &Device::Cpu).unwrap()).unwrap();
    let (pruned, dense) = (dir.path().join("pruned.safetensors"), dir.path().join("dense.safetensors"));
    save_model(&model, &pruned).unwrap();
    save_model(&unmasked(&model), &dense).unwrap();
    let raw = read_safetensors(&pruned).unwrap();
    let bits = &raw.tensors["fc2.weight_mask"];
    assert_eq!(bits.dtype(), DType::U8);
    assert_eq!(bits.dims(), &[(300 * 100usize).div_ceil(8)]);
    assert!(!raw.tensors.contains_key("fc1.weight_mask"), "fc1's mask is still implied");
    let (p, d) = (std::fs::metadata(&pruned).unwrap().len(), std::fs::metadata(&dense).unwrap().len());
    assert!(p <= d + d / 32 + NAMES_ALLOWANCE, "pruned {p} bytes, dense {d}");
    let back = load_model(&pruned, None).unwrap();
    assert_same_masks(&model, &back);
    assert_eq!(values(back.params.mask("fc2.weight").unwrap())[i], 1.0);
    // Bit-packed files keep masks too.
    let packed = dir.path().join("p.shrink");
    save_packed(&model, &packed).unwrap();
    assert_same_masks(&model, &load_model(&packed, None).unwrap());
}

#[test]
fn old_files_with_f32_masks_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = half_masked();
    // The layout every shrink version before bit masks wrote.
    let mut tensors: Vec<(String, Tensor)> =
        model.params.iter().map(|(n, p)| (n.clone(), p.var.as_tensor().clone())).collect();
    for (n, m) in model.params.masks() {
        tensors.push((format!("{n}_mask"), m.clone()));
    }
    let meta = BTreeMap::from([
        ("shrink.version".to_string(), "0.1.0".to_string()),
        ("shrink.meta".to_string(), serde_json::to_string(&model.meta).unwrap()),
        ("shrink.graph".to_string(), serde_json::to_string(&model.graph).unwrap()),
    ]);
    let old = dir.path().join("old.safetensors");
    std::fs::write(&old, safetensors_bytes(&tensors, meta).unwrap()).unwrap();
    let back = load_model(&old, None).unwrap();
    assert_same_masks(&model, &back);
    // Re-saved, it drops to the dense size.
    let new = dir.path().join("new.safetensors");
    save_model(&back, &new).unwrap();
    let (o, n) = (std::fs::metadata(&old).unwrap().len(), std::fs::metadata(&new).unwrap().len());
    assert!(n * 3 < o * 2, "old {o} bytes, new {n}");
}

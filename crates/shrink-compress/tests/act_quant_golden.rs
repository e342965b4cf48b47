//! Activation quantization against PyTorch (fixtures/golden/act_quant.safetensors, written by
//! tools/golden_act_quant.py): calibrated ranges (min-max, 99th percentile) equal torch's, and
//! the fake-quant LeNet-5 forward matches torch's logits; the slots survive a save/load.
use candle_core::Tensor;
use shrink_compress::quant::{self, ActConfig, ActRange};
use shrink_io::model_file::{model_from_tensors, read_safetensors};
use shrink_ir::{zoo, Mode, Model};
use std::collections::BTreeMap;

fn fixture() -> BTreeMap<String, Tensor> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/golden/act_quant.safetensors");
    read_safetensors(path.as_ref()).expect("fixture (run tools/golden_act_quant.py)").tensors
}

fn lenet5(fx: &BTreeMap<String, Tensor>) -> Model {
    let weights: BTreeMap<String, Tensor> = fx
        .iter()
        .filter(|(k, _)| k.ends_with("weight") || k.ends_with("bias"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    model_from_tensors(zoo::graph("lenet5").unwrap(), zoo::meta("lenet5").unwrap(), weights, BTreeMap::new())
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn calibrated_ranges_and_logits_match_pytorch() {
    let fx = fixture();
    for (method, range) in [("minmax", ActRange::MinMax), ("p99", ActRange::Percentile(99.0))] {
        for bits in [2u32, 4, 8] {
            let mut model = lenet5(&fx);
            let cfg = ActConfig::new(bits, range).unwrap();
            let slots = quant::calibrate(&mut model, &[fx["calib"].clone()], cfg).unwrap();
            let names: Vec<&str> = slots.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["input", "relu1", "relu2", "relu3", "relu4"]);
            for (name, slot) in &slots {
                let want = fx[&format!("range/{method}/{name}")].to_vec1::<f32>().unwrap();
                let lo = slot.offsets[0];
                let hi = lo + slot.scales[0] * slot.qmax;
                assert_eq!(lo, want[0], "{method} {name} lo");
                let tol = 1e-6 * want[1].abs().max(1.0);
                assert!((hi - want[1]).abs() <= tol, "{method} {name} hi {hi} vs torch {}", want[1]);
                if name != "input" {
                    assert_eq!(lo, 0.0, "ReLU outputs are unsigned");
                }
            }
            assert!(slots[0].1.offsets[0] < 0.0, "the normalized input is signed");
            let got = model.forward(&fx["x"], Mode::Eval).unwrap();
            let want = &fx[&format!("logits/{method}/b{bits}")];
            let d = max_abs_diff(&got, want);
            assert!(d < 1e-4, "{method} b{bits}: max |logit diff| {d}");
        }
    }
}

#[test]
fn activation_quantizers_survive_save_and_packed_load() {
    let fx = fixture();
    let mut model = lenet5(&fx);
    quant::calibrate(&mut model, &[fx["calib"].clone()], ActConfig::new(4, ActRange::Mse).unwrap()).unwrap();
    let want = model.forward(&fx["x"], Mode::Eval).unwrap();
    let fp32 = lenet5(&fx).forward(&fx["x"], Mode::Eval).unwrap();
    assert!(max_abs_diff(&want, &fp32) > 1e-3, "4-bit activations must change the logits");
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("m.safetensors");
    shrink_io::save_model(&model, &st).unwrap();
    let pk = dir.path().join("m.shrink");
    shrink_io::save_packed(&model, &pk).unwrap();
    for path in [st, pk] {
        let loaded = shrink_io::load_model(&path, None).unwrap();
        assert_eq!(loaded.act_quant, model.act_quant, "{}", path.display());
        let got = loaded.forward(&fx["x"], Mode::Eval).unwrap();
        assert_eq!(max_abs_diff(&got, &want), 0.0, "{}", path.display());
    }
}

#[test]
fn bad_activation_settings_are_errors() {
    assert!(ActConfig::new(0, ActRange::MinMax).is_err());
    assert!(ActConfig::new(17, ActRange::MinMax).is_err());
    let fx = fixture();
    let mut model = lenet5(&fx);
    assert!(quant::calibrate(&mut model, &[], ActConfig::new(8, ActRange::MinMax).unwrap()).is_err());
    assert!(model.act_quant.is_empty(), "nothing attached on error");
    let slot = quant::activation::act_slot(0.0, 1.0, 8);
    assert!(model.set_act_quant("no-such-node", slot).is_err());
}

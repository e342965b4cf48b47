//! The torch-semantics pruning options against `torch.nn.utils.prune` (fixture written by
//! `tools/golden_torch_prune.py`): mask-only `ln_structured` (filters or input channels kept in
//! place, n = 1, 2, inf, and a second call on the remaining slices), cumulative amounts of
//! repeated `global_unstructured`, and seed 002's naive first-k channel count; plus naive vs
//! sorted channel pruning on a real network.
use serde_json::Value;
use shrink_compress::prune::torch_like::{global_unstructured_l1, ln_structured_mask, naive_first_k_keep};
use shrink_compress::prune::{prune_structured, Importance, KeepRule, StructuredPlan};
use shrink_ir::candle_core::{Device, Tensor};
use shrink_ir::Model;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_prune.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn dims(name: &str) -> Vec<usize> {
    match name {
        "conv1.weight" => vec![6, 1, 5, 5],
        _ => vec![10, 84],
    }
}

/// lenet5 with conv1 and fc3 holding the fixture's weights.
fn model(f: &Value) -> Model {
    let m = shrink_ir::zoo::build("lenet5", 0, &Device::Cpu).unwrap();
    for name in ["conv1.weight", "fc3.weight"] {
        let t = Tensor::from_vec(floats(&f["weights"][name]), dims(name), &Device::Cpu).unwrap();
        m.params.get(name).unwrap().var.set(&t).unwrap();
    }
    m
}

#[test]
fn ln_structured_masks_match_torch() {
    let f = fixture();
    for (case, c) in f["ln"].as_object().unwrap() {
        let name = c["weight"].as_str().unwrap();
        let values = floats(&f["weights"][name]);
        let n = match &c["n"] {
            Value::String(s) if s == "inf" => f64::INFINITY,
            v => v.as_f64().unwrap(),
        };
        let dim = c["dim"].as_u64().unwrap() as usize;
        let mask =
            ln_structured_mask(&values, &dims(name), None, c["amount"].as_f64().unwrap(), n, dim).unwrap();
        assert_eq!(mask, floats(&c["mask"]), "{case}");
        assert!(mask.contains(&0.0) && mask.contains(&1.0), "{case}: degenerate mask");
        if let Some(then) = c.get("then_amount") {
            let again = ln_structured_mask(&values, &dims(name), Some(&mask), then.as_f64().unwrap(), n, dim)
                .unwrap();
            assert_eq!(again, floats(&c["then_mask"]), "{case}: second call");
            assert_ne!(again, mask, "{case}: the second call pruned nothing");
        }
    }
}

#[test]
fn repeated_global_unstructured_compounds_like_torch() {
    let f = fixture();
    let mut m = model(&f);
    let weights = ["conv1.weight".to_string(), "fc3.weight".to_string()];
    let amount = f["global_amount"].as_f64().unwrap();
    for k in 1..=3 {
        global_unstructured_l1(&mut m, &weights, amount).unwrap();
        for name in &weights {
            let got: Vec<f32> = m.params.mask(name).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(got, floats(&f["global"][k.to_string()][name]), "call {k}: `{name}`");
        }
    }
}

#[test]
fn naive_channel_count_matches_the_lab() {
    let f = fixture();
    for (key, want) in f["naive"].as_object().unwrap() {
        let (n, p) = key.split_once('.').unwrap();
        let (n, p): (usize, f64) = (n.parse().unwrap(), p.parse().unwrap());
        let keep = naive_first_k_keep(n, p);
        let kept = keep.iter().filter(|k| **k).count();
        assert_eq!(kept as u64, want.as_u64().unwrap(), "n {n} p {p}");
        assert!(keep[..kept].iter().all(|k| *k), "the first channels are kept");
    }
}

/// Naive pruning keeps the first channels of each layer; sorted keeps the important ones.
#[test]
fn naive_and_sorted_channel_pruning_differ_on_a_real_network() {
    let m = shrink_ir::zoo::build("lenet5", 1, &Device::Cpu).unwrap();
    let ratios = [("conv1".to_string(), 0.5)].into();
    let naive = StructuredPlan { importance: Importance::Naive, rule: KeepRule::TopK, ratios };
    let (small, changes) = prune_structured(&m, &naive).unwrap();
    assert_eq!((changes[0].units_before, changes[0].units_after), (6, 3));
    let w = |m: &Model, n: &str| -> Vec<f32> {
        m.params.tensor(n).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    };
    let full = w(&m, "conv1.weight");
    assert_eq!(w(&small, "conv1.weight"), full[..3 * 25].to_vec(), "naive keeps filters 0..3");
    let sorted = StructuredPlan {
        importance: Importance::InputNorm,
        rule: KeepRule::TopK,
        ratios: naive.ratios.clone(),
    };
    let (small2, _) = prune_structured(&m, &sorted).unwrap();
    assert_eq!(w(&small2, "conv1.weight").len(), 3 * 25);
}

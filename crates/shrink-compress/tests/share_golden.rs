//! Weight sharing against the reference in `tools/share_golden.py`: k-means with linear
//! initialization (NumPy) and the centroid gradient (torch autograd through `W = C[idx]`).
use shrink_compress::share::{centroid_gradients, kmeans_1d, Init};
use std::path::Path;

fn fixture(name: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/share").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("json")
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn kmeans_matches_numpy_lloyd_with_linear_init() {
    let cases = fixture("kmeans.json");
    for case in cases.as_array().unwrap() {
        let k = case["k"].as_u64().unwrap() as usize;
        let values = floats(&case["values"]);
        let want_c = floats(&case["centroids"]);
        let want_a: Vec<u8> =
            case["assignment"].as_array().unwrap().iter().map(|a| a.as_u64().unwrap() as u8).collect();
        let got = kmeans_1d(&values, k, Init::Linear);
        for (g, w) in got.centroids.iter().zip(&want_c) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1e-3), "k={k}: centroid {g} vs numpy {w}");
        }
        assert_eq!(got.assignment, want_a, "k={k}: assignments differ");
    }
}

#[test]
fn centroid_gradient_is_torch_autograd_through_shared_weights() {
    let f = fixture("centroid_grad.json");
    let index: Vec<Option<u8>> = f["index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().filter(|&i| i >= 0).map(|i| i as u8))
        .collect();
    let c = floats(&f["centroids"]);
    let got = centroid_gradients(&index, &floats(&f["weight_grad"]), c.len());
    let lr = f["lr"].as_f64().unwrap();
    for ((g, w), (c0, after)) in
        got.iter().zip(floats(&f["centroid_grad"])).zip(c.iter().zip(floats(&f["centroids_after_sgd"])))
    {
        assert!((*g as f32 - w).abs() < 1e-6, "centroid gradient {g} vs torch {w}");
        assert!(((*c0 as f64 - lr * g) as f32 - after).abs() < 1e-6);
    }
}

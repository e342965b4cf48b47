//! Golden tests for pruning against PyTorch/NumPy: fixtures from `tools/golden_prune.py`.
use candle_core::{Device, Tensor};
use shrink_compress::prune::{self, Importance, KeepRule, MagnitudeRule, StructuredPlan, WeightImportance};
use shrink_ir::{Graph, Mode, Model, ModelMeta, Op, ParamKind, ParamStore};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

fn fixtures() -> BTreeMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/golden/prune.safetensors");
    shrink_io::model_file::read_safetensors(&path).expect("prune fixture").tensors
}

fn meta(shape: Vec<usize>) -> ModelMeta {
    ModelMeta { arch: "custom".into(), input_shape: shape, mean: vec![0.0], std: vec![1.0], classes: vec![] }
}

fn kind_of(name: &str) -> ParamKind {
    match name.rsplit('.').next().unwrap() {
        "running_mean" => ParamKind::RunningMean,
        "running_var" => ParamKind::RunningVar,
        "bias" if name.starts_with("bn") => ParamKind::BnBias,
        "weight" if name.starts_with("bn") => ParamKind::BnWeight,
        "bias" => ParamKind::Bias,
        _ => ParamKind::Weight,
    }
}

fn model(graph: Graph, fx: &BTreeMap<String, Tensor>, prefix: &str, shape: Vec<usize>) -> Model {
    let mut store = ParamStore::new();
    for node in &graph.nodes {
        for spec in node.op.params() {
            let name = format!("{}.{}", node.name, spec.suffix);
            store.insert(name.clone(), fx[&format!("{prefix}.{name}")].clone(), kind_of(&name)).unwrap();
        }
    }
    Model::new(graph, store, meta(shape)).unwrap()
}

fn mlp_graph(sizes: &[usize]) -> Graph {
    let mut g = Graph::new();
    let mut x = 0;
    for (i, w) in sizes.windows(2).enumerate() {
        x = g.push(
            format!("fc{}", i + 1),
            Op::Linear { in_features: w[0], out_features: w[1], bias: true },
            vec![x],
        );
        if i + 2 < sizes.len() {
            x = g.push(format!("relu{}", i + 1), Op::Relu, vec![x]);
        }
    }
    g
}

fn conv(cin: usize, cout: usize) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups: 1,
        bias: false,
    }
}

fn cnn_graph() -> Graph {
    let bn = |c| Op::BatchNorm { num_features: c, eps: 1e-5, momentum: 0.1 };
    let mut g = Graph::new();
    let mut x = g.push("conv1", conv(3, 8), vec![0]);
    x = g.push("bn1", bn(8), vec![x]);
    x = g.push("relu1", Op::Relu, vec![x]);
    x = g.push("conv2", conv(8, 12), vec![x]);
    x = g.push("bn2", bn(12), vec![x]);
    x = g.push("relu2", Op::Relu, vec![x]);
    x = g.push("gap", Op::GlobalAvgPool, vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    g.push("linear", Op::Linear { in_features: 12, out_features: 10, bias: true }, vec![x]);
    g
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn neuron_l2_matches_the_mnist_lab_prune_model() {
    let fx = fixtures();
    let base = model(mlp_graph(&[30, 24, 18, 12, 10]), &fx, "mlp", vec![30]);
    for p in ["0.2", "0.5", "0.9"] {
        let ratio: f64 = p.parse().unwrap();
        let ratios = ["fc1", "fc2", "fc3"].iter().map(|l| (l.to_string(), ratio)).collect();
        let plan = StructuredPlan {
            importance: Importance::OutputNorm { p: 2.0 },
            rule: KeepRule::KthKeepGe,
            ratios,
        };
        let (pruned, _) = prune::prune_structured(&base, &plan).unwrap();
        for l in ["fc1", "fc2", "fc3", "fc4"] {
            for s in ["weight", "bias"] {
                let got = pruned.params.tensor(&format!("{l}.{s}")).unwrap();
                let want = &fx[&format!("mlp.p{p}.{l}.{s}")];
                assert_eq!(
                    vec(&got),
                    vec(want),
                    "p={p} {l}.{s} (shape {:?} vs {:?})",
                    got.dims(),
                    want.dims()
                );
            }
        }
        let logits = pruned.forward(&fx["mlp.x"], Mode::Eval).unwrap();
        assert!(max_diff(&logits, &fx[&format!("mlp.p{p}.logits")]) < 1e-5, "p={p} logits");
    }
}

fn kept_filters(original: &Model, pruned: &Model, bn: &str) -> Vec<f32> {
    // Identify kept filters through their BatchNorm's running means (distinct random values).
    let name = format!("{bn}.running_mean");
    let orig = vec(&original.params.tensor(&name).unwrap());
    vec(&pruned.params.tensor(&name).unwrap())
        .iter()
        .map(|v| orig.iter().position(|x| x == v).unwrap() as f32)
        .collect()
}

#[test]
fn filter_ln_and_channel_pruning_match_pytorch() {
    let fx = fixtures();
    let base = model(cnn_graph(), &fx, "cnn", vec![3, 8, 8]);
    let cases = [
        ("ln1", Importance::OutputNorm { p: 1.0 }),
        ("ln2", Importance::OutputNorm { p: 2.0 }),
        ("chan", Importance::InputNorm),
    ];
    for (key, importance) in cases {
        for a in ["0.3", "0.5"] {
            let amount: f64 = a.parse().unwrap();
            let ratios = [("conv1".to_string(), amount), ("conv2".to_string(), amount)].into();
            let plan = StructuredPlan { importance, rule: KeepRule::TopK, ratios };
            let (pruned, changes) = prune::prune_structured(&base, &plan).unwrap();
            assert_eq!(changes.len(), 2);
            assert_eq!(
                kept_filters(&base, &pruned, "bn1"),
                vec(&fx[&format!("cnn.{key}.{a}.keep1")]),
                "{key} {a}"
            );
            assert_eq!(
                kept_filters(&base, &pruned, "bn2"),
                vec(&fx[&format!("cnn.{key}.{a}.keep2")]),
                "{key} {a}"
            );
            let logits = pruned.forward(&fx["cnn.x"], Mode::Eval).unwrap();
            let d = max_diff(&logits, &fx[&format!("cnn.{key}.{a}.logits")]);
            assert!(d < 1e-5, "{key} {a}: logits differ by {d}");
        }
    }
}

#[test]
fn unstructured_masks_match_numpy_and_torch() {
    let fx = fixtures();
    let base = model(cnn_graph(), &fx, "cnn", vec![3, 8, 8]);
    let weights = ["conv1.weight", "conv2.weight", "linear.weight"];
    let rules = [
        ("pct", MagnitudeRule::LayerPercentile),
        ("glob", MagnitudeRule::GlobalPercentile),
        ("exact", MagnitudeRule::ExactCount),
    ];
    for (key, rule) in rules {
        for q in [30, 50, 70] {
            let mut m = base.clone();
            m.params = base.params.deep_clone().unwrap();
            let map: BTreeMap<String, f64> =
                weights.iter().map(|w| (w.to_string(), q as f64 / 100.0)).collect();
            prune::prune_magnitude(&mut m, &map, rule, WeightImportance::Abs).unwrap();
            for w in weights {
                let got = vec(m.params.mask(w).unwrap());
                let want = vec(&fx[&format!("mask.{key}.{q}.{w}")]);
                let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
                assert_eq!(diff, 0, "{key} q={q} {w}: {diff} mask entries differ");
                // The masked weights are zero in the store.
                let vals = vec(&m.params.tensor(w).unwrap());
                assert!(vals.iter().zip(&got).all(|(v, k)| *k == 1.0 || *v == 0.0));
            }
        }
    }
}

#[test]
fn bad_requests_are_errors_naming_the_layer_or_value() {
    let fx = fixtures();
    let base = model(cnn_graph(), &fx, "cnn", vec![3, 8, 8]);
    let plan = |ratios: HashMap<&str, f64>| StructuredPlan {
        importance: Importance::OutputNorm { p: 2.0 },
        rule: KeepRule::TopK,
        ratios: ratios.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    let e = prune::prune_structured(&base, &plan([("conv9", 0.5)].into())).unwrap_err().to_string();
    assert!(e.contains("conv9"), "{e}");
    let e = prune::prune_structured(&base, &plan([("conv1", 1.5)].into())).unwrap_err().to_string();
    assert!(e.contains("1.5") && e.contains("conv1"), "{e}");
    let e = prune::prune_structured(&base, &plan([("conv1", 1.0)].into())).unwrap_err().to_string();
    assert!(e.contains("every unit") && e.contains("conv1"), "{e}");
    // The classifier's outputs are the classes: not prunable.
    let e = prune::prune_structured(&base, &plan([("linear", 0.5)].into())).unwrap_err().to_string();
    assert!(e.contains("linear"), "{e}");
    let _ = Device::Cpu;
}

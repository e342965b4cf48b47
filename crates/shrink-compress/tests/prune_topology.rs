//! Structured pruning on topologies beyond plain chains: a depthwise block (pruned in step with
//! the conv that feeds it) and an untouched grouped convolution (kept whole, the rest of the
//! model still prunable). Each pruned model must compute exactly what the original computes with
//! the removed filters zeroed.
use candle_core::{Device, Tensor};
use shrink_compress::prune::{self, Importance, KeepRule, StructuredPlan};
use shrink_ir::{Graph, Mode, Model, ModelMeta, Op, ParamKind, ParamStore};

/// Deterministic pseudo-random values in [-1, 1) (an LCG; no RNG crate needed).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn conv(cin: usize, cout: usize, groups: usize) -> Op {
    Op::Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups,
        bias: false,
    }
}

/// input [3,6,6] -> conv1 (3->8) -> relu -> conv2 (8->8, `groups`) -> relu -> conv3 (8->6) -> relu
/// -> global average -> flatten -> linear (6->4).
fn model(groups: usize) -> Model {
    let mut g = Graph::new();
    let mut x = g.push("conv1", conv(3, 8, 1), vec![0]);
    x = g.push("relu1", Op::Relu, vec![x]);
    x = g.push("conv2", conv(8, 8, groups), vec![x]);
    x = g.push("relu2", Op::Relu, vec![x]);
    x = g.push("conv3", conv(8, 6, 1), vec![x]);
    x = g.push("relu3", Op::Relu, vec![x]);
    x = g.push("gap", Op::GlobalAvgPool, vec![x]);
    x = g.push("flatten", Op::Flatten, vec![x]);
    g.push("linear", Op::Linear { in_features: 6, out_features: 4, bias: true }, vec![x]);
    let mut store = ParamStore::new();
    let shapes: [(&str, Vec<usize>, ParamKind); 5] = [
        ("conv1.weight", vec![8, 3, 3, 3], ParamKind::Weight),
        ("conv2.weight", vec![8, 8 / groups, 3, 3], ParamKind::Weight),
        ("conv3.weight", vec![6, 8, 3, 3], ParamKind::Weight),
        ("linear.weight", vec![4, 6], ParamKind::Weight),
        ("linear.bias", vec![4], ParamKind::Bias),
    ];
    for (i, (name, shape, kind)) in shapes.into_iter().enumerate() {
        let n = shape.iter().product();
        let t = Tensor::from_vec(values(n, i as u64 + 1), shape, &Device::Cpu).unwrap();
        store.insert(name.to_string(), t, kind).unwrap();
    }
    let meta = ModelMeta {
        arch: "custom".into(),
        input_shape: vec![3, 6, 6],
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        classes: vec![],
    };
    Model::new(g, store, meta).unwrap()
}

fn input() -> Tensor {
    Tensor::from_vec(values(2 * 3 * 6 * 6, 99), (2, 3, 6, 6), &Device::Cpu).unwrap()
}

fn filter_norms(m: &Model, layer: &str) -> Vec<f32> {
    let w = m.params.tensor(&format!("{layer}.weight")).unwrap();
    w.flatten_from(1).unwrap().sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap()
}

/// Indices of `layer`'s filters that the pruned model no longer has (matched by their L2 norm,
/// which the random weights make distinct).
fn removed_filters(original: &Model, pruned: &Model, layer: &str) -> Vec<usize> {
    let kept = filter_norms(pruned, layer);
    let all = filter_norms(original, layer);
    (0..all.len()).filter(|&i| !kept.contains(&all[i])).collect()
}

/// `original` with the given filters of `layer` set to zero.
fn with_zeroed_filters(original: &Model, layer: &str, filters: &[usize]) -> Model {
    let mut m = original.clone();
    m.params = original.params.deep_clone().unwrap();
    let name = format!("{layer}.weight");
    let w = m.params.tensor(&name).unwrap();
    let dims = w.dims().to_vec();
    let per_filter: usize = dims[1..].iter().product();
    let mut data = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for &f in filters {
        data[f * per_filter..(f + 1) * per_filter].fill(0.0);
    }
    m.params.set(&name, &Tensor::from_vec(data, dims, &Device::Cpu).unwrap()).unwrap();
    m
}

fn plan(layer: &str, ratio: f64) -> StructuredPlan {
    StructuredPlan {
        importance: Importance::OutputNorm { p: 2.0 },
        rule: KeepRule::TopK,
        ratios: [(layer.to_string(), ratio)].into(),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn a_depthwise_conv_is_pruned_in_step_with_its_producer() {
    let base = model(8);
    let (pruned, changes) = prune::prune_structured(&base, &plan("conv1", 0.5)).unwrap();
    assert!(changes.iter().any(|c| c.layer == "conv1" && c.units_after == 4), "{changes:?}");
    assert_eq!(pruned.params.tensor("conv1.weight").unwrap().dims(), &[4, 3, 3, 3]);
    assert_eq!(pruned.params.tensor("conv2.weight").unwrap().dims(), &[4, 1, 3, 3]);
    assert_eq!(pruned.params.tensor("conv3.weight").unwrap().dims(), &[6, 4, 3, 3]);
    let removed = removed_filters(&base, &pruned, "conv1");
    assert_eq!(removed.len(), 4);
    let reference = with_zeroed_filters(&base, "conv1", &removed);
    let x = input();
    let d = max_diff(&pruned.forward(&x, Mode::Eval).unwrap(), &reference.forward(&x, Mode::Eval).unwrap());
    assert!(d < 1e-5, "pruned depthwise block differs from the zeroed original by {d}");
}

#[test]
fn a_grouped_conv_stays_whole_and_the_rest_still_prunes() {
    let base = model(2);
    let (pruned, changes) = prune::prune_structured(&base, &plan("conv3", 0.5)).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(pruned.params.tensor("conv2.weight").unwrap().dims(), &[8, 4, 3, 3]);
    assert_eq!(pruned.params.tensor("conv3.weight").unwrap().dims(), &[3, 8, 3, 3]);
    let removed = removed_filters(&base, &pruned, "conv3");
    let reference = with_zeroed_filters(&base, "conv3", &removed);
    let x = input();
    let d = max_diff(&pruned.forward(&x, Mode::Eval).unwrap(), &reference.forward(&x, Mode::Eval).unwrap());
    assert!(d < 1e-5, "pruned model differs from the zeroed original by {d}");
    // The grouped conv's inputs are fixed: the producer feeding it cannot be pruned.
    let names = prune::structured::prunable_layers(&base).unwrap();
    assert!(!names.contains(&"conv1".to_string()), "{names:?}");
    assert!(names.contains(&"conv3".to_string()), "{names:?}");
}

//! Deep Compression centroid fine-tuning (`TrainConfig::share_weights`): after `share_weights`
//! every conv/linear weight holds at most 2^bits − 1 distinct nonzero values; training moves the
//! centroids but keeps the sharing structure (weights that shared a value still do), the pruned
//! zeros and the count of shared values.
use shrink_compress::prune::{prune_magnitude, MagnitudeRule, WeightImportance};
use shrink_compress::share::{share_weights, Codebook, Init, ShareConfig};
use shrink_io::data::{load, Normalize, Split};
use shrink_ir::candle_core::Device;
use shrink_ir::Model;
use shrink_train::{OptimizerConfig, Schedule, TrainConfig};
use std::collections::BTreeMap;
use std::path::Path;

fn weights(m: &Model, name: &str) -> Vec<f32> {
    m.params.tensor(name).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn centroid_fine_tuning_keeps_the_codebook_structure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let data = load(&root, Split::Train).expect("embedded MNIST").subset(&(0..1024).collect::<Vec<_>>());
    let mut model = shrink_ir::zoo::build("lenet-300-100", 0, &Device::Cpu).unwrap();
    let names = ["fc1.weight", "fc2.weight", "fc3.weight"];
    let sparsity: BTreeMap<String, f64> = names.iter().map(|n| (n.to_string(), 0.8)).collect();
    prune_magnitude(&mut model, &sparsity, MagnitudeRule::LayerPercentile, WeightImportance::Abs).unwrap();
    let cfg = ShareConfig { bits: 3, layer_bits: Default::default(), init: Init::Linear };
    share_weights(&mut model, &cfg).unwrap();
    let before: Vec<Codebook> =
        names.iter().map(|n| Codebook::recover(&weights(&model, n), 7).unwrap()).collect();
    let train = TrainConfig {
        epochs: 1,
        batch_size: 64,
        lr: 1e-3,
        optimizer: OptimizerConfig::sgd(0.9, 0.0),
        schedule: Schedule::Constant,
        seed: 0,
        normalize: Normalize { mean: vec![0.5], std: vec![0.5] },
        augment: None,
        eval_batch_size: 256,
        checkpoint: None,
        resume: None,
        progress: false,
        sparsity: None,
        share_weights: true,
        identity: Default::default(),
        warmup_steps: 0,
    };
    shrink_train::train(&mut model, &data, None, &train).unwrap();
    for (name, old) in names.iter().zip(&before) {
        let new = Codebook::recover(&weights(&model, name), 7).expect("still at most 7 shared values");
        assert_eq!(new.centroids.len(), old.centroids.len(), "{name}: shared values merged or split");
        // Same positions pruned, and the same groups of weights share a value (the sorted order
        // of the centroids may change, so compare through a mapping old index -> new index).
        let mut map = vec![None; old.centroids.len()];
        for (o, n) in old.index.iter().zip(&new.index) {
            match (o, n) {
                (None, None) => {}
                (Some(o), Some(n)) => {
                    let m = map[*o as usize].get_or_insert(*n);
                    assert_eq!(m, n, "{name}: weights that shared a value no longer do");
                }
                _ => panic!("{name}: a pruned weight came back or a kept one became zero"),
            }
        }
        assert_ne!(new.centroids, old.centroids, "{name}: the centroids did not move");
    }
}

//! PyTorch's default parameter initialization, driven by a seeded generator.
use crate::error::Result;
use crate::graph::{Graph, ParamKind};
use crate::params::ParamStore;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Fills a store with fresh parameters for every node of `graph`, like PyTorch's module
/// constructors: conv/linear weights kaiming-uniform(a=√5) (bound 1/√fan_in), biases
/// U(±1/√fan_in), BatchNorm weight 1, bias 0, running mean 0, running var 1.
pub fn init_params(graph: &Graph, seed: u64, device: &Device) -> Result<ParamStore> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut store = ParamStore::new();
    for node in &graph.nodes {
        let specs = node.op.params();
        let fan_in: usize = specs
            .iter()
            .find(|s| s.kind == ParamKind::Weight)
            .map(|s| s.shape[1..].iter().product())
            .unwrap_or(1);
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        for spec in specs {
            let n: usize = spec.shape.iter().product();
            let values: Vec<f32> = match spec.kind {
                ParamKind::Weight | ParamKind::Bias => {
                    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
                }
                ParamKind::BnWeight | ParamKind::RunningVar => vec![1.0; n],
                ParamKind::BnBias | ParamKind::RunningMean => vec![0.0; n],
            };
            let t = Tensor::from_vec(values, spec.shape.as_slice(), device)?;
            store.insert(format!("{}.{}", node.name, spec.suffix), t, spec.kind)?;
        }
    }
    Ok(store)
}

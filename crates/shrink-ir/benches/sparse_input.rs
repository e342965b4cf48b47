//! Dense GEMM vs the sparse-activation kernel (`shrink_runtime::SparseActs`) on simple-dnn's two
//! big layers at batch 1000, over input densities; the crossover sets
//! `shrink_ir::ops::SPARSE_INPUT_MAX_DENSITY` (density 0 gives the fixed cost, mostly the weight
//! transpose, that `sparse_input_max_density` spreads over a batch).
//!
//! ```text
//! cargo bench -p shrink-ir --bench sparse_input
//! ```
//! Throughput is in *dense-equivalent* FLOPs (`2 · n · in · out`), so both read on one scale.
use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shrink_ir::ops;
use shrink_runtime::SparseActs;
use std::hint::black_box;
use std::time::Duration;

const N: usize = 1000;

/// Feature-major activations `[features, N]` with about `density` nonzeros (uniform in [0, 1)).
fn activations(features: usize, density: f64, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..features * N)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f64 / (1u64 << 24) as f64;
            if u < density {
                (u / density) as f32
            } else {
                0.0
            }
        })
        .collect()
}

fn bench_layer(c: &mut Criterion, name: &str, inf: usize, outf: usize) {
    let dev = Device::Cpu;
    let w = (Tensor::randn(0f32, 1.0, (outf, inf), &dev).unwrap() * 0.02).unwrap();
    let w_vec: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
    let mut g = c.benchmark_group(format!("sparse_input/{name}"));
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements((2 * N * inf * outf) as u64));
    let dense = Tensor::from_vec(activations(inf, 1.0, 1), (inf, N), &dev).unwrap().t().unwrap();
    g.bench_function("dense-gemm", |b| b.iter(|| black_box(ops::linear(&dense, &w, None, false).unwrap())));
    for density in [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5] {
        let xt = activations(inf, density, 2);
        let mut out = vec![0f32; outf * N];
        g.bench_function(format!("sparse-input-{density}"), |b| {
            b.iter(|| {
                let acts = SparseActs::from_feature_major(&xt, inf, N);
                acts.matmul_block(&w_vec, outf, &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_layer(c, "fc3-3136x6272", 3136, 6272);
    bench_layer(c, "fc2-1568x3136", 1568, 3136);
}

criterion_group!(sparse_input, benches);
criterion_main!(sparse_input);

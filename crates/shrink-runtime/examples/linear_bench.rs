//! Micro-benchmark of the plan's linear kernels on one layer: median ms of each candidate.
//!
//! Run: `cargo run --release -p shrink-runtime --example linear_bench -- [ROWS K N ITERS]`
//! (default: 1 3136 6272 30, simple-dnn's largest layer at batch 1).

use shrink_runtime::plan::linear::candidates;
use shrink_runtime::plan::{Epilogue, LinearStep, LinearWeights};
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let (rows, k, n, iters) = (
        a.first().copied().unwrap_or(1),
        a.get(1).copied().unwrap_or(3136),
        a.get(2).copied().unwrap_or(6272),
        a.get(3).copied().unwrap_or(30),
    );
    let w: Vec<f32> = (0..n * k).map(|i| ((i % 1013) as f32 - 506.0) * 1e-3).collect();
    let dense = LinearStep {
        k,
        n,
        weights: LinearWeights::DenseF32(w.clone()),
        bias: Some(vec![0.1; n]),
        epilogue: Epilogue::Relu,
    };
    let panel = LinearStep {
        weights: LinearWeights::PanelF32(shrink_runtime::plan::panel::pack(&w, k, n)),
        ..dense.clone()
    };
    let x: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut out = vec![0f32; rows * n];
    for (step, kern) in
        [&dense, &panel].into_iter().flat_map(|s| candidates(&s.weights).iter().map(move |&k| (s, k)))
    {
        step.run(kern, &x, &mut out);
        let mut t: Vec<f64> = (0..iters)
            .map(|_| {
                let s = Instant::now();
                step.run(kern, &x, &mut out);
                1e3 * s.elapsed().as_secs_f64()
            })
            .collect();
        t.sort_by(f64::total_cmp);
        let gb = (n * k * 4) as f64 / 1e9;
        println!(
            "{:<16} rows {rows} k {k} n {n}: median {:.3} ms, min {:.3} ms ({:.1} GB/s of weights at the min)",
            kern.name(),
            t[t.len() / 2],
            t[0],
            gb / (t[0] / 1e3)
        );
    }
}

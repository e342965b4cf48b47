//! Per-step latency of a `.shrink` deploy file's compiled plan, built with this crate alone
//! (no CLI): `cargo run --release -p shrink-runtime --example bench_deploy -- FILE BATCH [ITERS]`.
//! Prints the median latency and every step's mean time, slowest first.

use shrink_graph::Tensor;
use shrink_runtime::deploy::DeployModel;
use shrink_runtime::plan::{Plan, PlanOptions};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_deploy FILE.shrink BATCH [ITERS]";
    let path = args.get(1).ok_or(usage)?;
    let batch: usize = args.get(2).ok_or(usage)?.parse()?;
    let iters: usize = args.get(3).map_or(Ok(20), |s| s.parse())?;
    let graph = DeployModel::read(&std::fs::read(path)?)?.to_graph_f32()?;
    let plan = Plan::compile(&graph, &PlanOptions::default())?;
    let mut s = plan.session(batch)?;
    let shape: Vec<usize> = graph.values[graph.inputs[0]]
        .fact
        .shape
        .iter()
        .enumerate()
        .map(|(a, d)| d.fixed().unwrap_or(if a == 0 { batch } else { 1 }))
        .collect();
    let n: usize = shape.iter().product();
    let x = Tensor::f32(shape, (0..n).map(|k| ((k * 7919 % 1000) as f32 - 500.0) / 500.0).collect());
    let inputs = [x];
    s.run(&inputs)?;
    let mut ms = Vec::with_capacity(iters);
    let mut t = vec![0.0; plan.steps().len()];
    for _ in 0..iters {
        let t0 = Instant::now();
        s.run(&inputs)?;
        ms.push(1e3 * t0.elapsed().as_secs_f64());
        s.run_timed(&inputs, &mut t)?;
    }
    ms.sort_by(f64::total_cmp);
    println!("{path}: batch {batch}, median {:.3} ms, min {:.3} ms", ms[ms.len() / 2], ms[0]);
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_by(|&i, &j| t[j].total_cmp(&t[i]));
    for i in order {
        let st = &plan.steps()[i];
        println!("{:>9.3} ms  {:<36} {:<16} {}", 1e3 * t[i] / iters as f64, st.name, st.op, s.kernel_name(i));
    }
    Ok(())
}

//! `shrink bench MODEL`: latency of a model compiled into a runtime plan, per batch size
//! (median of `--iters` runs), and with `--per-layer` a table of the slowest steps (`--top N`;
//! every step with `--top 0` or `--json`).
use super::bench::BenchArgs;
use super::run::{compile, load_runtime_graph};
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use shrink_graph::{DType, Tensor};
use shrink_runtime::plan::Plan;
use std::path::Path;
use std::time::Instant;

/// Deterministic inputs of the session's shapes (f32: a fixed pseudo-random pattern; integers
/// and booleans: zeros, valid token ids and masks).
fn inputs(plan: &Plan, batch: usize, path: &Path) -> Result<Vec<Tensor>> {
    let g = plan.graph();
    g.inputs
        .iter()
        .map(|&i| {
            let v = &g.values[i];
            let shape: Vec<usize> = v
                .fact
                .shape
                .iter()
                .enumerate()
                .map(|(a, d)| match d.fixed() {
                    Some(n) => Ok(n),
                    None if a == 0 => Ok(batch),
                    None => Err(anyhow!(
                        "{}: input `{}` is {}: only the batch may be symbolic",
                        path.display(),
                        v.name,
                        v.fact
                    )),
                })
                .collect::<Result<_>>()?;
            let n: usize = shape.iter().product();
            Ok(match v.fact.dtype {
                DType::F32 => {
                    Tensor::f32(shape, (0..n).map(|k| ((k * 7919 % 1000) as f32 - 500.0) / 500.0).collect())
                }
                DType::Bool => Tensor::bool(shape, vec![true; n]),
                d => Tensor::from_i64s(d, shape, &vec![0; n]),
            })
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub fn run(a: &BenchArgs, path: &Path) -> Result<()> {
    if a.iters == 0 || a.batch.is_empty() || a.batch.contains(&0) {
        bail!("--iters and every --batch size must be positive");
    }
    let graph = load_runtime_graph(path)?.graph;
    let plan = compile(&graph, path, a.tune)?;
    let mut results = Vec::new();
    let mut tables = Vec::new();
    for &batch in &a.batch {
        let x = inputs(&plan, batch, path)?;
        let mut s = plan.session(batch).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let err = |e: shrink_runtime::EvalError| anyhow!("{}: {e}", path.display());
        for _ in 0..a.warmup {
            s.run(&x).map_err(err)?;
        }
        let mut ms = Vec::with_capacity(a.iters);
        for _ in 0..a.iters {
            let t = Instant::now();
            s.run(&x).map_err(err)?;
            ms.push(1e3 * t.elapsed().as_secs_f64());
        }
        let min = ms.iter().copied().fold(f64::INFINITY, f64::min);
        let med = median(&mut ms);
        results.push(json!({"batch": batch, "median_ms": med, "min_ms": min, "iters": a.iters}));
        if a.per_layer {
            let mut t = vec![0.0; plan.steps().len()];
            for _ in 0..a.iters {
                s.run_timed(&x, &mut t).map_err(err)?;
            }
            let total: f64 = t.iter().sum::<f64>().max(1e-12);
            let mut order: Vec<usize> = (0..t.len()).collect();
            order.sort_by(|&i, &j| t[j].total_cmp(&t[i]));
            let shown = if a.json || a.top == 0 { order.len() } else { a.top };
            let rows: Vec<_> = order
                .iter()
                .take(shown)
                .map(|&i| {
                    let st = &plan.steps()[i];
                    json!({
                        "name": st.name, "op": st.op, "kernel": s.kernel_name(i),
                        "ms": 1e3 * t[i] / a.iters as f64, "percent": 100.0 * t[i] / total,
                    })
                })
                .collect();
            tables.push(json!({"batch": batch, "steps": rows}));
        }
    }
    if a.json {
        let mut out = json!({
            "impl": format!("shrink-plan {}", env!("CARGO_PKG_VERSION")),
            "model": path.display().to_string(),
            "threads": rayon_threads(),
            "tune": a.tune,
            "results": results,
        });
        if a.per_layer {
            out["per_layer"] = json!(tables);
        }
        println!("{out}");
        return Ok(());
    }
    println!("model {} ({} steps, {} threads)", path.display(), plan.steps().len(), rayon_threads());
    for r in &results {
        println!(
            "batch {:>5}  median {:>9.3} ms  min {:>9.3} ms",
            r["batch"],
            r["median_ms"].as_f64().unwrap_or(0.0),
            r["min_ms"].as_f64().unwrap_or(0.0)
        );
    }
    for t in &tables {
        println!("\nslowest steps, batch {}:", t["batch"]);
        println!("{:<32} {:<16} {:<22} {:>9} {:>7}", "step", "op", "kernel", "ms", "%");
        for r in t["steps"].as_array().into_iter().flatten() {
            println!(
                "{:<32} {:<16} {:<22} {:>9.3} {:>6.1}%",
                r["name"].as_str().unwrap_or(""),
                r["op"].as_str().unwrap_or(""),
                r["kernel"].as_str().unwrap_or(""),
                r["ms"].as_f64().unwrap_or(0.0),
                r["percent"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

fn rayon_threads() -> usize {
    rayon_threads_env().unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

fn rayon_threads_env() -> Option<usize> {
    std::env::var("RAYON_NUM_THREADS").ok()?.parse().ok()
}

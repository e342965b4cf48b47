//! The README table of the model corpus: for every model, its size, shrink-runtime's largest
//! deviation from onnxruntime, and what 30 % filter-ln pruning through the graph IR removes.
//!
//!     cargo run --release -p shrink-compress --example graph_corpus_report
use safetensors::SafeTensors;
use shrink_compress::prune::graph::{apply_plan, plan_local, DepGraph, GroupImportance};
use shrink_graph::Tensor;
use std::path::PathBuf;

fn tensor(st: &SafeTensors, k: &str) -> Option<Tensor> {
    let v = st.tensor(k).ok()?;
    let shape = v.shape().to_vec();
    Some(match v.dtype() {
        safetensors::Dtype::F32 => Tensor::f32(
            shape,
            v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        ),
        _ => Tensor::i64(
            shape,
            v.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
        ),
    })
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shrink-io/tests/fixtures/graph_corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(String::from))
        .filter(|n| !n.ends_with(".io"))
        .collect();
    names.sort();
    names.dedup();
    println!("| model | nodes | params | MACs/example | max rel. diff vs onnxruntime | prunable groups | MACs after 30 % filter-ln | params after |");
    println!("|---|---|---|---|---|---|---|---|");
    for name in names {
        let g = shrink_io::onnx::graph_import::load_graph(&dir.join(format!("{name}.onnx"))).unwrap();
        let io = std::fs::read(dir.join(format!("{name}.io.safetensors"))).unwrap();
        let st = SafeTensors::deserialize(&io).unwrap();
        let x = tensor(&st, "in.0").unwrap();
        let want = tensor(&st, "out.0").unwrap();
        let got = shrink_runtime::run(&g, std::slice::from_ref(&x)).unwrap();
        let err = got[0]
            .as_f32()
            .unwrap()
            .iter()
            .zip(want.as_f32().unwrap())
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0f32, f32::max);
        let deps = DepGraph::build(&g);
        let plan = plan_local(&g, &deps, 0.3, GroupImportance::Lp(2.0));
        let mut p = g.clone();
        apply_plan(&mut p, &plan).unwrap();
        println!(
            "| {name} | {} | {} | {} | {err:.1e} | {} | {} ({:.2}x) | {} |",
            g.nodes.len(),
            g.params(),
            g.cost().macs,
            deps.groups.iter().filter(|g| g.prunable).count(),
            p.cost().macs,
            g.cost().macs as f64 / p.cost().macs.max(1) as f64,
            p.params()
        );
    }
}

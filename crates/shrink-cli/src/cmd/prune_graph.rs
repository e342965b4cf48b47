//! `shrink prune --engine graph`: structured pruning of any ONNX model through the open graph
//! IR: channel groups from every op's axes mapping, filter-ln importance, a saved/re-applied
//! prune plan, ONNX out.
use super::{parse_norm, PruneArgs};
use anyhow::{bail, Context, Result};
use shrink_compress::prune::graph::{apply_plan, plan_local, DepGraph, GroupImportance, PrunePlan};

/// Prune `a.model` as a graph and write ONNX.
pub fn run(a: &PruneArgs) -> Result<()> {
    if a.method != "filter-ln" && a.plan.is_none() {
        bail!("--engine graph supports --method filter-ln (or --plan PLAN.json), got `{}`", a.method);
    }
    if a.layers.is_some() || a.layer_sparsity.is_some() || a.sparsity_file.is_some() {
        bail!("--engine graph prunes every prunable channel group by --sparsity; per-layer choices are not supported yet");
    }
    let mut graph = crate::common::load_engine_graph(&a.model, a.graph.as_deref())?;
    let (params_before, macs_before) = (graph.params(), graph.cost().macs);
    let deps = DepGraph::build(&graph);
    let plan = match &a.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            serde_json::from_str::<PrunePlan>(&text)
                .with_context(|| format!("{}: not a prune plan", path.display()))?
        }
        None => {
            let Some(s) = a.sparsity else { bail!("--sparsity is required for --method filter-ln") };
            shrink_compress::prune::check_ratio("--sparsity", s)?;
            let p = parse_norm(&a.norm)?;
            if !p.is_finite() {
                bail!("--engine graph supports --norm 1 or 2 (or any finite p), not inf");
            }
            plan_local(&graph, &deps, s, GroupImportance::Lp(p as f32))
        }
    };
    apply_plan(&mut graph, &plan).map_err(|e| anyhow::anyhow!("{}: {e}", a.model.display()))?;
    if let Some(path) = &a.plan_out {
        shrink_io::atomic::write_atomic(path, serde_json::to_string_pretty(&plan)?.as_bytes())?;
    }
    shrink_io::onnx::graph_export::save_graph_onnx(&graph, &a.output)?;
    let (params_after, macs_after) = (graph.params(), graph.cost().macs);
    let groups = deps.groups.iter().filter(|g| g.prunable).count();
    if a.json {
        let out = serde_json::json!({
            "output": a.output.display().to_string(),
            "engine": "graph",
            "method": a.method,
            "channel_groups": deps.groups.len(),
            "prunable_groups": groups,
            "params_before": params_before, "params_after": params_after,
            "macs_before": macs_before, "macs_after": macs_after,
            "cuts": plan.cuts.len(),
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "{} channel groups ({groups} prunable); params {params_before} -> {params_after} ({:.2}x), MACs {macs_before} -> {macs_after} ({:.2}x); wrote {}",
        deps.groups.len(),
        params_before as f64 / params_after.max(1) as f64,
        macs_before as f64 / macs_after.max(1) as f64,
        a.output.display()
    );
    Ok(())
}

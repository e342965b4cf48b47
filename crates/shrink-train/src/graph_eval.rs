//! Evaluation of an open-IR graph (e.g. an imported ONNX model) with shrink-runtime: accuracy,
//! loss, per-example outputs and latency on an image dataset.

use crate::eval::EvalResult;
use crate::{Result, TrainError};
use shrink_graph::{DType, Dim, Graph, Tensor};
use shrink_io::data::{make_batch, Dataset, Normalize};
use std::time::Instant;

/// How a dataset's images feed a graph's single f32 input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPlan {
    /// Examples per run: the graph's fixed batch, or the caller's choice when it is symbolic.
    pub batch: usize,
    /// Whether the batch dimension is fixed (the last batch is padded to it).
    pub fixed_batch: bool,
    /// The input shape without the batch dimension (the image, possibly flattened).
    pub example_shape: Vec<usize>,
}

/// Check that `graph` takes one f32 input whose non-batch dimensions hold a `c×h×w` image
/// (as is, or flattened) and plan the batches.
pub fn plan_input(graph: &Graph, image: [usize; 3], batch_size: usize, what: &str) -> Result<InputPlan> {
    let bad = |msg: String| TrainError::Config(format!("{what}: {msg}"));
    let [input] = graph.inputs.as_slice() else {
        return Err(bad(format!(
            "the graph has {} inputs; one image input is supported",
            graph.inputs.len()
        )));
    };
    let fact = &graph.values[*input].fact;
    if fact.dtype != DType::F32 || fact.rank() < 2 {
        return Err(bad(format!(
            "input `{}` is {fact}; a batch of f32 images is expected",
            graph.values[*input].name
        )));
    }
    let example_shape: Vec<usize> = fact.shape[1..]
        .iter()
        .map(|d| {
            d.fixed().ok_or_else(|| {
                bad(format!("input `{}` has a symbolic image dimension ({fact})", graph.values[*input].name))
            })
        })
        .collect::<Result<_>>()?;
    let [c, h, w] = image;
    if example_shape.iter().product::<usize>() != c * h * w {
        return Err(bad(format!(
            "input `{}` is {fact} but the dataset has {c}×{h}×{w} images",
            graph.values[*input].name
        )));
    }
    if example_shape.len() == 3 && example_shape != [c, h, w] {
        return Err(bad(format!(
            "input `{}` is {fact} but the dataset has {c}×{h}×{w} images",
            graph.values[*input].name
        )));
    }
    let (batch, fixed_batch) = match &fact.shape[0] {
        Dim::Fixed(b) => (*b, true),
        Dim::Sym(_) => (batch_size.max(1), false),
    };
    Ok(InputPlan { batch, fixed_batch, example_shape })
}

/// Evaluate the graph's first output as class scores (logits, or probabilities of a softmax
/// head) on every example of `ds`, with the reference executor.
pub fn evaluate_graph(
    graph: &Graph,
    ds: &Dataset,
    norm: &Normalize,
    plan: &InputPlan,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<EvalResult> {
    evaluate_with(ds, norm, plan, progress, |x| {
        shrink_runtime::run(graph, &[x]).map_err(|e| TrainError::Config(e.to_string()))
    })
}

/// [`evaluate_graph`] with any runner of the graph (e.g. a compiled plan's sessions): `run`
/// maps one input batch to the graph's outputs; only its time counts as latency.
pub fn evaluate_with(
    ds: &Dataset,
    norm: &Normalize,
    plan: &InputPlan,
    progress: Option<&indicatif::ProgressBar>,
    mut run: impl FnMut(Tensor) -> Result<Vec<Tensor>>,
) -> Result<EvalResult> {
    let example: usize = plan.example_shape.iter().product();
    let indices: Vec<usize> = (0..ds.len()).collect();
    let mut buf = Vec::new();
    let (mut loss_sum, mut correct, mut secs, mut batches) = (0.0f64, 0usize, 0.0f64, 0usize);
    let mut predictions = Vec::with_capacity(ds.len());
    let mut logits = Vec::new();
    let mut outputs = 0;
    for chunk in indices.chunks(plan.batch) {
        let labels = make_batch(ds, chunk, norm, None, &mut buf);
        let rows = if plan.fixed_batch { plan.batch } else { chunk.len() };
        buf.resize(rows * example, 0.0);
        let shape: Vec<usize> = [rows].into_iter().chain(plan.example_shape.iter().copied()).collect();
        let x = Tensor::f32(shape, std::mem::take(&mut buf));
        let start = Instant::now();
        let out = run(x)?;
        secs += start.elapsed().as_secs_f64();
        let y = out.into_iter().next().ok_or_else(|| TrainError::Config("the graph has no output".into()))?;
        let scores = y.as_f32().ok_or_else(|| {
            TrainError::Config(format!("the first output is {:?}, not f32 scores", y.dtype()))
        })?;
        if y.shape.first() != Some(&rows) || rows == 0 {
            return Err(TrainError::Config(format!(
                "the first output has shape {:?}; [{rows}, classes] expected",
                y.shape
            )));
        }
        outputs = scores.len() / rows;
        for (k, &label) in labels.iter().enumerate() {
            let row = &scores[k * outputs..(k + 1) * outputs];
            let (pred, _) =
                row.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            predictions.push(pred as u32);
            correct += (pred as u32 == label) as usize;
            loss_sum += example_loss(row, label as usize);
            logits.extend_from_slice(row);
        }
        batches += 1;
        if let Some(pb) = progress {
            pb.inc(chunk.len() as u64);
        }
    }
    let n = ds.len().max(1);
    Ok(EvalResult {
        accuracy: correct as f64 / n as f64,
        loss: loss_sum / n as f64,
        samples: ds.len(),
        latency_ms_per_batch: 1000.0 * secs / batches.max(1) as f64,
        throughput: ds.len() as f64 / secs.max(1e-12),
        batch_size: plan.batch,
        predictions,
        logits,
        outputs,
    })
}

/// Cross-entropy of one example: `-ln p` when the row already is a probability distribution
/// (a softmax head), else of the softmax of the row.
fn example_loss(row: &[f32], label: usize) -> f64 {
    let Some(&target) = row.get(label) else { return f64::NAN };
    let sum: f64 = row.iter().map(|&v| v as f64).sum();
    if row.iter().all(|&v| (0.0..=1.0).contains(&v)) && (sum - 1.0).abs() < 1e-3 {
        return -(target.max(1e-12) as f64).ln();
    }
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    lse - target as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_of_logits_and_of_probabilities() {
        let l = example_loss(&[0.0, 0.0], 0);
        assert!((l - 2f64.ln()).abs() < 1e-9);
        let p = example_loss(&[0.25, 0.75], 1);
        assert!((p + 0.75f64.ln()).abs() < 1e-6);
    }
}

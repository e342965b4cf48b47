//! Evaluation: top-1 accuracy, mean cross-entropy loss and measured latency over a dataset.
use candle_core::{DType, Tensor};
use serde::Serialize;
use shrink_io::data::{make_batch, Dataset, Normalize};
use shrink_ir::prepared::DEFAULT_MAX_DENSITY;
use shrink_ir::{Model, Prepared};
use std::time::Instant;

/// Results of one evaluation pass.
#[derive(Debug, Clone, Serialize)]
pub struct EvalResult {
    /// Top-1 accuracy as a fraction.
    pub accuracy: f64,
    /// Mean cross-entropy loss.
    pub loss: f64,
    pub samples: usize,
    /// Mean wall time of a forward pass per batch (data preparation excluded).
    pub latency_ms_per_batch: f64,
    /// Examples per second of the forward passes.
    pub throughput: f64,
    pub batch_size: usize,
    /// Predicted class of every example, in dataset order.
    #[serde(skip)]
    pub predictions: Vec<u32>,
    /// Outputs of every example (`samples × outputs`, dataset order).
    #[serde(skip)]
    pub logits: Vec<f32>,
    /// Outputs per example.
    pub outputs: usize,
}

/// Cross-entropy loss and correct-prediction count of `logits` against `labels`.
pub fn loss_and_correct(logits: &Tensor, labels: &Tensor) -> candle_core::Result<(Tensor, usize)> {
    let loss = candle_nn::loss::cross_entropy(logits, labels)?;
    let pred = logits.argmax(1)?;
    let correct = pred.eq(labels)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize;
    Ok((loss, correct))
}

/// Evaluates `model` on `ds` in eval mode with batches of `batch_size`; linear layers with at
/// most [`DEFAULT_MAX_DENSITY`] nonzeros run as sparse kernels (see [`evaluate_with`]).
pub fn evaluate(
    model: &Model,
    ds: &Dataset,
    norm: &Normalize,
    batch_size: usize,
    progress: Option<&indicatif::ProgressBar>,
) -> crate::Result<EvalResult> {
    evaluate_with(model, ds, norm, batch_size, progress, DEFAULT_MAX_DENSITY)
}

/// [`evaluate`] with an explicit density threshold for sparse linear kernels (negative: always
/// dense; `1.0`: every linear layer sparse).
pub fn evaluate_with(
    model: &Model,
    ds: &Dataset,
    norm: &Normalize,
    batch_size: usize,
    progress: Option<&indicatif::ProgressBar>,
    max_density: f64,
) -> crate::Result<EvalResult> {
    let prepared =
        if max_density >= 0.0 { Prepared::sparse(model, max_density)? } else { Prepared::none(model) };
    evaluate_prepared(model, ds, norm, batch_size, progress, &prepared)
}

/// [`evaluate`] with kernels prepared by the caller (e.g. streamed quantized weights, see
/// [`shrink_ir::Prepared::streamed`]).
pub fn evaluate_prepared(
    model: &Model,
    ds: &Dataset,
    norm: &Normalize,
    batch_size: usize,
    progress: Option<&indicatif::ProgressBar>,
    prepared: &Prepared,
) -> crate::Result<EvalResult> {
    let device = model.device();
    let [c, h, w] = ds.image_shape();
    let batch_size = batch_size.max(1);
    let (mut loss_sum, mut correct, mut forward_secs, mut batches) = (0.0f64, 0usize, 0.0f64, 0usize);
    let mut buf = Vec::new();
    let mut predictions = Vec::with_capacity(ds.len());
    let mut all_logits = Vec::new();
    let mut outputs = 0;
    let indices: Vec<usize> = (0..ds.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let labels = make_batch(ds, chunk, norm, None, &mut buf);
        let x = Tensor::from_slice(&buf, (chunk.len(), c, h, w), &device)?;
        let y = Tensor::from_vec(labels, chunk.len(), &device)?;
        let start = Instant::now();
        let logits = model.forward_prepared(&x, prepared)?;
        let logits = logits.flatten_from(1)?;
        forward_secs += start.elapsed().as_secs_f64();
        let (loss, ok) = loss_and_correct(&logits, &y)?;
        predictions.extend(logits.argmax(1)?.to_vec1::<u32>()?);
        outputs = logits.dim(1)?;
        all_logits.extend(logits.flatten_all()?.to_vec1::<f32>()?);
        loss_sum += loss.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        correct += ok;
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
        latency_ms_per_batch: 1000.0 * forward_secs / batches.max(1) as f64,
        throughput: ds.len() as f64 / forward_secs.max(1e-12),
        batch_size,
        predictions,
        logits: all_logits,
        outputs,
    })
}

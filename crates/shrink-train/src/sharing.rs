//! Centroid fine-tuning of shared weights (Deep Compression, Han et al., ICLR 2016, §3.1):
//! every weight of a shared layer equals one of its layer's centroids, and the gradient of a
//! centroid is the sum of the gradients of the weights that share it,
//! `∂L/∂C_k = Σ_{i : I_i = k} ∂L/∂W_i`. Each step the centroids take a plain SGD step at the
//! current learning rate and the weights are rewritten from them; pruned weights stay zero.
//! The codebooks are recovered from the weights themselves (`shrink share` leaves at most
//! `2^bits` distinct nonzero values per layer), so a checkpoint needs no extra state.
use crate::{Result, TrainError};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use shrink_compress::share::{centroid_gradients, Codebook};
use shrink_ir::{Model, Op};

struct SharedVar {
    name: String,
    var: Var,
    book: Codebook,
}

/// The shared conv/linear weights of a model, bound to its variables.
pub(crate) struct Sharing {
    layers: Vec<SharedVar>,
}

impl Sharing {
    /// Binds every conv/linear weight; a weight with more than 256 distinct nonzero values was
    /// not clustered and is an error naming it.
    pub(crate) fn new(model: &Model) -> Result<Sharing> {
        let mut layers = Vec::new();
        for n in &model.graph.nodes {
            if !matches!(n.op, Op::Linear { .. } | Op::Conv2d { .. }) {
                continue;
            }
            let name = format!("{}.weight", n.name);
            let var = model.params.get(&name)?.var.clone();
            let w: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
            let book = Codebook::recover(&w, 256).ok_or_else(|| {
                TrainError::Config(format!(
                    "--share-weights: `{name}` holds more than 256 distinct values; cluster the model first (`shrink share`)"
                ))
            })?;
            layers.push(SharedVar { name, var, book });
        }
        Ok(Sharing { layers })
    }

    /// Moves each centroid by `-lr · Σ ∂L/∂W_i` over its weights and removes the shared weights'
    /// gradients from `grads`, so the optimizer leaves them to [`Sharing::after_step`].
    pub(crate) fn before_step(&mut self, grads: &mut GradStore, lr: f64) -> Result<()> {
        for l in &mut self.layers {
            let Some(g) = grads.remove(l.var.as_tensor()) else { continue };
            let g: Vec<f32> = g.flatten_all()?.to_vec1()?;
            let sum = centroid_gradients(&l.book.index, &g, l.book.centroids.len());
            for (c, s) in l.book.centroids.iter_mut().zip(sum) {
                *c = (*c as f64 - lr * s) as f32;
            }
            if l.book.centroids.iter().any(|c| !c.is_finite()) {
                return Err(TrainError::Config(format!(
                    "a centroid of `{}` became non-finite; lower --lr",
                    l.name
                )));
            }
        }
        Ok(())
    }

    /// Rewrites every shared weight from its centroid (zero where pruned).
    pub(crate) fn after_step(&self) -> Result<()> {
        for l in &self.layers {
            let w: Vec<f32> =
                l.book.index.iter().map(|i| i.map_or(0.0, |k| l.book.centroids[k as usize])).collect();
            let t = Tensor::from_vec(w, l.var.as_tensor().dims(), l.var.as_tensor().device())?;
            l.var.set(&t)?;
        }
        Ok(())
    }
}

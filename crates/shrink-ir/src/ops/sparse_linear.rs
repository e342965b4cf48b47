//! `act(x Wᵀ + b)` with `W` in CSR form (eval only, no gradient): see [`shrink_runtime::sparse`].
use candle_core::{Result, Tensor};
use shrink_runtime::Csr;

/// Sparse fully-connected layer on a 2-D `x` [N, in]; returns [N, out] (a transposed view of the
/// feature-major result, which the next layer reads without a copy).
pub fn sparse_linear(x: &Tensor, w: &Csr, b: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    let (n, cols) = x.dims2()?;
    if cols != w.cols {
        candle_core::bail!("sparse linear expects {} input features, got {cols}", w.cols);
    }
    // Activations are feature-major, so `x.t()` is usually contiguous already: read it in place.
    let xt = x.t()?.contiguous()?;
    let bias = match b {
        Some(b) => Some(b.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let mut out = vec![0f32; w.rows * n];
    crate::view::with_f32_values(&xt, |xt| w.matmul_t(xt, n, bias.as_deref(), relu, &mut out))
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Tensor::from_vec(out, (w.rows, n), x.device())?.t()
}

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
    let xt = x.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let bias = match b {
        Some(b) => Some(b.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let mut out = vec![0f32; w.rows * n];
    w.matmul_t(&xt, n, bias.as_deref(), relu, &mut out);
    Tensor::from_vec(out, (w.rows, n), x.device())?.t()
}

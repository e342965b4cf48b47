//! Fused fully-connected layer `y = act(x Wᵀ + b)` with a hand-written backward.
//!
//! The op works feature-major, `Yᵀ = act(W Xᵀ + b)`: activations live as contiguous [features, N]
//! buffers that the next layer reads through a free transpose, so every GEMM operand has unit
//! stride on the side the GEMM packs fastest (a strided gather costs ~12 % of a step).
//!
//! candle's autograd accumulates every gradient as `zeros_like(w) + dw`: for the 25.9 M weights
//! of simple-dnn that is a 104 MB memset plus a 312 MB add per step, on top of the GEMMs. This
//! op computes `dW = G'ᵀ X` straight into a fresh buffer with one GEMM (transposes are strides,
//! never copies), folds the bias add and an optional ReLU into the forward epilogue, and hands
//! the gradients of *variables* (the trainable weights) to [`backward`] through a per-thread
//! list instead of candle's accumulator (only while [`backward`] runs: candle's own backward
//! gets them the ordinary way). Non-variable weights (masked or fake-quantized views
//! of a variable) take the ordinary path so their gradient still flows to the variable.
use super::channel_bias::lane_sum;
use super::in_backward::{self, InBackwardUpdate};
use super::weight_grad::{self, View};
use crate::prepared::{for_each_block, WeightRows};
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, InplaceOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;
use shrink_runtime::SparseActs;
use std::cell::RefCell;

/// Input density at or below which a large batch multiplies only the nonzero inputs
/// ([`SparseActs`]) instead of running a dense GEMM. After a ReLU most inputs are exact zeros.
/// Measured with `cargo bench -p shrink-ir --bench sparse_input` on the 2-core Zen 4 dev machine:
/// simple-dnn's fc3 at batch 1000 takes 204–212 ms dense and 181 ms sparse at 40 % density.
pub const SPARSE_INPUT_MAX_DENSITY: f64 = 0.5;

/// The sparse forward's fixed cost, transposing the weight into panels, in samples times
/// density: it runs once per call, so small batches need sparser inputs to pay it back
/// (fc3: ~10 ms, which the kernel spends on 128 samples at 27 / 128 = 21 % density).
const SPARSE_INPUT_FIXED_SAMPLES: f64 = 27.0;

/// The highest input density at which the sparse-input forward beats the dense GEMM for a
/// batch of `n` samples: [`SPARSE_INPUT_MAX_DENSITY`] less the fixed cost spread over the
/// batch (0.29 at 128 samples, 0.47 at 1000, never for a single sample).
pub fn sparse_input_max_density(n: usize) -> f64 {
    (SPARSE_INPUT_MAX_DENSITY - SPARSE_INPUT_FIXED_SAMPLES / n.max(1) as f64).max(0.0)
}

thread_local! {
    /// Gradients of variables produced by [`LinearOp`] backward passes on this thread, waiting
    /// to be merged into the [`GradStore`] by [`backward`]. `None` outside [`backward`]: then
    /// the op hands its gradients to candle's own accumulator, so `loss.backward()` called
    /// directly still sees every Linear gradient (only slower).
    static DEFERRED: RefCell<Option<Vec<(Tensor, Tensor)>>> = const { RefCell::new(None) };
}

/// Ends the deferral on drop, also when the backward pass fails or panics.
struct DeferralScope;

impl DeferralScope {
    fn begin() -> Self {
        DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
        DeferralScope
    }

    fn take(&self) -> Vec<(Tensor, Tensor)> {
        DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default())
    }
}

impl Drop for DeferralScope {
    fn drop(&mut self) {
        DEFERRED.with(|d| *d.borrow_mut() = None);
    }
}

/// `loss.backward()` with the fused ops' fast gradient path: their variables' gradients skip
/// candle's accumulator (no zero-filled buffer and add per weight) and are merged here.
/// candle's own `loss.backward()` gives the same gradients, without that saving.
pub fn backward(loss: &Tensor) -> Result<GradStore> {
    let scope = DeferralScope::begin();
    let mut grads = loss.backward()?;
    let deferred = scope.take();
    for (param, grad) in deferred {
        let total = match grads.remove(&param) {
            Some(existing) => (existing + grad)?,
            None => grad,
        };
        grads.insert(&param, total);
    }
    Ok(grads)
}

/// `act(x Wᵀ + b)` for a 2-D `x` [N, in] and `w` [out, in]; `relu` selects the activation.
/// Falls back to composed candle ops off the CPU or for other dtypes.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, relu: bool) -> Result<Tensor> {
    let fast = x.device().is_cpu()
        && x.rank() == 2
        && w.rank() == 2
        && [Some(x), Some(w), b].iter().flatten().all(|t| t.dtype() == DType::F32);
    if !fast {
        let y = x.matmul(&w.t()?)?;
        let y = match b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        return if relu { y.relu() } else { Ok(y) };
    }
    let op = LinearOp { relu };
    if needs_grad(&[w]) {
        in_backward::note_use(w);
    }
    let xt = x.t()?;
    let yt = match b {
        Some(b) if needs_grad(&[x, w, b]) => xt.apply_op3(w, b, op)?,
        Some(b) => xt.apply_op3_no_bwd(w, b, &op)?,
        None if needs_grad(&[x, w]) => xt.apply_op2(w, op)?,
        None => xt.apply_op2_no_bwd(w, &op)?,
    };
    yt.t()
}

fn needs_grad(ts: &[&Tensor]) -> bool {
    ts.iter().any(|t| t.track_op())
}

/// The fused op on (Xᵀ [in, N], W [out, in], b [out]) → Yᵀ [out, N]; `relu` applies
/// `max(·, 0)` after the bias.
#[derive(Clone, Copy)]
struct LinearOp {
    relu: bool,
}

/// A 2-D f32 operand: its slice (from the layout's start offset) and row/column strides.
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<'a> Mat<'a> {
    fn of(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<Mat<'a>> {
        let data = match s {
            CpuStorage::F32(v) => &v[l.start_offset()..],
            _ => candle_core::bail!("linear: {what} must be f32"),
        };
        let (dims, st) = (l.dims(), l.stride());
        if dims.len() != 2 {
            candle_core::bail!("linear: {what} must be 2-D, got {dims:?}");
        }
        Ok(Mat { data, rows: dims[0], cols: dims[1], rs: st[0] as isize, cs: st[1] as isize })
    }

    /// The same matrix transposed (a stride swap).
    fn t(&self) -> Mat<'a> {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
}

fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `a · b` into a new row-major buffer.
fn matmul(a: &Mat, b: &Mat) -> Vec<f32> {
    let len = a.rows * b.cols;
    let mut dst: Vec<f32> = Vec::with_capacity(len);
    // SAFETY: `gemm_raw` writes all `len` outputs (no memset of a fresh buffer needed).
    unsafe {
        gemm_raw(a, b, dst.as_mut_ptr());
        dst.set_len(len);
    }
    dst
}

/// `a · b` written over the row-major `dst` (`a.rows * b.cols` values).
fn matmul_into(a: &Mat, b: &Mat, dst: &mut [f32]) {
    assert_eq!(dst.len(), a.rows * b.cols, "matmul: output length");
    // SAFETY: `dst` has room for every output (checked above).
    unsafe { gemm_raw(a, b, dst.as_mut_ptr()) }
}

/// `dst = a · b`, row-major.
///
/// # Safety
/// `dst` must be valid for `a.rows * b.cols` writes.
unsafe fn gemm_raw(a: &Mat, b: &Mat, dst: *mut f32) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner dimensions");
    // SAFETY: gemm with `read_dst = false` writes all m*n outputs before anything reads them;
    // the operand pointers and strides describe in-bounds views checked by candle's layouts.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.cs,
            a.rs,
            b.data.as_ptr(),
            b.cs,
            b.rs,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(),
        );
    }
}

/// The nonzeros of the feature-major input `xt` ([in, n]) when it is contiguous and has at most
/// [`sparse_input_max_density`] of them (counted first: most dense inputs stop that count early).
fn sparse_input(xt: &Mat) -> Option<SparseActs> {
    let (features, n) = (xt.rows, xt.cols);
    if xt.rs != n as isize || xt.cs != 1 || features * n == 0 {
        return None;
    }
    let values = &xt.data[..features * n];
    let budget = (sparse_input_max_density(n) * values.len() as f64) as usize;
    if budget == 0 {
        return None;
    }
    let mut nnz = 0usize;
    for chunk in values.chunks(1 << 16) {
        nnz += chunk.iter().filter(|v| **v != 0.0).count();
        if nnz > budget {
            return None;
        }
    }
    Some(SparseActs::from_feature_major(values, features, n))
}

/// Adds the bias to each row of the feature-major `yt` [out, n] and applies the ReLU.
fn epilogue(yt: &mut [f32], n: usize, bias: Option<&[f32]>, relu: bool) {
    if bias.is_none() && !relu {
        return;
    }
    yt.par_chunks_mut(n.max(1)).enumerate().for_each(|(o, row)| {
        if let Some(b) = bias {
            row.iter_mut().for_each(|v| *v += b[o]);
        }
        if relu {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    });
}

/// `act(x Wᵀ + b)` (eval only) with `W` [out, in] produced block by block by `w`: each block of
/// output rows is filled just before its GEMM, so the whole weight never exists at once.
pub fn linear_streamed(
    x: &Tensor,
    w: &dyn WeightRows,
    out_features: usize,
    b: Option<&Tensor>,
    relu: bool,
) -> Result<Tensor> {
    let (n, inf) = x.dims2()?;
    // Activations are feature-major: `x` is usually a transposed view of a contiguous [in, n].
    let xt = x.t()?.contiguous()?.to_dtype(DType::F32)?;
    let bias = match b {
        Some(b) => Some(b.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let mut yt = vec![0f32; out_features * n];
    {
        let (xs, xl) = xt.storage_and_layout();
        let candle_core::Storage::Cpu(xs) = &*xs else { candle_core::bail!("linear: CPU tensors expected") };
        let xm = Mat::of(xs, xl, "input")?;
        let acts = sparse_input(&xm);
        for_each_block(w, out_features, inf, |start, block| {
            let rows = block.len() / inf.max(1);
            let dst = &mut yt[start * n..(start + rows) * n];
            match &acts {
                Some(acts) => acts.matmul_block(block, rows, dst),
                None => {
                    let wm = Mat { data: block, rows, cols: inf, rs: inf as isize, cs: 1 };
                    matmul_into(&wm, &xm, dst)
                }
            }
        });
    }
    epilogue(&mut yt, n, bias.as_deref(), relu);
    Tensor::from_vec(yt, (out_features, n), x.device())?.t()
}

impl LinearOp {
    fn forward(&self, xt: Mat, w: Mat, bias: Option<&[f32]>) -> Result<(CpuStorage, Shape)> {
        if xt.rows != w.cols {
            candle_core::bail!("linear: input has {} features, weight expects {}", xt.rows, w.cols);
        }
        let (out, n) = (w.rows, xt.cols);
        let dense_w = w.cs == 1 && w.rs == w.cols as isize;
        let mut yt = match sparse_input(&xt).filter(|_| dense_w) {
            Some(acts) => {
                let mut yt = vec![0f32; out * n];
                acts.matmul_block(&w.data[..out * w.cols], out, &mut yt);
                yt
            }
            None => matmul(&w, &xt),
        };
        epilogue(&mut yt, n, bias, self.relu);
        Ok((CpuStorage::F32(yt), Shape::from((out, n))))
    }

    /// Gradients for (Xᵀ, W, b) given the output `yt` and its gradient `g`.
    fn backward(
        &self,
        xt: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        yt: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, n) = yt.dims2()?;
        let g = g.contiguous()?;
        let g = if self.relu { g.apply_op2_no_bwd(&yt.contiguous()?, &ReluMask)? } else { g };
        let dev = xt.device();
        let (dxt, db) = {
            let (gs, gl) = g.storage_and_layout();
            let (ws, wl) = w.storage_and_layout();
            let (candle_core::Storage::Cpu(gs), candle_core::Storage::Cpu(ws)) = (&*gs, &*ws) else {
                candle_core::bail!("linear backward: CPU tensors expected")
            };
            let (gm, wm) = (Mat::of(gs, gl, "grad")?, Mat::of(ws, wl, "weight")?);
            // dXᵀ = Wᵀ G' comes out [in, N] contiguous, as Xᵀ itself usually is. It reads W, so it
            // runs before any in-place update of W below.
            let dxt = if xt.track_op() {
                Some(Tensor::from_vec(matmul(&wm.t(), &gm), (wm.cols, n), dev)?)
            } else {
                None
            };
            let db = match b {
                Some(b) if b.track_op() => {
                    let sums: Vec<f32> = gm.data[..out * n].par_chunks(n.max(1)).map(lane_sum).collect();
                    Some(Tensor::from_vec(sums, out, dev)?)
                }
                _ => None,
            };
            (dxt, db)
        };
        let updated = w.track_op()
            && in_backward::with_update(w, |u| {
                if !weight_grad::available() {
                    return Ok(false);
                }
                w.inplace_op3(&g, xt, &UpdateWeight { update: std::sync::Mutex::new(u) })?;
                Ok(true)
            })?;
        let dw = if w.track_op() && !updated {
            let (gs, gl) = g.storage_and_layout();
            let (xs, xl) = xt.storage_and_layout();
            let (candle_core::Storage::Cpu(gs), candle_core::Storage::Cpu(xs)) = (&*gs, &*xs) else {
                candle_core::bail!("linear backward: CPU tensors expected")
            };
            let (gm, xm) = (Mat::of(gs, gl, "grad")?, Mat::of(xs, xl, "input")?);
            Some(Tensor::from_vec(matmul(&gm, &xm.t()), w.dims(), dev)?)
        } else {
            None
        };
        Ok((dxt, defer(w, dw), b.and_then(|b| defer(b, db))))
    }
}

/// Keeps a variable's gradient out of candle's accumulator while [`backward`] collects them
/// (see the module docs); otherwise returns it to candle.
fn defer(param: &Tensor, grad: Option<Tensor>) -> Option<Tensor> {
    match grad {
        Some(g) if param.is_variable() => DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                list.push((param.clone(), g));
                None
            }
            None => Some(g),
        }),
        other => other,
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "shrink-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(Mat::of(s1, l1, "input")?, Mat::of(s2, l2, "weight")?, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.backward(x, w, None, y, g)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "shrink-linear-bias"
    }

    #[allow(clippy::too_many_arguments)]
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let b = match s3 {
            CpuStorage::F32(v) if l3.is_contiguous() && l3.dims().len() == 1 => {
                &v[l3.start_offset()..l3.start_offset() + l3.dims()[0]]
            }
            _ => candle_core::bail!("linear: bias must be a contiguous 1-D f32 tensor"),
        };
        let w = Mat::of(s2, l2, "weight")?;
        if b.len() != w.rows {
            candle_core::bail!("linear: bias has {} entries, weight has {} outputs", b.len(), w.rows);
        }
        self.forward(Mat::of(s1, l1, "input")?, w, Some(b))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, Some(b), y, g)
    }
}

impl<'a> Mat<'a> {
    /// The same operand for the weight-gradient kernel (non-negative strides only).
    fn view(&self) -> Result<View<'a>> {
        if self.rs < 0 || self.cs < 0 {
            candle_core::bail!("linear: negative strides");
        }
        Ok(View {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            rs: self.rs as usize,
            cs: self.cs as usize,
        })
    }
}

/// Applies a registered in-backward update to the weight (the in-place tensor) from the
/// weight gradient `G'ᵀ X`, computed strip by strip and never stored whole.
struct UpdateWeight<'a> {
    update: std::sync::Mutex<&'a mut InBackwardUpdate>,
}

impl InplaceOp3 for UpdateWeight<'_> {
    fn name(&self) -> &'static str {
        "shrink-linear-update-in-backward"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        wl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        xt: &CpuStorage,
        xl: &Layout,
    ) -> Result<()> {
        let (CpuStorage::F32(w), Some((ws, we))) = (w, wl.contiguous_offsets()) else {
            candle_core::bail!("linear: an in-backward update needs a contiguous f32 weight")
        };
        let (g, xt) = (Mat::of(g, gl, "grad")?, Mat::of(xt, xl, "input")?);
        let mut u = self.update.lock().map_err(|_| candle_core::Error::Msg("poisoned update".into()))?;
        let u: &mut InBackwardUpdate = &mut u;
        if !weight_grad::update_with_gradient(g.view()?, xt.view()?, &mut w[ws..we], &mut u.state, &*u.rule) {
            candle_core::bail!("linear: the in-backward kernel is not available on this CPU");
        }
        Ok(())
    }
}

/// `g * (y > 0)` for the ReLU folded into the forward.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "shrink-relu-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(g), CpuStorage::F32(y)) = (s1, s2) else {
            candle_core::bail!("relu mask: f32 expected")
        };
        let n = l1.shape().elem_count();
        let g = &g[l1.start_offset()..l1.start_offset() + n];
        let y = &y[l2.start_offset()..l2.start_offset() + n];
        let mut out = vec![0f32; n];
        out.par_chunks_mut(1 << 14).zip(g.par_chunks(1 << 14).zip(y.par_chunks(1 << 14))).for_each(
            |(o, (g, y))| {
                // A bit mask instead of a branch, so the loop vectorizes (same values).
                for ((o, g), y) in o.iter_mut().zip(g).zip(y) {
                    *o = f32::from_bits(g.to_bits() & (-((*y > 0.0) as i32)) as u32);
                }
            },
        );
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
    }

    /// Forward and all gradients equal the composed candle ops, for variables and for
    /// non-variable (masked) weights, with and without bias / ReLU, through two stacked layers.
    #[test]
    fn matches_composed_ops() {
        for (bias, relu, masked) in
            [(true, true, false), (true, false, false), (false, true, true), (true, true, true)]
        {
            let x = Var::from_tensor(&rand(&[5, 7], 1)).unwrap();
            let w1 = Var::from_tensor(&rand(&[6, 7], 2)).unwrap();
            let b1 = Var::from_tensor(&rand(&[6], 3)).unwrap();
            let w2 = Var::from_tensor(&rand(&[4, 6], 4)).unwrap();
            let mask = rand(&[6, 7], 5).ge(0.0).unwrap().to_dtype(DType::F32).unwrap();
            let r = rand(&[5, 4], 6);
            let w1_eff = if masked { (w1.as_tensor() * &mask).unwrap() } else { w1.as_tensor().clone() };
            let b = bias.then(|| b1.as_tensor().clone());
            let h = linear(x.as_tensor(), &w1_eff, b.as_ref(), relu).unwrap();
            let y = linear(&h, w2.as_tensor(), None, false).unwrap();
            let grads = backward(&(&y * &r).unwrap().sum_all().unwrap()).unwrap();

            let mut h_ref = x.as_tensor().matmul(&w1_eff.t().unwrap()).unwrap();
            if bias {
                h_ref = h_ref.broadcast_add(b1.as_tensor()).unwrap();
            }
            if relu {
                h_ref = h_ref.relu().unwrap();
            }
            let y_ref = h_ref.matmul(&w2.as_tensor().t().unwrap()).unwrap();
            let ref_grads = (&y_ref * &r).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(max_diff(&y, &y_ref) < 1e-5);
            let mut vars = vec![&x, &w1, &w2];
            if bias {
                vars.push(&b1);
            }
            for v in vars {
                let got = grads.get(v.as_tensor()).expect("missing gradient");
                let want = ref_grads.get(v.as_tensor()).unwrap();
                assert!(
                    max_diff(got, want) < 1e-5,
                    "gradient mismatch (bias {bias}, relu {relu}, masked {masked})"
                );
            }
        }
    }

    /// An input with few nonzeros (as after a ReLU) takes the sparse-input forward: outputs and
    /// gradients equal the composed ops, for the fused op and the streamed one.
    #[test]
    fn sparse_inputs_match_composed_ops() {
        struct Rows(Vec<f32>);
        impl WeightRows for Rows {
            fn fill(&self, start: usize, out: &mut [f32]) {
                out.copy_from_slice(&self.0[start * 70..start * 70 + out.len()]);
            }
        }
        let (n, inf, outf) = (167, 70, 45);
        // Feature-major like a previous layer's output: `x` is a transposed view of [in, n].
        let dense = rand(&[inf, n], 9);
        let keep = rand(&[inf, n], 10).ge(0.35).unwrap().to_dtype(DType::F32).unwrap();
        let xt = Var::from_tensor(&(dense * keep).unwrap()).unwrap();
        let x = xt.as_tensor().t().unwrap();
        let density = x.ne(0.0).unwrap().to_dtype(DType::F32).unwrap().mean_all().unwrap();
        assert!(density.to_scalar::<f32>().unwrap() < sparse_input_max_density(n) as f32);
        let w = Var::from_tensor(&rand(&[outf, inf], 11)).unwrap();
        let b = Var::from_tensor(&rand(&[outf], 12)).unwrap();
        let r = rand(&[n, outf], 13);
        let y = linear(&x, w.as_tensor(), Some(b.as_tensor()), true).unwrap();
        let grads = backward(&(&y * &r).unwrap().sum_all().unwrap()).unwrap();
        let y_ref = x
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .broadcast_add(b.as_tensor())
            .unwrap()
            .relu()
            .unwrap();
        let ref_grads = (&y_ref * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(&y, &y_ref) < 1e-5);
        for v in [&xt, &w, &b] {
            assert!(
                max_diff(grads.get(v.as_tensor()).unwrap(), ref_grads.get(v.as_tensor()).unwrap()) < 1e-5
            );
        }
        let rows = Rows(w.as_tensor().flatten_all().unwrap().to_vec1().unwrap());
        let streamed =
            linear_streamed(&x.detach(), &rows, outf, Some(&b.as_tensor().detach()), true).unwrap();
        assert!(max_diff(&streamed, &y_ref) < 1e-5);
    }

    /// A weight used by two layers receives the sum of both gradients.
    #[test]
    fn shared_weight_accumulates() {
        let x = rand(&[3, 5], 7);
        let w = Var::from_tensor(&rand(&[5, 5], 8)).unwrap();
        let y = linear(&linear(&x, w.as_tensor(), None, true).unwrap(), w.as_tensor(), None, false).unwrap();
        let g = backward(&y.sum_all().unwrap()).unwrap();
        let y_ref = x
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap()
            .relu()
            .unwrap()
            .matmul(&w.as_tensor().t().unwrap())
            .unwrap();
        let g_ref = y_ref.sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g.get(w.as_tensor()).unwrap(), g_ref.get(w.as_tensor()).unwrap()) < 1e-5);
    }
}

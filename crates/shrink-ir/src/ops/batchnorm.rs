//! Batch normalization over dim 1 of (N,C) or (N,C,H,W) tensors.
//!
//! On the CPU (f32) train-mode BN is one fused custom op: the forward takes per-channel
//! statistics in one read pass and normalizes in a second; the backward uses the closed form
//! `dx = gamma*inv_std/M * (M*dy - sum(dy) - xhat*sum(dy*xhat))` in one reduction pass plus
//! one elementwise pass (both custom ops). Eval-mode BN is a fused per-channel affine op.
//! Fused helpers for the graph executor (not yet wired into `model.rs`): [`relu`],
//! [`add_relu`], [`batch_norm_relu_train`] and the option-A shortcut [`shortcut_a_fused`], each
//! one parallel pass forward and one back instead of candle's chains of (partly serial) ops.
//! Other devices / dtypes use the composed candle implementation.
use super::conv2d::geom::alloc_output;
use super::conv2d::par;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use std::sync::{Arc, Mutex};

/// Per-channel batch statistics of a train-mode forward, detached from the graph.
pub struct BatchStats {
    pub mean: Tensor,
    /// Biased variance (used to normalize).
    pub var: Tensor,
    /// Number of elements per channel (for the unbiased running-variance update).
    pub count: usize,
}

fn channel_shape(x: &Tensor) -> Vec<usize> {
    let mut s = vec![1; x.rank()];
    s[1] = x.dim(1).unwrap_or(1);
    s
}

fn fused_ok(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32) && ts[0].rank() >= 2
}

/// Eval-mode batch norm with running statistics.
pub fn batch_norm_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let scale = (gamma / (var + eps)?.sqrt()?)?;
    let shift = (beta - (mean * &scale)?)?;
    if fused_ok(&[x, &scale, &shift]) {
        return channel_affine(x, &scale, &shift);
    }
    let cs = channel_shape(x);
    x.broadcast_mul(&scale.reshape(cs.as_slice())?)?.broadcast_add(&shift.reshape(cs.as_slice())?)
}

/// Train-mode batch norm: normalizes with the batch's own statistics and returns them.
pub fn batch_norm_train(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<(Tensor, BatchStats)> {
    if fused_ok(&[x, gamma, beta]) {
        return bn_train_fused(x, gamma, beta, eps, false);
    }
    batch_norm_train_reference(x, gamma, beta, eps)
}

/// `relu(batch_norm_train(x))` as one op: the ReLU is applied in the normalize pass and its
/// mask (`y > 0`) is folded into the two backward passes, saving a full read+write pass, a
/// temporary and one gradient accumulation per BN->ReLU pair (for the graph executor, which
/// can fuse a BatchNorm whose only consumer is the following Relu).
pub fn batch_norm_relu_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    if fused_ok(&[x, gamma, beta]) {
        return bn_train_fused(x, gamma, beta, eps, true);
    }
    let (y, stats) = batch_norm_train_reference(x, gamma, beta, eps)?;
    Ok((y.relu()?, stats))
}

/// The composed candle implementation of [`batch_norm_train`] (any device / dtype).
pub(crate) fn batch_norm_train_reference(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    let cs = channel_shape(x);
    let c = cs[1];
    // Move channels first and flatten the rest: [C, N*H*W].
    let xc = if x.rank() == 2 { x.t()? } else { x.transpose(0, 1)?.flatten_from(1)? };
    let count = xc.dim(1)?;
    let mean = xc.mean_keepdim(D::Minus1)?;
    let centered = xc.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (var.clone() + eps)?.sqrt()?.recip()?;
    let scale = (gamma.reshape((c, 1))? * inv_std)?;
    let shift = (beta.reshape((c, 1))? - (&mean * &scale)?)?;
    let y = x.broadcast_mul(&scale.reshape(cs.as_slice())?)?.broadcast_add(&shift.reshape(cs.as_slice())?)?;
    let stats = BatchStats { mean: mean.flatten_all()?.detach(), var: var.flatten_all()?.detach(), count };
    Ok((y, stats))
}

/// Fused ReLU, `max(x, 0)`, whose backward is a single pass `dy * (y > 0)` (candle's builds
/// a zeros tensor, a comparison, a dtype cast and a product). Falls back to `Tensor::relu`
/// off the CPU / for other dtypes.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) {
        return x.relu();
    }
    x.contiguous()?.apply_op1(Relu)
}

/// Fused `relu(a + b)` for two tensors of the same shape (residual join); the backward masks
/// the output gradient once and hands the same tensor to both inputs.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !(a.device().is_cpu() && a.dtype() == DType::F32 && b.dtype() == DType::F32) || a.shape() != b.shape()
    {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

/// Fused option-A ResNet shortcut, `pad(x[:, :, ::stride, ::stride], channels: before/after)`
/// on an NCHW tensor, as one pass (and one pass back) instead of two `index_select`s, a pad
/// and, in the backward, two serial `index_add`s (~13 ms per call at batch 128 on this machine).
/// Same semantics as `ops::shortcut_a`; falls back to it off the CPU / for other dtypes.
pub fn shortcut_a_fused(x: &Tensor, stride: usize, pad_before: usize, pad_after: usize) -> Result<Tensor> {
    if !(x.device().is_cpu() && x.dtype() == DType::F32) || x.rank() != 4 || stride == 0 {
        return super::shortcut::shortcut_a(x, stride, pad_before, pad_after);
    }
    x.contiguous()?.apply_op1(ShortcutA { stride, pad_before, pad_after })
}

// ---------------------------------------------------------------------------------------------
// CPU helpers

/// `[N, C, S]` view of a rank >= 2 tensor.
#[derive(Clone, Copy, Debug)]
struct Ncs {
    n: usize,
    c: usize,
    s: usize,
}

impl Ncs {
    fn of(shape: &Shape) -> Ncs {
        let d = shape.dims();
        Ncs { n: d[0], c: d[1], s: d[2..].iter().product() }
    }
    fn count(&self) -> usize {
        self.n * self.s
    }
    fn len(&self) -> usize {
        self.n * self.c * self.s
    }
}

/// The f32 values of a contiguous batch-norm operand.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    super::contiguous_f32(s, l, &format!("batch norm: {what}"))
}

/// Elements per parallel work item (a few planes, so small spatial sizes still amortize).
fn planes_per_task(d: &Ncs) -> usize {
    (16 * 1024 / d.s.max(1)).clamp(1, 1 << 20)
}

/// Per-channel sums `(sum f(x_i, y_i) , sum g(...))` over `[N, C, S]` data, in f64 across
/// planes; `plane(c, xs, ys) -> (f32, f32)` reduces one plane.
fn channel_sums(d: &Ncs, plane: impl Fn(usize, usize) -> (f32, f32) + Sync) -> (Vec<f64>, Vec<f64>) {
    let planes = d.n * d.c;
    let per = planes_per_task(d);
    let ntasks = planes.div_ceil(per);
    // One partial per task (deterministic order), combined below.
    let parts: Vec<Mutex<Vec<(f64, f64)>>> = (0..ntasks).map(|_| Mutex::new(Vec::new())).collect();
    par::for_each(ntasks, 1, |t| {
        let mut acc = vec![(0f64, 0f64); d.c];
        for p in t * per..((t + 1) * per).min(planes) {
            let (a, b) = plane(p, p % d.c);
            acc[p % d.c].0 += a as f64;
            acc[p % d.c].1 += b as f64;
        }
        *parts[t].lock().unwrap_or_else(|e| e.into_inner()) = acc;
    });
    let mut s1 = vec![0f64; d.c];
    let mut s2 = vec![0f64; d.c];
    for p in parts {
        for (c, (a, b)) in p.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().enumerate() {
            s1[c] += a;
            s2[c] += b;
        }
    }
    (s1, s2)
}

/// Defines `fn $name(args) -> R` whose body runs compiled for AVX2 when the CPU has it, else
/// for the baseline target. The float operations and their order are the same either way (only
/// the vector width changes, no multiply-add contraction), so results are bit-identical.
macro_rules! avx2_twin {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) -> $r:ty $body:block) => {
        $(#[$m])*
        #[inline]
        fn $name($($a: $t),*) -> $r {
            #[inline(always)]
            fn imp($($a: $t),*) -> $r $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            unsafe fn wide($($a: $t),*) -> $r {
                imp($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { wide($($a),*) };
            }
            imp($($a),*)
        }
    };
}

avx2_twin! {
/// Sum and sum of squares of `xs - k` (16 independent lanes, so it vectorizes).
fn sum_sumsq_shifted(xs: &[f32], k: f32) -> (f32, f32) {
    let mut s = [0f32; 16];
    let mut q = [0f32; 16];
    let mut it = xs.chunks_exact(16);
    for ch in &mut it {
        for l in 0..16 {
            let v = ch[l] - k;
            s[l] += v;
            q[l] += v * v;
        }
    }
    let (mut ts, mut tq) = (s.iter().sum::<f32>(), q.iter().sum::<f32>());
    for &x in it.remainder() {
        let v = x - k;
        ts += v;
        tq += v * v;
    }
    (ts, tq)
}
}

avx2_twin! {
/// `(sum dy, sum dy * (x - m))` (16 lanes).
fn sum_dy_dyxc(xs: &[f32], dys: &[f32], m: f32) -> (f32, f32) {
    let mut s = [0f32; 16];
    let mut q = [0f32; 16];
    let mut xi = xs.chunks_exact(16);
    let mut di = dys.chunks_exact(16);
    for (xc, dc) in (&mut xi).zip(&mut di) {
        for l in 0..16 {
            s[l] += dc[l];
            q[l] += dc[l] * (xc[l] - m);
        }
    }
    let (mut ts, mut tq) = (s.iter().sum::<f32>(), q.iter().sum::<f32>());
    for (&x, &dy) in xi.remainder().iter().zip(di.remainder()) {
        ts += dy;
        tq += dy * (x - m);
    }
    (ts, tq)
}
}

avx2_twin! {
/// [`sum_dy_dyxc`] with `dy` zeroed where `y <= 0` (fused ReLU backward).
fn sum_dy_dyxc_masked(xs: &[f32], dys: &[f32], ys: &[f32], m: f32) -> (f32, f32) {
    let mut s = [0f32; 16];
    let mut q = [0f32; 16];
    let mut xi = xs.chunks_exact(16);
    let mut di = dys.chunks_exact(16);
    let mut yi = ys.chunks_exact(16);
    for ((xc, dc), yc) in (&mut xi).zip(&mut di).zip(&mut yi) {
        let (xc, dc, yc): (&[f32; 16], &[f32; 16], &[f32; 16]) =
            (xc.try_into().expect("16"), dc.try_into().expect("16"), yc.try_into().expect("16"));
        for l in 0..16 {
            // `dy` where `y > 0`, else +0.0: a bit mask instead of a branch, so the loop
            // vectorizes (same values as the select).
            let keep = ((yc[l] > 0.0) as u32).wrapping_neg();
            let dv = f32::from_bits(dc[l].to_bits() & keep);
            s[l] += dv;
            q[l] += dv * (xc[l] - m);
        }
    }
    let (mut ts, mut tq) = (s.iter().sum::<f32>(), q.iter().sum::<f32>());
    for ((&x, &dy), &y) in xi.remainder().iter().zip(di.remainder()).zip(yi.remainder()) {
        let dv = if y > 0.0 { dy } else { 0.0 };
        ts += dv;
        tq += dv * (x - m);
    }
    (ts, tq)
}
}

/// Writes `out[p-th plane] = f(plane index, channel, out plane)` in parallel over planes.
fn map_planes(d: &Ncs, f: impl Fn(usize, usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = alloc_output(d.len());
    let ptr = SendPtr(out.as_mut_ptr());
    let planes = d.n * d.c;
    let per = planes_per_task(d);
    par::for_each(planes.div_ceil(per), 1, |t| {
        for p in t * per..((t + 1) * per).min(planes) {
            // SAFETY: every plane is written exactly once, by one task, before `set_len`.
            let o = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(p * d.s), d.s) };
            f(p, p % d.c, o);
        }
    });
    // SAFETY: all `len` elements were initialized above.
    unsafe { out.set_len(d.len()) };
    out
}

/// Elementwise map over equally long slices into a new vector, in parallel.
fn map_flat(len: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    const CHUNK: usize = 16 * 1024;
    let mut out = alloc_output(len);
    let ptr = SendPtr(out.as_mut_ptr());
    par::for_each(len.div_ceil(CHUNK), 1, |t| {
        let lo = t * CHUNK;
        let hi = len.min(lo + CHUNK);
        // SAFETY: disjoint chunks, all written before `set_len`.
        let o = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(lo), hi - lo) };
        f(lo, o);
    });
    // SAFETY: every element was written.
    unsafe { out.set_len(len) };
    out
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only for disjoint writes joined before reading.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Train-mode batch norm

#[derive(Default)]
struct SavedStats {
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
}

/// `(x, gamma, beta) -> y`; keeps the batch statistics for the caller and for `bwd`.
struct BnTrain {
    eps: f64,
    /// Apply ReLU to the output (and its mask in the backward).
    relu: bool,
    saved: Arc<Mutex<SavedStats>>,
}

fn bn_train_fused(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchStats)> {
    let c = x.dim(1)?;
    if gamma.elem_count() != c || beta.elem_count() != c {
        candle_core::bail!("batch norm: gamma/beta need {c} elements");
    }
    let saved = Arc::new(Mutex::new(SavedStats::default()));
    let op = BnTrain { eps, relu, saved: saved.clone() };
    let y = x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let s = saved.lock().unwrap_or_else(|e| e.into_inner());
    let dev = x.device();
    let count = Ncs::of(x.shape()).count();
    let stats = BatchStats {
        mean: Tensor::new(s.mean.as_slice(), dev)?,
        var: Tensor::new(s.var.as_slice(), dev)?,
        count,
    };
    Ok((y, stats))
}

impl CustomOp3 for BnTrain {
    fn name(&self) -> &'static str {
        "shrink-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, "input")?;
        let gamma = slice(s2, l2, "gamma")?;
        let beta = slice(s3, l3, "beta")?;
        let d = Ncs::of(l1.shape());
        let m = d.count().max(1) as f64;
        // Shift by one sample per channel so the one-pass variance does not cancel.
        let shift: Vec<f32> = (0..d.c).map(|c| if d.s * d.n > 0 { x[c * d.s] } else { 0.0 }).collect();
        let (s, q) = channel_sums(&d, |p, c| sum_sumsq_shifted(&x[p * d.s..][..d.s], shift[c]));
        let mut saved = SavedStats::default();
        for c in 0..d.c {
            let mu = s[c] / m;
            let var = (q[c] / m - mu * mu).max(0.0);
            saved.mean.push((shift[c] as f64 + mu) as f32);
            saved.var.push(var as f32);
            saved.inv_std.push((1.0 / (var + self.eps).sqrt()) as f32);
        }
        let scale: Vec<f32> = (0..d.c).map(|c| gamma[c] * saved.inv_std[c]).collect();
        let sh: Vec<f32> = (0..d.c).map(|c| beta[c] - saved.mean[c] * scale[c]).collect();
        let relu = self.relu;
        let y = map_planes(&d, |p, c, o| {
            let (a, b) = (scale[c], sh[c]);
            if relu {
                for (o, &v) in o.iter_mut().zip(&x[p * d.s..][..d.s]) {
                    *o = (v * a + b).max(0.0);
                }
            } else {
                for (o, &v) in o.iter_mut().zip(&x[p * d.s..][..d.s]) {
                    *o = v * a + b;
                }
            }
        });
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = saved;
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (mean, inv_std) = {
            let s = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            (s.mean.clone(), s.inv_std.clone())
        };
        let dy = dy.contiguous()?;
        let c = mean.len();
        let relu = self.relu;
        // with the ReLU fused, dy is masked by y > 0 on the fly (mask source = y, else unused)
        let mask = if relu { y.contiguous()? } else { dy.clone() };
        // [2, C]: sum(dy), sum(dy * xhat)
        let sums = x.apply_op3_no_bwd(
            &dy,
            &mask,
            &BnBwdReduce { mean: mean.clone(), inv_std: inv_std.clone(), relu },
        )?;
        let dbeta = sums.get(0)?.reshape(beta.shape())?;
        let dgamma = sums.get(1)?.reshape(gamma.shape())?;
        let dx = if x.track_op() {
            let sv = sums.to_vec2::<f32>()?;
            let g = gamma.to_vec1::<f32>()?;
            let m = Ncs::of(x.shape()).count().max(1) as f32;
            let mut coef = Vec::with_capacity(3 * c);
            for ch in 0..c {
                // dx = k*(m*dy - sum_dy - xhat*sum_dy_xhat), xhat = (x - mean)*inv_std
                let k = g[ch] * inv_std[ch] / m;
                let a = k * m;
                let b = -k * inv_std[ch] * sv[1][ch];
                let c0 = -k * sv[0][ch] - b * mean[ch];
                coef.extend_from_slice(&[a, b, c0]);
            }
            Some(x.apply_op3_no_bwd(&dy, &mask, &BnBwdData { coef, relu })?)
        } else {
            None
        };
        let dgamma = gamma.track_op().then_some(dgamma);
        let dbeta = beta.track_op().then_some(dbeta);
        Ok((dx, dgamma, dbeta))
    }
}

/// `(x, dy, y) -> [2, C]` = per channel `(sum dy', sum dy' * xhat)` with `dy' = dy`, or
/// `dy * (y > 0)` when `relu` (`y` is ignored otherwise).
struct BnBwdReduce {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
}

impl CustomOp3 for BnBwdReduce {
    fn name(&self) -> &'static str {
        "shrink-batch-norm-bwd-reduce"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, "input")?;
        let dy = slice(s2, l2, "output gradient")?;
        let y = slice(s3, l3, "output")?;
        let d = Ncs::of(l1.shape());
        if l2.shape() != l1.shape() || (self.relu && l3.shape() != l1.shape()) {
            candle_core::bail!("batch norm bwd: gradient shape {:?} vs {:?}", l2.shape(), l1.shape());
        }
        let (s, q) = channel_sums(&d, |p, c| {
            let (xs, ds) = (&x[p * d.s..][..d.s], &dy[p * d.s..][..d.s]);
            if self.relu {
                sum_dy_dyxc_masked(xs, ds, &y[p * d.s..][..d.s], self.mean[c])
            } else {
                sum_dy_dyxc(xs, ds, self.mean[c])
            }
        });
        let mut out: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        out.extend(q.iter().enumerate().map(|(c, &v)| (v * self.inv_std[c] as f64) as f32));
        Ok((CpuStorage::F32(out), Shape::from((2, d.c))))
    }
}

/// `(x, dy, y) -> dx = a_c * dy' + b_c * x + c_c` with per-channel `coef = [a, b, c]*C` and
/// `dy'` as in [`BnBwdReduce`].
struct BnBwdData {
    coef: Vec<f32>,
    relu: bool,
}

impl CustomOp3 for BnBwdData {
    fn name(&self) -> &'static str {
        "shrink-batch-norm-bwd-data"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, "input")?;
        let dy = slice(s2, l2, "output gradient")?;
        let y = slice(s3, l3, "output")?;
        let d = Ncs::of(l1.shape());
        let dx = map_planes(&d, |p, c, o| {
            let (a, b, c0) = (self.coef[3 * c], self.coef[3 * c + 1], self.coef[3 * c + 2]);
            let xs = &x[p * d.s..][..d.s];
            let ds = &dy[p * d.s..][..d.s];
            if self.relu {
                let ys = &y[p * d.s..][..d.s];
                for (((o, &xv), &dv), &yv) in o.iter_mut().zip(xs).zip(ds).zip(ys) {
                    let dv = if yv > 0.0 { dv } else { 0.0 };
                    *o = a * dv + b * xv + c0;
                }
            } else {
                for ((o, &xv), &dv) in o.iter_mut().zip(xs).zip(ds) {
                    *o = a * dv + b * xv + c0;
                }
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// Per-channel affine (eval-mode batch norm)

fn channel_affine(x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&scale.contiguous()?, &shift.contiguous()?, ChannelAffine)
}

/// `(x, scale, shift) -> x * scale[c] + shift[c]`.
struct ChannelAffine;

impl CustomOp3 for ChannelAffine {
    fn name(&self) -> &'static str {
        "shrink-channel-affine"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, "input")?;
        let scale = slice(s2, l2, "scale")?;
        let shift = slice(s3, l3, "shift")?;
        let d = Ncs::of(l1.shape());
        if scale.len() != d.c || shift.len() != d.c {
            candle_core::bail!("channel affine: scale/shift need {} elements", d.c);
        }
        let y = map_planes(&d, |p, c, o| {
            let (a, b) = (scale[c], shift[c]);
            for (o, &v) in o.iter_mut().zip(&x[p * d.s..][..d.s]) {
                *o = v * a + b;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let c = x.dim(1)?;
        let dx = if x.track_op() {
            let zero = Tensor::zeros(c, DType::F32, x.device())?;
            Some(dy.apply_op3_no_bwd(scale, &zero, &ChannelAffine)?)
        } else {
            None
        };
        let (dscale, dshift) = if scale.track_op() || shift.track_op() {
            let zeros = vec![0f32; c];
            let sums = x.apply_op3_no_bwd(
                &dy,
                &dy,
                &BnBwdReduce { mean: zeros, inv_std: vec![1f32; c], relu: false },
            )?;
            let dscale = scale.track_op().then(|| sums.get(1)?.reshape(scale.shape())).transpose()?;
            let dshift = shift.track_op().then(|| sums.get(0)?.reshape(shift.shape())).transpose()?;
            (dscale, dshift)
        } else {
            (None, None)
        };
        Ok((dx, dscale, dshift))
    }
}

// ---------------------------------------------------------------------------------------------
// ReLU

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "shrink-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "input")?;
        let y = map_flat(x.len(), |lo, o| {
            for (o, &v) in o.iter_mut().zip(&x[lo..]) {
                *o = v.max(0.0);
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(y.apply_op2_no_bwd(&dy.contiguous()?, &ReluBwd)?))
    }
}

/// `(y, dy) -> dy * (y > 0)`.
struct ReluBwd;

impl CustomOp2 for ReluBwd {
    fn name(&self) -> &'static str {
        "shrink-relu-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = slice(s1, l1, "output")?;
        let dy = slice(s2, l2, "output gradient")?;
        if y.len() != dy.len() {
            candle_core::bail!("relu bwd: shape mismatch");
        }
        let dx = map_flat(y.len(), |lo, o| {
            for ((o, &yv), &dv) in o.iter_mut().zip(&y[lo..]).zip(&dy[lo..]) {
                *o = if yv > 0.0 { dv } else { 0.0 };
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// `(a, b) -> relu(a + b)`.
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "shrink-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = slice(s1, l1, "lhs")?;
        let b = slice(s2, l2, "rhs")?;
        if a.len() != b.len() {
            candle_core::bail!("add_relu: shape mismatch");
        }
        let y = map_flat(a.len(), |lo, o| {
            for ((o, &x), &y) in o.iter_mut().zip(&a[lo..]).zip(&b[lo..]) {
                *o = (x + y).max(0.0);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = y.apply_op2_no_bwd(&dy.contiguous()?, &ReluBwd)?;
        Ok((a.track_op().then(|| g.clone()), b.track_op().then_some(g)))
    }
}

// ---------------------------------------------------------------------------------------------
// Option-A shortcut

struct ShortcutA {
    stride: usize,
    pad_before: usize,
    pad_after: usize,
}

impl ShortcutA {
    fn out_dims(&self, d: &[usize]) -> [usize; 4] {
        [
            d[0],
            d[1] + self.pad_before + self.pad_after,
            d[2].div_ceil(self.stride),
            d[3].div_ceil(self.stride),
        ]
    }
}

impl CustomOp1 for ShortcutA {
    fn name(&self) -> &'static str {
        "shrink-shortcut-a"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(st, l, "input")?;
        let d = l.shape().dims();
        let (c, h, w) = (d[1], d[2], d[3]);
        let od = self.out_dims(d);
        let (oc, oh, ow) = (od[1], od[2], od[3]);
        let s = self.stride;
        // one output plane per (n, output channel)
        let y = map_planes(&Ncs { n: od[0], c: oc, s: oh * ow }, |p, oc_i, out| {
            let n = p / oc;
            if oc_i < self.pad_before || oc_i >= self.pad_before + c {
                out.fill(0.0);
                return;
            }
            let src = &x[(n * c + oc_i - self.pad_before) * h * w..][..h * w];
            for (i, row) in out.chunks_exact_mut(ow).enumerate() {
                let sr = &src[i * s * w..];
                for (j, o) in row.iter_mut().enumerate() {
                    *o = sr[j * s];
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from(od.to_vec())))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(dy.apply_op1_no_bwd(&ShortcutABwd {
            stride: self.stride,
            pad_before: self.pad_before,
            x_dims: x.dims().to_vec(),
        })?))
    }
}

/// `dy -> dx`: scatter the kept channels back to the strided positions, zeros elsewhere.
struct ShortcutABwd {
    stride: usize,
    pad_before: usize,
    x_dims: Vec<usize>,
}

impl CustomOp1 for ShortcutABwd {
    fn name(&self) -> &'static str {
        "shrink-shortcut-a-bwd"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let dy = slice(st, l, "output gradient")?;
        let d = &self.x_dims;
        let (c, h, w) = (d[1], d[2], d[3]);
        let od = l.shape().dims();
        let (oc, oh, ow) = (od[1], od[2], od[3]);
        let s = self.stride;
        let dx = map_planes(&Ncs { n: d[0], c, s: h * w }, |p, ci, out| {
            let n = p / c;
            out.fill(0.0);
            let src = &dy[(n * oc + ci + self.pad_before) * oh * ow..][..oh * ow];
            for (i, row) in src.chunks_exact(ow).enumerate() {
                let dr = &mut out[i * s * w..];
                for (j, &v) in row.iter().enumerate() {
                    dr[j * s] = v;
                }
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from(d.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor) -> bool {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        d <= 1e-6
    }

    #[test]
    fn batch_norm_relu_matches_reference() {
        let dev = Device::Cpu;
        for shape in [vec![6usize, 5, 7, 9], vec![32, 16, 8, 8], vec![10, 3]] {
            let c = shape[1];
            let x = Var::from_tensor(&Tensor::randn(0.3f32, 1.0, shape.as_slice(), &dev).unwrap()).unwrap();
            let g = Var::from_tensor(&Tensor::randn(1f32, 0.5, c, &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, c, &dev).unwrap()).unwrap();
            let (y, st) = batch_norm_relu_train(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
            let (ry, rst) =
                batch_norm_train_reference(x.as_tensor(), g.as_tensor(), b.as_tensor(), 1e-5).unwrap();
            let ry = ry.relu().unwrap();
            let d = (&y - &ry).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-4, "{shape:?} y {d}");
            let dm =
                (&st.mean - &rst.mean).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(dm < 1e-5);
            let r = Tensor::randn(0f32, 1.0, shape.as_slice(), &dev).unwrap();
            let gr = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &g, &b] {
                let a = gr.get(v.as_tensor()).unwrap();
                let e = rg.get(v.as_tensor()).unwrap();
                let scale = e.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-6);
                let d = (a - e).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(d / scale < 1e-4, "{shape:?} grad rel err {}", d / scale);
            }
        }
    }

    #[test]
    fn shortcut_a_fused_matches_reference() {
        let dev = Device::Cpu;
        for (shape, stride, pb, pa) in
            [([2, 3, 7, 6], 2, 2, 1), ([3, 16, 32, 32], 2, 8, 8), ([1, 4, 5, 5], 1, 0, 2)]
        {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, &shape, &dev).unwrap()).unwrap();
            let y = shortcut_a_fused(x.as_tensor(), stride, pb, pa).unwrap();
            let ry = super::super::shortcut::shortcut_a(x.as_tensor(), stride, pb, pa).unwrap();
            assert!(close(&y, &ry));
            let r = Tensor::randn(0f32, 1.0, y.shape(), &dev).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(close(g.get(x.as_tensor()).unwrap(), rg.get(x.as_tensor()).unwrap()));
        }
    }

    #[test]
    fn relu_and_add_relu_match_candle() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4, 50, 70), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4, 50, 70), &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (3, 4, 50, 70), &dev).unwrap();
        let y = relu(a.as_tensor()).unwrap();
        let ry = a.as_tensor().relu().unwrap();
        assert!(close(&y, &ry));
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(close(g.get(a.as_tensor()).unwrap(), rg.get(a.as_tensor()).unwrap()));

        let y = add_relu(a.as_tensor(), b.as_tensor()).unwrap();
        let ry = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
        assert!(close(&y, &ry));
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let rg = (&ry * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&a, &b] {
            assert!(close(g.get(v.as_tensor()).unwrap(), rg.get(v.as_tensor()).unwrap()));
        }
    }
}

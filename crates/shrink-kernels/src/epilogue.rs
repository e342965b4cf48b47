//! Fused output stages shared by the int8 kernels: scale + bias + activation, and requantization.

/// Activation fused into a kernel's output.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(v, 0)`.
    Relu,
    /// `min(max(v, lo), hi)` (ReLU6 is `Clip { lo: 0.0, hi: 6.0 }`).
    Clip {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
}

impl Activation {
    /// Applies the activation to one value.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Activation::None => v,
            Activation::Relu => v.max(0.0),
            Activation::Clip { lo, hi } => v.max(lo).min(hi),
        }
    }
}

/// Per-tensor affine quantization of u8 activations: `real = scale · (q − zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantParams {
    /// Step between two codes (> 0).
    pub scale: f32,
    /// Code of the real value 0.
    pub zero_point: u8,
}

impl QuantParams {
    /// The u8 code of `v`: `v / scale` rounded half to even, plus the zero point, saturated to
    /// `0..=255` (NaN gives 0).
    #[inline(always)]
    pub fn quantize(self, v: f32) -> u8 {
        let q = (v / self.scale).round_ties_even() + self.zero_point as f32;
        q.clamp(0.0, 255.0) as u8
    }

    /// The real value of code `q`.
    #[inline(always)]
    pub fn dequantize(self, q: u8) -> f32 {
        self.scale * (q as f32 - self.zero_point as f32)
    }

    pub(crate) fn check(self, what: &str) -> crate::Result<()> {
        if self.scale.is_finite() && self.scale > 0.0 {
            Ok(())
        } else {
            Err(crate::KernelError::new(format!("{what}: scale must be finite and > 0, got {}", self.scale)))
        }
    }
}

/// How an int8 kernel turns its exact i32 sums into outputs, per output channel `n`:
/// `y = act((acc − za·Σ_k w[n,k]) · sa · weight_scales[n] + bias[n])`.
#[derive(Debug, Clone, Copy)]
pub struct Int8Epilogue<'a> {
    /// Per-output-channel weight scales (`N` entries).
    pub weight_scales: &'a [f32],
    /// Optional bias (`N` entries).
    pub bias: Option<&'a [f32]>,
    /// Fused activation.
    pub act: Activation,
}

impl Int8Epilogue<'_> {
    pub(crate) fn check(&self, n: usize) -> crate::Result<()> {
        crate::error::check_len("weight_scales", self.weight_scales.len(), n)?;
        if let Some(b) = self.bias {
            crate::error::check_len("bias", b.len(), n)?;
        }
        Ok(())
    }

    /// The f32 output of channel `n` for a zero-point-corrected sum `acc`, with activation
    /// scale `sa`. Every ISA path calls this, so their outputs are bit-identical.
    #[inline(always)]
    pub fn apply(&self, acc: i32, sa: f32, n: usize) -> f32 {
        let b = match self.bias {
            Some(b) => b[n],
            None => 0.0,
        };
        self.act.apply(acc as f32 * (sa * self.weight_scales[n]) + b)
    }
}

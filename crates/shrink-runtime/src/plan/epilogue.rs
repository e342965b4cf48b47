//! Activations fused into the epilogue of a conv / linear step: applied to the step's output
//! while it is still in cache, instead of as a step (and a buffer) of their own.

use shrink_graph::ops::activation::{Clip, UnaryKind};
use shrink_graph::Op;

/// What a conv / linear step applies to its outputs after the bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Epilogue {
    /// Nothing.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, lo), hi)` (ReLU6 is `Clip(0, 6)`); NaN stays NaN, as the reference Clip.
    Clip { lo: f32, hi: f32 },
}

impl Epilogue {
    /// The epilogue equal to `op`, when `op` is an activation that can be fused.
    pub fn of(op: &Op) -> Option<Epilogue> {
        match op {
            Op::Unary(u) if u.kind == UnaryKind::Relu => Some(Epilogue::Relu),
            Op::Clip(Clip { min, max }) => Some(Epilogue::Clip {
                lo: min.unwrap_or(f32::NEG_INFINITY),
                hi: max.unwrap_or(f32::INFINITY),
            }),
            _ => None,
        }
    }

    /// Apply in place.
    #[inline]
    pub fn apply(self, v: &mut [f32]) {
        match self {
            Epilogue::None => {}
            // As the reference Relu (`max(x, 0)`, NaN → 0).
            Epilogue::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Epilogue::Clip { lo, hi } => v.iter_mut().for_each(|x| {
                if !x.is_nan() {
                    *x = x.max(lo).min(hi)
                }
            }),
        }
    }

    /// A short name for tables (`+relu`, `+clip`), empty for none.
    pub fn suffix(self) -> &'static str {
        match self {
            Epilogue::None => "",
            Epilogue::Relu => "+relu",
            Epilogue::Clip { .. } => "+clip",
        }
    }
}

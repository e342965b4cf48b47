//! Convolution geometry and the u8 im2col that turns a convolution into the int8 GEMM.
use crate::error::{check_len, mul, KernelError, Result};

/// Geometry of a 2-D convolution over one NCHW image (`[c, h, w]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeom {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides `(vertical, horizontal)`, ≥ 1.
    pub stride: (usize, usize),
    /// Zero padding `(top, left, bottom, right)`.
    pub pad: (usize, usize, usize, usize),
    /// Dilations `(vertical, horizontal)`, ≥ 1.
    pub dilation: (usize, usize),
}

impl Conv2dGeom {
    /// A square `k×k` kernel with equal padding `p` on all sides, stride `s`, no dilation.
    pub fn square(c: usize, h: usize, w: usize, k: usize, s: usize, p: usize) -> Conv2dGeom {
        Conv2dGeom { c, h, w, kh: k, kw: k, stride: (s, s), pad: (p, p, p, p), dilation: (1, 1) }
    }

    /// Output `(height, width)`; an error if a stride or dilation is 0 or the dilated kernel
    /// does not fit the padded input.
    pub fn out_hw(&self) -> Result<(usize, usize)> {
        let (sh, sw) = self.stride;
        let (dh, dw) = self.dilation;
        if sh == 0 || sw == 0 || dh == 0 || dw == 0 || self.kh == 0 || self.kw == 0 {
            return Err(KernelError::new(format!(
                "conv geometry: kernel, stride and dilation must be >= 1 ({self:?})"
            )));
        }
        let ph = self.h + self.pad.0 + self.pad.2;
        let pw = self.w + self.pad.1 + self.pad.3;
        let (eh, ew) = (dh * (self.kh - 1) + 1, dw * (self.kw - 1) + 1);
        if eh > ph || ew > pw {
            return Err(KernelError::new(format!(
                "conv geometry: kernel {eh}x{ew} larger than padded input {ph}x{pw}"
            )));
        }
        Ok(((ph - eh) / sh + 1, (pw - ew) / sw + 1))
    }

    /// GEMM depth `K = c · kh · kw` (the columns of the im2col matrix).
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Input row `oy·sh − pad_top + i·dh` (or `None` in the padding).
    #[inline(always)]
    pub(crate) fn in_y(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride.0 + i * self.dilation.0).checked_sub(self.pad.0).filter(|&y| y < self.h)
    }

    /// Input column `ox·sw − pad_left + j·dw` (or `None` in the padding).
    #[inline(always)]
    pub(crate) fn in_x(&self, ox: usize, j: usize) -> Option<usize> {
        (ox * self.stride.1 + j * self.dilation.1).checked_sub(self.pad.1).filter(|&x| x < self.w)
    }
}

/// Writes the im2col matrix of `x` (`[c, h, w]` u8) into `out` (`[oh·ow, c·kh·kw]` row-major:
/// one row per output pixel, columns ordered `(channel, ky, kx)` like OIHW weights flattened),
/// padding with `pad_value` (the activation zero point, so padded taps add nothing).
/// Then `gemm_u8i8_*(x = out, m = oh·ow, W = weights [oc, c·kh·kw])` gives `Y[pixel, oc]`.
///
/// ```
/// use shrink_kernels::{im2col_u8, Conv2dGeom};
/// let g = Conv2dGeom::square(1, 2, 2, 3, 1, 1); // 2x2 image, 3x3 kernel, pad 1: 2x2 output
/// let x = [1u8, 2, 3, 4];
/// let mut cols = vec![0u8; 4 * 9];
/// im2col_u8(&x, &g, 9, &mut cols).unwrap();
/// assert_eq!(&cols[..9], &[9, 9, 9, 9, 1, 2, 9, 3, 4]); // top-left pixel's 3x3 window
/// ```
pub fn im2col_u8(x: &[u8], g: &Conv2dGeom, pad_value: u8, out: &mut [u8]) -> Result<()> {
    let (oh, ow) = g.out_hw()?;
    check_len("im2col input", x.len(), mul("im2col input", g.c, mul("im2col input", g.h, g.w)?)?)?;
    let k = g.k();
    check_len("im2col output", out.len(), mul("im2col output", oh * ow, k)?)?;
    if k == 0 {
        return Ok(());
    }
    for (p, row) in out.chunks_exact_mut(k).enumerate() {
        let (oy, ox) = (p / ow, p % ow);
        let mut col = 0;
        for ci in 0..g.c {
            let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
            for i in 0..g.kh {
                let iy = g.in_y(oy, i);
                for j in 0..g.kw {
                    row[col] = match (iy, g.in_x(ox, j)) {
                        (Some(y), Some(xx)) => plane[y * g.w + xx],
                        _ => pad_value,
                    };
                    col += 1;
                }
            }
        }
    }
    Ok(())
}

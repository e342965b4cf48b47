//! Max and average pooling with PyTorch semantics.
//!
//! Max pooling is our own op: candle's backward spreads the gradient over the window
//! (`grad * avg_pool(mask)`), which scales it by 1/k² for a unique maximum. PyTorch routes the
//! whole gradient to the first maximum in scan order, and so does [`max_pool2d`].
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy)]
struct PoolGeom {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl PoolGeom {
    fn out_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (kh, kw) = (self.kernel[0], self.kernel[1]);
        let (ph, pw) = (self.padding[0], self.padding[1]);
        if kh == 0
            || kw == 0
            || self.stride[0] == 0
            || self.stride[1] == 0
            || h + 2 * ph < kh
            || w + 2 * pw < kw
        {
            candle_core::bail!("max_pool2d: kernel {:?} does not fit input {h}x{w}", self.kernel);
        }
        Ok(((h + 2 * ph - kh) / self.stride[0] + 1, (w + 2 * pw - kw) / self.stride[1] + 1))
    }

    /// Flat index (within the h×w plane) of the first maximum of output window (oy, ox).
    fn argmax(&self, plane: &[f32], h: usize, w: usize, oy: usize, ox: usize) -> Option<usize> {
        let y0 = (oy * self.stride[0]) as isize - self.padding[0] as isize;
        let x0 = (ox * self.stride[1]) as isize - self.padding[1] as isize;
        let mut best: Option<(usize, f32)> = None;
        for dy in 0..self.kernel[0] as isize {
            let y = y0 + dy;
            if y < 0 || y >= h as isize {
                continue;
            }
            for dx in 0..self.kernel[1] as isize {
                let x = x0 + dx;
                if x < 0 || x >= w as isize {
                    continue;
                }
                let i = y as usize * w + x as usize;
                let v = plane[i];
                match best {
                    Some((_, b)) if !(v > b || v.is_nan()) => {}
                    _ => best = Some((i, v)),
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    super::contiguous_f32(s, l, "max_pool2d: operand")
}

struct MaxPoolFwd(PoolGeom);

impl CustomOp1 for MaxPoolFwd {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let (n, c, h, w) = l.shape().dims4()?;
        let (oh, ow) = self.0.out_hw(h, w)?;
        let mut out = vec![0f32; n * c * oh * ow];
        out.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(o, plane)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    o[oy * ow + ox] =
                        self.0.argmax(plane, h, w, oy, ox).map(|i| plane[i]).unwrap_or(f32::NEG_INFINITY);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &MaxPoolBwd(self.0))?))
    }
}

/// Scatters output gradients to the first argmax of each window.
struct MaxPoolBwd(PoolGeom);

impl CustomOp2 for MaxPoolBwd {
    fn name(&self) -> &'static str {
        "max-pool2d-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1)?;
        let g = f32_slice(s2, l2)?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (oh, ow) = self.0.out_hw(h, w)?;
        let mut dx = vec![0f32; n * c * h * w];
        dx.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).zip(g.par_chunks(oh * ow)).for_each(
            |((d, plane), g)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        if let Some(i) = self.0.argmax(plane, h, w, oy, ox) {
                            d[i] += g[oy * ow + ox];
                        }
                    }
                }
            },
        );
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Max pooling (NCHW); padded positions never win, gradients go to the first maximum.
pub fn max_pool2d(x: &Tensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Tensor> {
    let geom = PoolGeom { kernel, stride, padding };
    if !x.device().is_cpu() {
        // Other devices: candle's op (no padding support; gradient semantics differ on ties).
        if padding != [0, 0] {
            candle_core::bail!("max_pool2d with padding is only implemented on CPU");
        }
        return x.max_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]));
    }
    x.contiguous()?.apply_op1(MaxPoolFwd(geom))
}

/// Average pooling counting padded zeros (PyTorch `count_include_pad=True`).
pub fn avg_pool2d(x: &Tensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<Tensor> {
    let x = if padding == [0, 0] {
        x.clone()
    } else {
        x.pad_with_zeros(2, padding[0], padding[0])?.pad_with_zeros(3, padding[1], padding[1])?
    };
    x.avg_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn gradient_goes_to_the_first_maximum() {
        let x = Var::from_vec(vec![1f32, 2., 3., 4.], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let y = max_pool2d(x.as_tensor(), [2, 2], [2, 2], [0, 0]).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![4.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, vec![0.0, 0.0, 0.0, 1.0]);
        // Ties: only the first maximum in scan order receives the gradient (like PyTorch).
        let x = Var::from_vec(vec![5f32, 5., 1., 5.], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let y = max_pool2d(x.as_tensor(), [2, 2], [2, 2], [0, 0]).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, vec![1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn padding_never_wins_and_overlapping_windows_accumulate() {
        // All-negative input with padding 1: -inf padding means real values win.
        let x = Var::from_vec(vec![-3f32, -1., -2., -4.], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let y = max_pool2d(x.as_tensor(), [2, 2], [1, 1], [1, 1]).unwrap();
        assert_eq!(y.dims(), &[1, 1, 3, 3]);
        let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v, vec![-3., -1., -1., -2., -1., -1., -2., -2., -4.]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, vec![1.0, 4.0, 3.0, 1.0]);
    }
}

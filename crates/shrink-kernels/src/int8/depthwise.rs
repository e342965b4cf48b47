//! Depthwise int8 convolution (one k×k filter per channel), NCHW, with the int8 epilogues.
use crate::epilogue::{Int8Epilogue, QuantParams};
use crate::error::{check_len, mul, Result};
use crate::int8::im2col::Conv2dGeom;
use crate::par::{for_each_task, OutPtr};
use crate::Isa;

/// Where a depthwise convolution writes: f32, or u8 requantized with the given parameters.
#[derive(Debug)]
pub enum DwOut<'a> {
    /// f32 output `[c, oh, ow]`.
    F32(&'a mut [f32]),
    /// u8 output `[c, oh, ow]`, quantized with `q` (round half to even, saturating).
    U8(&'a mut [u8], QuantParams),
}

/// Depthwise convolution of `x` (`[c, h, w]` u8, activation quantization `xq`) with `w`
/// (`[c, kh, kw]` i8, per-channel scales and bias in `ep`): for every channel c and output pixel,
/// `acc = Σ_taps (x − za)·w` over the taps inside the image (padding is the zero point, so it
/// adds nothing), then `ep` (`act(acc · sa · sw[c] + bias[c])`) and, for `DwOut::U8`,
/// requantization. Accumulation is exact, so every ISA gives the same output.
///
/// ```
/// use shrink_kernels::{depthwise_u8i8, Activation, Conv2dGeom, DwOut, Int8Epilogue, Isa, QuantParams};
/// let g = Conv2dGeom::square(1, 3, 3, 3, 1, 1);
/// let x = [1u8; 9]; // all real 1.0 with zero point 0
/// let xq = QuantParams { scale: 1.0, zero_point: 0 };
/// let ep = Int8Epilogue { weight_scales: &[1.0], bias: None, act: Activation::None };
/// let mut y = [0f32; 9];
/// depthwise_u8i8(Isa::detect(), &x, &g, xq, &[1i8; 9], &ep, DwOut::F32(&mut y)).unwrap();
/// assert_eq!(y, [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]); // taps inside the image
/// ```
pub fn depthwise_u8i8(
    isa: Isa,
    x: &[u8],
    g: &Conv2dGeom,
    xq: QuantParams,
    w: &[i8],
    ep: &Int8Epilogue,
    out: DwOut,
) -> Result<()> {
    let (oh, ow) = g.out_hw()?;
    check_len("depthwise input", x.len(), mul("depthwise input", g.c, mul("depthwise input", g.h, g.w)?)?)?;
    check_len("depthwise weights", w.len(), mul("depthwise weights", g.c, g.kh * g.kw)?)?;
    ep.check(g.c)?;
    let total = mul("depthwise output", g.c, oh * ow)?;
    let sink = match out {
        DwOut::F32(o) => {
            check_len("depthwise output", o.len(), total)?;
            Out::F32(OutPtr(o.as_mut_ptr()))
        }
        DwOut::U8(o, q) => {
            check_len("depthwise output", o.len(), total)?;
            q.check("depthwise output quantization")?;
            Out::U8(OutPtr(o.as_mut_ptr()), q)
        }
    };
    let a = Args { x, g, za: xq.zero_point as i32, sa: xq.scale, w, ep, sink, oh, ow };
    let isa = isa.effective();
    for_each_task(g.c, total * g.kh * g.kw, |c| {
        // SAFETY: `isa` is supported (`effective`); channel c writes only its own plane.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512Vnni | Isa::Avx512 => channel_avx512(&a, c),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => channel_avx2(&a, c),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => channel_neon(&a, c),
                _ => channel(&a, c),
            }
        }
    });
    Ok(())
}

#[derive(Clone, Copy)]
enum Out {
    F32(OutPtr<f32>),
    U8(OutPtr<u8>, QuantParams),
}

struct Args<'a> {
    x: &'a [u8],
    g: &'a Conv2dGeom,
    za: i32,
    sa: f32,
    w: &'a [i8],
    ep: &'a Int8Epilogue<'a>,
    sink: Out,
    oh: usize,
    ow: usize,
}

/// One channel: for each output row, accumulate every tap over the range of output columns
/// whose input column is inside the image (a contiguous run the compiler vectorizes).
#[inline(always)]
fn channel(a: &Args, c: usize) {
    let g = a.g;
    let (sw, dw, pl) = (g.stride.1, g.dilation.1, g.pad.1);
    let plane = &a.x[c * g.h * g.w..(c + 1) * g.h * g.w];
    let wk = &a.w[c * g.kh * g.kw..(c + 1) * g.kh * g.kw];
    let mut acc = vec![0i32; a.ow];
    for oy in 0..a.oh {
        acc.fill(0);
        for i in 0..g.kh {
            let Some(iy) = g.in_y(oy, i) else { continue };
            let row = &plane[iy * g.w..(iy + 1) * g.w];
            for j in 0..g.kw {
                let wv = wk[i * g.kw + j] as i32;
                // Output columns ox with 0 <= ox·sw + j·dw − pl < w.
                let off = j * dw;
                let lo = pl.saturating_sub(off).div_ceil(sw);
                let hi = if g.w + pl > off { (g.w + pl - off).div_ceil(sw).min(a.ow) } else { 0 };
                if lo >= hi {
                    continue;
                }
                if sw == 1 {
                    let start = lo + off - pl;
                    for (s, &xv) in acc[lo..hi].iter_mut().zip(&row[start..start + (hi - lo)]) {
                        *s += (xv as i32 - a.za) * wv;
                    }
                } else {
                    for (ox, s) in acc.iter_mut().enumerate().take(hi).skip(lo) {
                        *s += (row[ox * sw + off - pl] as i32 - a.za) * wv;
                    }
                }
            }
        }
        let base = (c * a.oh + oy) * a.ow;
        match a.sink {
            Out::F32(p) => {
                for (ox, &s) in acc.iter().enumerate() {
                    // SAFETY: in bounds (checked lengths); only this channel writes its plane.
                    unsafe { p.write(base + ox, a.ep.apply(s, a.sa, c)) };
                }
            }
            Out::U8(p, q) => {
                for (ox, &s) in acc.iter().enumerate() {
                    // SAFETY: as above.
                    unsafe { p.write(base + ox, q.quantize(a.ep.apply(s, a.sa, c))) };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn channel_avx512(a: &Args, c: usize) {
    channel(a, c)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn channel_avx2(a: &Args, c: usize) {
    channel(a, c)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn channel_neon(a: &Args, c: usize) {
    channel(a, c)
}

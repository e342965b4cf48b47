//! The accurate integer inverse DCT of libjpeg (`JDCT_ISLOW`, the Loeffler–Ligtenberg–Moschytz
//! algorithm with 13-bit constants and 2 extra bits between the passes), including its output
//! range limiting: a value is wrapped to 10 bits before it is clamped, so a wildly out-of-range
//! result (only possible with corrupt data) comes out as libjpeg's does.

const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;

const FIX_0_298631336: i32 = 2446;
const FIX_0_390180644: i32 = 3196;
const FIX_0_541196100: i32 = 4433;
const FIX_0_765366865: i32 = 6270;
const FIX_0_899976223: i32 = 7373;
const FIX_1_175875602: i32 = 9633;
const FIX_1_501321110: i32 = 12299;
const FIX_1_847759065: i32 = 15137;
const FIX_1_961570560: i32 = 16069;
const FIX_2_053119869: i32 = 16819;
const FIX_2_562915447: i32 = 20995;
const FIX_3_072711026: i32 = 25172;

/// Output sample for a centred IDCT result `x`, indexed by `x & 1023`: `x + 128` clamped to
/// `0..=255` for `-384 <= x < 384`, wrapping beyond (libjpeg's post-IDCT range-limit table).
static RANGE_LIMIT: [u8; 1024] = range_limit_table();

const fn range_limit_table() -> [u8; 1024] {
    let mut t = [0u8; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = if i < 128 {
            (i + 128) as u8
        } else if i < 512 {
            255
        } else if i < 896 {
            0
        } else {
            (i - 896) as u8
        };
        i += 1;
    }
    t
}

#[inline(always)]
fn descale(x: i32, n: u32) -> i32 {
    x.wrapping_add(1 << (n - 1)) >> n
}

#[inline(always)]
fn limit(x: i32) -> u8 {
    RANGE_LIMIT[(x & 1023) as usize]
}

/// The 8-point 1-D IDCT of `x`, scaled up by `2^CONST_BITS` (not yet descaled).
#[inline(always)]
fn butterfly(x: [i32; 8]) -> [i32; 8] {
    // Even part.
    let z1 = x[2].wrapping_add(x[6]).wrapping_mul(FIX_0_541196100);
    let tmp2 = z1.wrapping_add(x[6].wrapping_mul(-FIX_1_847759065));
    let tmp3 = z1.wrapping_add(x[2].wrapping_mul(FIX_0_765366865));
    let tmp0 = x[0].wrapping_add(x[4]).wrapping_shl(CONST_BITS);
    let tmp1 = x[0].wrapping_sub(x[4]).wrapping_shl(CONST_BITS);
    let tmp10 = tmp0.wrapping_add(tmp3);
    let tmp13 = tmp0.wrapping_sub(tmp3);
    let tmp11 = tmp1.wrapping_add(tmp2);
    let tmp12 = tmp1.wrapping_sub(tmp2);
    // Odd part.
    let (t0, t1, t2, t3) = (x[7], x[5], x[3], x[1]);
    let z1 = t0.wrapping_add(t3);
    let z2 = t1.wrapping_add(t2);
    let z3 = t0.wrapping_add(t2);
    let z4 = t1.wrapping_add(t3);
    let z5 = z3.wrapping_add(z4).wrapping_mul(FIX_1_175875602);
    let t0 = t0.wrapping_mul(FIX_0_298631336);
    let t1 = t1.wrapping_mul(FIX_2_053119869);
    let t2 = t2.wrapping_mul(FIX_3_072711026);
    let t3 = t3.wrapping_mul(FIX_1_501321110);
    let z1 = z1.wrapping_mul(-FIX_0_899976223);
    let z2 = z2.wrapping_mul(-FIX_2_562915447);
    let z3 = z3.wrapping_mul(-FIX_1_961570560).wrapping_add(z5);
    let z4 = z4.wrapping_mul(-FIX_0_390180644).wrapping_add(z5);
    let t0 = t0.wrapping_add(z1).wrapping_add(z3);
    let t1 = t1.wrapping_add(z2).wrapping_add(z4);
    let t2 = t2.wrapping_add(z2).wrapping_add(z3);
    let t3 = t3.wrapping_add(z1).wrapping_add(z4);
    [
        tmp10.wrapping_add(t3),
        tmp11.wrapping_add(t2),
        tmp12.wrapping_add(t1),
        tmp13.wrapping_add(t0),
        tmp13.wrapping_sub(t0),
        tmp12.wrapping_sub(t1),
        tmp11.wrapping_sub(t2),
        tmp10.wrapping_sub(t3),
    ]
}

/// Inverse-transforms one block of quantized coefficients (natural order) with its
/// dequantization multipliers, writing 8 rows of 8 samples at `out[0]`, `out[stride]`, ...
pub(super) fn idct_block(coefs: &[i16; 64], quant: &[i32; 64], out: &mut [u8], stride: usize) {
    if coefs[1..].iter().all(|&c| c == 0) {
        // What both passes' zero-AC shortcuts give: one flat value.
        let dc = (coefs[0] as i32).wrapping_mul(quant[0]).wrapping_shl(PASS1_BITS);
        let value = limit(descale(dc, PASS1_BITS + 3));
        for row in 0..8 {
            if let Some(dst) = out.get_mut(row * stride..row * stride + 8) {
                dst.fill(value);
            }
        }
        return;
    }
    let mut ws = [0i32; 64];
    // Pass 1: columns, results scaled up by 2^PASS1_BITS.
    for col in 0..8 {
        let x: [i32; 8] =
            std::array::from_fn(|row| (coefs[row * 8 + col] as i32).wrapping_mul(quant[row * 8 + col]));
        if x[1..].iter().all(|&v| v == 0) {
            let dc = x[0].wrapping_shl(PASS1_BITS);
            for row in 0..8 {
                ws[row * 8 + col] = dc;
            }
            continue;
        }
        let y = butterfly(x);
        for row in 0..8 {
            ws[row * 8 + col] = descale(y[row], CONST_BITS - PASS1_BITS);
        }
    }
    // Pass 2: rows, then undo the scaling (PASS1_BITS and the IDCT's factor of 8).
    for row in 0..8 {
        let x: [i32; 8] = ws[row * 8..row * 8 + 8].try_into().unwrap_or([0; 8]);
        let Some(dst) = out.get_mut(row * stride..row * stride + 8) else {
            return;
        };
        if x[1..].iter().all(|&v| v == 0) {
            dst.fill(limit(descale(x[0], PASS1_BITS + 3)));
            continue;
        }
        let y = butterfly(x);
        for (d, v) in dst.iter_mut().zip(y) {
            *d = limit(descale(v, CONST_BITS + PASS1_BITS + 3));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dc_only_block_is_flat() {
        let mut coefs = [0i16; 64];
        coefs[0] = 8;
        let mut out = [0u8; 64];
        idct_block(&coefs, &[1; 64], &mut out, 8);
        // 8 * 1 / 8 (the IDCT's scale) + 128.
        assert!(out.iter().all(|&v| v == 129), "{out:?}");
        coefs[0] = -3;
        idct_block(&coefs, &[16; 64], &mut out, 8);
        assert!(out.iter().all(|&v| v == 122), "{out:?}"); // -48 / 8 + 128
    }

    #[test]
    fn one_ac_coefficient_varies_along_one_axis() {
        let mut coefs = [0i16; 64];
        coefs[1] = 100; // lowest horizontal frequency
        let mut out = [0u8; 64];
        idct_block(&coefs, &[1; 64], &mut out, 8);
        for row in out.chunks_exact(8) {
            assert_eq!(row, &out[..8]);
        }
        assert!(out[0] > 128 && out[7] < 128 && out[..8].windows(2).all(|w| w[0] >= w[1]), "{out:?}");
    }

    #[test]
    fn range_limit_clamps_then_wraps_like_libjpeg() {
        assert_eq!(limit(0), 128);
        assert_eq!(limit(-128), 0);
        assert_eq!(limit(127), 255);
        assert_eq!(limit(383), 255);
        assert_eq!(limit(-384), 0);
        // Beyond 512 the 10-bit index wraps around.
        assert_eq!(limit(1000), 104);
        assert_eq!(limit(-1000), 152);
    }
}

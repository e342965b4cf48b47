//! YCbCr → RGB with libjpeg's 16-bit fixed-point tables (jdcolor.c semantics), and the
//! interleaving of already-RGB components.

const SCALEBITS: u32 = 16;
const ONE_HALF: i32 = 1 << (SCALEBITS - 1);
/// `round(c * 2^16)` of the conversion constants 1.40200, 1.77200, 0.71414 and 0.34414.
const FIX_1_40200: i32 = 91881;
const FIX_1_77200: i32 = 116130;
const FIX_0_71414: i32 = 46802;
const FIX_0_34414: i32 = 22554;

/// Per-chroma-value terms: R's from Cr, B's from Cb (already descaled), and G's two scaled
/// terms (the rounding half folded into the Cb one).
struct Tables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

static TABLES: Tables = tables();

const fn tables() -> Tables {
    let mut t = Tables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
    let mut i = 0;
    while i < 256 {
        let x = i as i32 - 128;
        t.cr_r[i] = (FIX_1_40200 * x + ONE_HALF) >> SCALEBITS;
        t.cb_b[i] = (FIX_1_77200 * x + ONE_HALF) >> SCALEBITS;
        t.cr_g[i] = -FIX_0_71414 * x;
        t.cb_g[i] = -FIX_0_34414 * x + ONE_HALF;
        i += 1;
    }
    t
}

#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Converts one row of Y, Cb, Cr samples into interleaved RGB (`out.len() == 3 * y.len()`).
pub(super) fn ycc_row_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    let t = &TABLES;
    for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, cb, cr) = (y as i32, cb as usize, cr as usize);
        px[0] = clamp(y + t.cr_r[cr]);
        px[1] = clamp(y + ((t.cb_g[cb] + t.cr_g[cr]) >> SCALEBITS));
        px[2] = clamp(y + t.cb_b[cb]);
    }
}

/// Interleaves one row of R, G, B samples.
pub(super) fn rgb_row(r: &[u8], g: &[u8], b: &[u8], out: &mut [u8]) {
    for (((px, &r), &g), &b) in out.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
        px[0] = r;
        px[1] = g;
        px[2] = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let mut out = [0u8; 3];
        ycc_row_to_rgb(&[y], &[cb], &[cr], &mut out);
        out
    }

    #[test]
    fn neutral_chroma_is_gray() {
        for y in [0, 1, 127, 128, 254, 255] {
            assert_eq!(convert(y, 128, 128), [y; 3]);
        }
    }

    #[test]
    fn fixed_point_values_and_clamping() {
        // R = 0 + round(1.402 * 127) = 178; G = 0 - 0.71414 * 127 < 0 → 0; B = 0.
        assert_eq!(convert(0, 128, 255), [178, 0, 0]);
        // B = 255 + 1.772 * 127 → clamped; R = 255 - 1.402 * 128 = 75.544 → 76 (rounded table).
        assert_eq!(convert(255, 255, 0), [76, 255, 255]);
        assert_eq!(convert(100, 100, 150), [131, 94, 50]);
    }
}

//! AArch64 NEON register tile of the int8 GEMM (compile-checked; no ARM machine runs it here):
//! bytes widened to i16 (`vmovl`), products accumulated into i32 with `vmlal_s16`: exact.
use std::arch::aarch64::*;

use super::gemm::define_task;

#[target_feature(enable = "neon")]
#[inline]
unsafe fn tile_neon<const MR: usize, const NBK: usize>(
    xs: &[*const u8; MR],
    tails: &[u32; MR],
    kfull: usize,
    has_tail: bool,
    w: &[*const i8; NBK],
    out: &mut [[i32; 64]; MR],
) {
    unsafe {
        let nq = kfull + has_tail as usize;
        for r in 0..MR {
            for b in 0..NBK {
                let mut acc = [vdupq_n_s32(0); 16];
                for q in 0..nq {
                    let quad =
                        if q < kfull { (xs[r].add(q * 4) as *const u32).read_unaligned() } else { tails[r] };
                    let x16 =
                        vreinterpret_s16_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(quad)))));
                    for s in 0..4 {
                        let w8 = vld1q_s8(w[b].add(q * 64 + s * 16));
                        let lo = vmovl_s8(vget_low_s8(w8));
                        let hi = vmovl_high_s8(w8);
                        acc[4 * s] = vmlal_s16(acc[4 * s], vget_low_s16(lo), x16);
                        acc[4 * s + 1] = vmlal_s16(acc[4 * s + 1], vget_high_s16(lo), x16);
                        acc[4 * s + 2] = vmlal_s16(acc[4 * s + 2], vget_low_s16(hi), x16);
                        acc[4 * s + 3] = vmlal_s16(acc[4 * s + 3], vget_high_s16(hi), x16);
                    }
                }
                for c in 0..16 {
                    out[r][b * 16 + c] = vaddvq_s32(acc[c]);
                }
            }
        }
    }
}

define_task!(
    #[target_feature(enable = "neon")]
    task_neon,
    tile_neon,
    1,
    1,
    1
);

//! Decoding one scan's entropy-coded data into the coefficient buffers: sequential (baseline and
//! extended Huffman) scans, and the four kinds of progressive scans (DC first / refinement, AC
//! first / refinement, JPEG Annex G). Coefficients are kept as libjpeg's 16-bit `JCOEF`s.

use super::huffman::{BitReader, HuffTable};
use super::markers::{Frame, Scan, Tables, ZIGZAG};
use super::JpegError;

/// What a scan codes for each block.
#[derive(Clone, Copy)]
enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

/// Per-scan decoding state.
struct State<'t> {
    kind: Kind,
    ss: usize,
    se: usize,
    al: u32,
    /// DC predictions, per scan component.
    pred: [i32; 4],
    /// Blocks left in the current end-of-band run (progressive AC scans).
    eobrun: u32,
    dc: [Option<&'t HuffTable>; 4],
    ac: [Option<&'t HuffTable>; 4],
}

/// Decodes the scan whose entropy-coded data starts at `pos`; returns the position of the marker
/// that follows it.
pub(super) fn decode_scan(
    data: &[u8],
    pos: usize,
    frame: &mut Frame,
    scan: &Scan,
    tables: &Tables,
) -> Result<usize, JpegError> {
    let kind = match (frame.progressive, scan.ss, scan.ah) {
        (false, _, _) => Kind::Sequential,
        (true, 0, 0) => Kind::DcFirst,
        (true, 0, _) => Kind::DcRefine,
        (true, _, 0) => Kind::AcFirst,
        (true, _, _) => Kind::AcRefine,
    };
    let mut st = State {
        kind,
        ss: scan.ss,
        se: scan.se,
        al: scan.al,
        pred: [0; 4],
        eobrun: 0,
        dc: [None; 4],
        ac: [None; 4],
    };
    for (i, c) in scan.comps.iter().enumerate() {
        st.dc[i] = tables.dc[c.td].as_ref();
        st.ac[i] = tables.ac[c.ta].as_ref();
    }
    let mut reader = BitReader::new(data, pos);
    let (mcus_x, mcus_y) = match scan.comps.as_slice() {
        [one] => (frame.comps[one.index].width_in_blocks, frame.comps[one.index].height_in_blocks),
        _ => (frame.mcus_x, frame.mcus_y),
    };
    let interval = tables.restart_interval;
    let mut next_rst = 0u8;
    for mcu in 0..mcus_x * mcus_y {
        if interval > 0 && mcu > 0 && mcu % interval == 0 {
            reader.restart(next_rst)?;
            next_rst = (next_rst + 1) & 7;
            st.pred = [0; 4];
            st.eobrun = 0;
        }
        let (mx, my) = (mcu % mcus_x, mcu / mcus_x);
        if let [one] = scan.comps.as_slice() {
            let c = &mut frame.comps[one.index];
            let at = (my * c.blocks_w + mx) * 64;
            decode_block(&mut reader, &mut st, 0, &mut c.coefs[at..at + 64])?;
        } else {
            for (i, sc) in scan.comps.iter().enumerate() {
                let c = &mut frame.comps[sc.index];
                for by in 0..c.v {
                    for bx in 0..c.h {
                        let at = ((my * c.v + by) * c.blocks_w + mx * c.h + bx) * 64;
                        decode_block(&mut reader, &mut st, i, &mut c.coefs[at..at + 64])?;
                    }
                }
            }
        }
        reader.check()?;
    }
    reader.finish()
}

/// Decodes one block of scan component `i` into `block` (64 coefficients, natural order).
#[inline]
fn decode_block(r: &mut BitReader, st: &mut State, i: usize, block: &mut [i16]) -> Result<(), JpegError> {
    let block: &mut [i16; 64] = block.try_into().map_err(|_| JpegError::corrupt("block".to_string()))?;
    match st.kind {
        Kind::Sequential => {
            let (Some(dc), Some(ac)) = (st.dc[i], st.ac[i]) else {
                return Err(JpegError::corrupt("missing Huffman table".to_string()));
            };
            let s = r.decode(dc)? as u32;
            st.pred[i] = st.pred[i].wrapping_add(r.receive_extend(s));
            block[0] = st.pred[i] as i16;
            let mut k = 1;
            while k < 64 {
                if let Some((run, value)) = r.fast_ac(ac) {
                    k += run;
                    block[ZIGZAG[k]] = value as i16;
                    k += 1;
                    continue;
                }
                let rs = r.decode(ac)?;
                let (run, size) = ((rs >> 4) as usize, (rs & 15) as u32);
                if size != 0 {
                    k += run;
                    block[ZIGZAG[k]] = r.receive_extend(size) as i16;
                } else if run != 15 {
                    break;
                } else {
                    k += 15;
                }
                k += 1;
            }
        }
        Kind::DcFirst => {
            let dc = st.dc[i].ok_or_else(|| JpegError::corrupt("missing Huffman table".to_string()))?;
            let s = r.decode(dc)? as u32;
            st.pred[i] = st.pred[i].wrapping_add(r.receive_extend(s));
            block[0] = (st.pred[i] << st.al) as i16;
        }
        Kind::DcRefine => {
            if r.bit() {
                block[0] |= (1i32 << st.al) as i16;
            }
        }
        Kind::AcFirst => ac_first(r, st, i, block)?,
        Kind::AcRefine => ac_refine(r, st, i, block)?,
    }
    Ok(())
}

/// The first scan of a band of AC coefficients.
fn ac_first(r: &mut BitReader, st: &mut State, i: usize, block: &mut [i16; 64]) -> Result<(), JpegError> {
    if st.eobrun > 0 {
        st.eobrun -= 1;
        return Ok(());
    }
    let ac = st.ac[i].ok_or_else(|| JpegError::corrupt("missing Huffman table".to_string()))?;
    let mut k = st.ss;
    while k <= st.se {
        let rs = r.decode(ac)?;
        let (run, size) = ((rs >> 4) as u32, (rs & 15) as u32);
        if size != 0 {
            k += run as usize;
            block[ZIGZAG[k]] = (r.receive_extend(size) << st.al) as i16;
        } else if run == 15 {
            k += 15;
        } else {
            st.eobrun = (1 << run) + r.bits(run) - 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

/// A refinement scan of a band of AC coefficients: one more bit of each known coefficient and
/// the coefficients that become non-zero at this bit.
fn ac_refine(r: &mut BitReader, st: &mut State, i: usize, block: &mut [i16; 64]) -> Result<(), JpegError> {
    let p1 = 1i16 << st.al;
    let m1 = (-1i16) << st.al;
    let mut k = st.ss;
    if st.eobrun == 0 {
        let ac = st.ac[i].ok_or_else(|| JpegError::corrupt("missing Huffman table".to_string()))?;
        while k <= st.se {
            let rs = r.decode(ac)?;
            let (mut run, size) = ((rs >> 4) as i32, rs & 15);
            let mut value = 0i16;
            if size != 0 {
                // The size must be 1 (libjpeg only warns when it is not).
                value = if r.bit() { p1 } else { m1 };
            } else if run != 15 {
                st.eobrun = (1 << run) + r.bits(run as u32);
                break;
            }
            // Skip `run` zero coefficients (refining the non-zero ones met), then place `value`.
            while k <= st.se {
                let coef = &mut block[ZIGZAG[k]];
                if *coef != 0 {
                    refine(r, coef, p1, m1);
                } else {
                    run -= 1;
                    if run < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if value != 0 {
                block[ZIGZAG[k]] = value;
            }
            k += 1;
        }
    }
    if st.eobrun > 0 {
        while k <= st.se {
            let coef = &mut block[ZIGZAG[k]];
            if *coef != 0 {
                refine(r, coef, p1, m1);
            }
            k += 1;
        }
        st.eobrun -= 1;
    }
    Ok(())
}

/// Adds the next correction bit to a coefficient already non-zero.
#[inline]
fn refine(r: &mut BitReader, coef: &mut i16, p1: i16, m1: i16) {
    if r.bit() && *coef & p1 == 0 {
        *coef = coef.wrapping_add(if *coef >= 0 { p1 } else { m1 });
    }
}

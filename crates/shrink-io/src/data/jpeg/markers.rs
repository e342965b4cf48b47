//! The marker segments of a JPEG file: the frame header (SOF), quantization and Huffman tables
//! (DQT, DHT), the restart interval (DRI), the JFIF and Adobe colour hints (APP0, APP14) and scan
//! headers (SOS). Every length and index is checked against the data.

use super::huffman::HuffTable;
use super::JpegError;

/// The most components a frame may have (JPEG allows 4; 1 and 3 are decoded).
const MAX_COMPONENTS: usize = 4;

/// The zigzag position → natural (row-major) position of each coefficient, padded with 16 extra
/// entries pointing at the last coefficient so that a corrupt run that overshoots the block
/// lands there instead of outside it (as libjpeg does).
pub(super) const ZIGZAG: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
    14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
    46, 53, 60, 61, 54, 47, 55, 62, 63, //
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
];

/// One component of the frame, with its decoded coefficients.
pub(super) struct Component {
    pub id: u8,
    /// Horizontal and vertical sampling factors (1..=4).
    pub h: usize,
    pub v: usize,
    /// The quantization table selector (0..=3).
    pub tq: usize,
    /// The quantization table latched when the component first appeared in a scan (natural
    /// order, as libjpeg's 16-bit multipliers).
    pub quant: Option<[i32; 64]>,
    /// Blocks allocated per row and column: the whole MCU grid.
    pub blocks_w: usize,
    pub blocks_h: usize,
    /// Blocks covering the component's own samples (what a one-component scan codes).
    pub width_in_blocks: usize,
    pub height_in_blocks: usize,
    /// The component's size in samples: `ceil(image size * factor / max factor)`.
    pub ds_width: usize,
    pub ds_height: usize,
    /// `blocks_w * blocks_h` blocks of 64 coefficients in natural order.
    pub coefs: Vec<i16>,
}

/// The frame header: size, coding process and components.
pub(super) struct Frame {
    pub width: usize,
    pub height: usize,
    pub progressive: bool,
    pub comps: Vec<Component>,
    pub hmax: usize,
    pub vmax: usize,
    /// MCUs per row and column of an interleaved scan.
    pub mcus_x: usize,
    pub mcus_y: usize,
}

/// Tables and hints defined by the segments read so far.
#[derive(Default)]
pub(super) struct Tables {
    /// Quantization tables in natural order.
    pub quant: [Option<[u16; 64]>; 4],
    pub dc: [Option<HuffTable>; 4],
    pub ac: [Option<HuffTable>; 4],
    /// MCUs between restart markers; 0 for none.
    pub restart_interval: usize,
    pub saw_jfif: bool,
    /// The transform flag of an Adobe APP14 segment.
    pub adobe_transform: Option<u8>,
}

/// One component of a scan: its index in the frame and its Huffman table selectors.
#[derive(Clone, Copy)]
pub(super) struct ScanComponent {
    pub index: usize,
    pub td: usize,
    pub ta: usize,
}

/// A scan header.
pub(super) struct Scan {
    pub comps: Vec<ScanComponent>,
    /// Spectral selection start and end, successive approximation high and low bits.
    pub ss: usize,
    pub se: usize,
    pub ah: u32,
    pub al: u32,
}

/// Big-endian `u16` at `pos`.
pub(super) fn read_u16(data: &[u8], pos: usize) -> Result<u16, JpegError> {
    match data.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(JpegError::Truncated("a marker segment")),
    }
}

/// The payload of the marker segment whose length field is at `pos`, and the position after it.
pub(super) fn segment<'a>(
    data: &'a [u8],
    pos: usize,
    name: &'static str,
) -> Result<(&'a [u8], usize), JpegError> {
    let len = read_u16(data, pos)? as usize;
    if len < 2 {
        return Err(JpegError::corrupt(format!("{name} segment length {len} is below 2")));
    }
    match data.get(pos + 2..pos + len) {
        Some(payload) => Ok((payload, pos + len)),
        None => Err(JpegError::Truncated(name)),
    }
}

/// The next marker at or after `pos` (garbage bytes before it are skipped, as libjpeg does):
/// its code and the position after it; `None` at the end of the data.
pub(super) fn next_marker(data: &[u8], mut pos: usize) -> Option<(u8, usize)> {
    loop {
        while *data.get(pos)? != 0xFF {
            pos += 1;
        }
        while *data.get(pos)? == 0xFF {
            pos += 1;
        }
        let code = *data.get(pos)?;
        if code != 0 {
            return Some((code, pos + 1));
        }
        pos += 1;
    }
}

/// Reads a DQT segment into `tables`.
pub(super) fn read_dqt(mut p: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    while let Some((&pq_tq, rest)) = p.split_first() {
        let (precision, id) = (pq_tq >> 4, (pq_tq & 15) as usize);
        if id > 3 || precision > 1 {
            return Err(JpegError::corrupt(format!("bad quantization table header 0x{pq_tq:02x}")));
        }
        let size = 64 << precision;
        let body = rest.get(..size).ok_or(JpegError::Truncated("a quantization table"))?;
        let mut table = [0u16; 64];
        for (k, &pos) in ZIGZAG[..64].iter().enumerate() {
            table[pos] = match precision {
                0 => body[k] as u16,
                _ => u16::from_be_bytes([body[2 * k], body[2 * k + 1]]),
            };
        }
        tables.quant[id] = Some(table);
        p = &rest[size..];
    }
    Ok(())
}

/// Reads a DHT segment into `tables`.
pub(super) fn read_dht(mut p: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    while let Some((&tc_th, rest)) = p.split_first() {
        let (class, id) = (tc_th >> 4, (tc_th & 15) as usize);
        if id > 3 || class > 1 {
            return Err(JpegError::corrupt(format!("bad Huffman table header 0x{tc_th:02x}")));
        }
        let counts: &[u8; 16] =
            rest.get(..16).and_then(|c| c.try_into().ok()).ok_or(JpegError::Truncated("a Huffman table"))?;
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        let values = rest.get(16..16 + n).ok_or(JpegError::Truncated("a Huffman table"))?;
        let table = HuffTable::new(counts, values, class == 0)?;
        if class == 0 {
            tables.dc[id] = Some(table);
        } else {
            tables.ac[id] = Some(table);
        }
        p = &rest[16 + n..];
    }
    Ok(())
}

/// Reads a DRI segment.
pub(super) fn read_dri(p: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    if p.len() != 2 {
        return Err(JpegError::corrupt(format!("DRI segment of {} bytes (expected 2)", p.len())));
    }
    tables.restart_interval = u16::from_be_bytes([p[0], p[1]]) as usize;
    Ok(())
}

/// Notes a JFIF APP0 segment (which implies YCbCr colour).
pub(super) fn read_app0(p: &[u8], tables: &mut Tables) {
    if p.len() >= 14 && p.starts_with(b"JFIF\0") {
        tables.saw_jfif = true;
    }
}

/// Notes the colour transform flag of an Adobe APP14 segment.
pub(super) fn read_app14(p: &[u8], tables: &mut Tables) {
    if p.len() >= 12 && p.starts_with(b"Adobe") {
        tables.adobe_transform = Some(p[11]);
    }
}

/// Reads a SOF segment. `data_len` bounds the number of blocks a complete file can code.
pub(super) fn read_sof(p: &[u8], progressive: bool, data_len: usize) -> Result<Frame, JpegError> {
    let head = p.get(..6).ok_or(JpegError::Truncated("the frame header"))?;
    let precision = head[0];
    let height = u16::from_be_bytes([head[1], head[2]]) as usize;
    let width = u16::from_be_bytes([head[3], head[4]]) as usize;
    let n = head[5] as usize;
    if precision != 8 {
        return Err(JpegError::unsupported(format!("{precision}-bit samples (only 8-bit JPEGs are read)")));
    }
    if width == 0 || height == 0 {
        return Err(JpegError::corrupt(format!("image size {width}x{height}")));
    }
    match n {
        1 | 3 => {}
        4 => return Err(JpegError::unsupported("CMYK/YCCK colour (4 components)".to_string())),
        _ => return Err(JpegError::unsupported(format!("{n} colour components (1 or 3 are read)"))),
    }
    let specs = p.get(6..6 + 3 * n).ok_or(JpegError::Truncated("the frame header"))?;
    let mut comps: Vec<Component> = Vec::with_capacity(MAX_COMPONENTS);
    for spec in specs.chunks_exact(3) {
        let (id, h, v, tq) = (spec[0], (spec[1] >> 4) as usize, (spec[1] & 15) as usize, spec[2] as usize);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(JpegError::corrupt(format!("component {id} has sampling factors {h}x{v}")));
        }
        if tq > 3 {
            return Err(JpegError::corrupt(format!("component {id} uses quantization table {tq}")));
        }
        if comps.iter().any(|c| c.id == id) {
            return Err(JpegError::corrupt(format!("component id {id} appears twice")));
        }
        comps.push(Component {
            id,
            h,
            v,
            tq,
            quant: None,
            blocks_w: 0,
            blocks_h: 0,
            width_in_blocks: 0,
            height_in_blocks: 0,
            ds_width: 0,
            ds_height: 0,
            coefs: Vec::new(),
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcus_x = width.div_ceil(8 * hmax);
    let mcus_y = height.div_ceil(8 * vmax);
    let mut blocks = 0usize;
    for c in &mut comps {
        c.blocks_w = mcus_x * c.h;
        c.blocks_h = mcus_y * c.v;
        c.ds_width = (width * c.h).div_ceil(hmax);
        c.ds_height = (height * c.v).div_ceil(vmax);
        c.width_in_blocks = c.ds_width.div_ceil(8);
        c.height_in_blocks = c.ds_height.div_ceil(8);
        blocks += c.width_in_blocks * c.height_in_blocks;
    }
    // Every block of a first scan costs at least one bit, so a complete file of `data_len` bytes
    // codes at most `8 * data_len` blocks: refuse to allocate for more.
    if blocks > 8 * data_len {
        return Err(JpegError::corrupt(format!(
            "the header declares a {width}x{height} image but the file holds only {data_len} bytes"
        )));
    }
    for c in &mut comps {
        c.coefs = vec![0; c.blocks_w * c.blocks_h * 64];
    }
    Ok(Frame { width, height, progressive, comps, hmax, vmax, mcus_x, mcus_y })
}

/// Reads a SOS segment and checks it against the frame and the tables it needs.
pub(super) fn read_sos(p: &[u8], frame: &Frame, tables: &Tables) -> Result<Scan, JpegError> {
    let n = *p.first().ok_or(JpegError::Truncated("a scan header"))? as usize;
    if !(1..=MAX_COMPONENTS).contains(&n) || p.len() != 4 + 2 * n {
        return Err(JpegError::corrupt(format!("scan header of {} bytes for {n} components", p.len())));
    }
    let mut comps: Vec<ScanComponent> = Vec::with_capacity(n);
    for spec in p[1..1 + 2 * n].chunks_exact(2) {
        let index = frame
            .comps
            .iter()
            .position(|c| c.id == spec[0])
            .ok_or_else(|| JpegError::corrupt(format!("scan names unknown component {}", spec[0])))?;
        if comps.iter().any(|c| c.index == index) {
            return Err(JpegError::corrupt(format!("scan names component {} twice", spec[0])));
        }
        let (td, ta) = ((spec[1] >> 4) as usize, (spec[1] & 15) as usize);
        if td > 3 || ta > 3 {
            return Err(JpegError::corrupt(format!("scan uses Huffman tables {td}/{ta}")));
        }
        comps.push(ScanComponent { index, td, ta });
    }
    let tail = &p[1 + 2 * n..];
    let (ss, se, ah, al) = (tail[0] as usize, tail[1] as usize, (tail[2] >> 4) as u32, (tail[2] & 15) as u32);
    let blocks_per_mcu: usize = comps.iter().map(|c| frame.comps[c.index].h * frame.comps[c.index].v).sum();
    if n > 1 && blocks_per_mcu > 10 {
        return Err(JpegError::corrupt(format!("{blocks_per_mcu} blocks per MCU (at most 10)")));
    }
    let scan = if frame.progressive {
        let bad = if ss == 0 { se != 0 } else { se < ss || se > 63 || n != 1 };
        if bad || (ah != 0 && al + 1 != ah) || al > 13 {
            return Err(JpegError::corrupt(format!(
                "bad progressive scan parameters Ss={ss} Se={se} Ah={ah} Al={al}"
            )));
        }
        Scan { comps, ss, se, ah, al }
    } else {
        // A sequential scan codes whole blocks whatever these say (libjpeg ignores them too).
        Scan { comps, ss: 0, se: 63, ah: 0, al: 0 }
    };
    for c in &scan.comps {
        if scan.ss == 0 && scan.ah == 0 && tables.dc[c.td].is_none() {
            return Err(JpegError::corrupt(format!("scan uses undefined DC Huffman table {}", c.td)));
        }
        if scan.se > 0 && tables.ac[c.ta].is_none() {
            return Err(JpegError::corrupt(format!("scan uses undefined AC Huffman table {}", c.ta)));
        }
    }
    Ok(scan)
}

//! A JPEG decoder whose pixels equal libjpeg-turbo's under the settings Pillow (and so
//! torchvision) decodes with: the accurate integer IDCT (`JDCT_ISLOW`), "fancy" triangle-filter
//! upsampling of subsampled chroma, and libjpeg's fixed-point YCbCr → RGB tables.
//!
//! Reads baseline and extended sequential Huffman JPEGs and progressive Huffman JPEGs, 8-bit,
//! grayscale or three-component (YCbCr, or RGB per an Adobe marker or the component ids), any
//! integral sampling factors (4:2:0, 4:2:2, 4:4:0, 4:4:4, 4:1:1, ...), with restart markers.
//! Everything else (arithmetic coding, lossless, hierarchical, 12-bit, CMYK) is a one-line
//! [`JpegError`]; so is corrupt or truncated data: every length and index is checked, nothing
//! panics.
//!
//! ```no_run
//! # let bytes: Vec<u8> = Vec::new();
//! let decoder = shrink_io::data::jpeg::Decoder::new(&bytes)?;
//! let (w, h, channels) = (decoder.width(), decoder.height(), decoder.channels());
//! let mut pixels = Vec::new();
//! decoder.decode_into(&mut pixels)?; // w * h * channels bytes, interleaved
//! # Ok::<(), shrink_io::data::jpeg::JpegError>(())
//! ```

mod color;
mod entropy;
mod huffman;
mod idct;
mod markers;
mod upsample;

use markers::{Frame, Tables};
use upsample::Plane;

/// The most scans a file may have: each one walks every block, so a file of many tiny scans
/// could otherwise take very long (a real progressive JPEG has about 10).
const MAX_SCANS: usize = 500;

/// Why a JPEG could not be decoded; displayed as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    /// The data ends before the image does.
    #[error("truncated JPEG: the data ends inside {0}")]
    Truncated(&'static str),
    /// The data breaks the JPEG format.
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
    /// A valid JPEG using a feature this decoder does not read.
    #[error("unsupported JPEG: {0}")]
    Unsupported(String),
}

impl JpegError {
    fn corrupt(detail: String) -> Self {
        JpegError::Corrupt(detail)
    }
    fn unsupported(detail: String) -> Self {
        JpegError::Unsupported(detail)
    }
}

/// A JPEG whose headers have been read up to the frame header (SOF), so that its size is known
/// before any pixel is decoded.
pub struct Decoder<'a> {
    data: &'a [u8],
    /// Where reading resumes: just after the frame header.
    pos: usize,
    frame: Frame,
    tables: Tables,
}

impl<'a> Decoder<'a> {
    /// Reads the markers of `data` up to and including the frame header.
    pub fn new(data: &'a [u8]) -> Result<Self, JpegError> {
        if !data.starts_with(&[0xFF, 0xD8]) {
            return Err(JpegError::corrupt("no SOI marker at the start (not a JPEG file)".to_string()));
        }
        let mut tables = Tables::default();
        let mut pos = 2;
        loop {
            let (code, after) = markers::next_marker(data, pos).ok_or(JpegError::Truncated("the headers"))?;
            let (payload, next) = match code {
                0xD0..=0xD7 | 0x01 => {
                    pos = after;
                    continue;
                }
                0xD8..=0xDA => {
                    return Err(JpegError::corrupt(format!("marker 0x{code:02x} before the frame header")));
                }
                _ => markers::segment(data, after, "a marker segment")?,
            };
            match code {
                0xC0..=0xC2 => {
                    let frame = markers::read_sof(payload, code == 0xC2, data.len())?;
                    return Ok(Decoder { data, pos: next, frame, tables });
                }
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(JpegError::unsupported(format!("coding process {}", process_name(code))));
                }
                _ => read_table_or_skip(code, payload, &mut tables)?,
            }
            pos = next;
        }
    }

    /// The image width in pixels.
    pub fn width(&self) -> u32 {
        self.frame.width as u32
    }

    /// The image height in pixels.
    pub fn height(&self) -> u32 {
        self.frame.height as u32
    }

    /// 1 for grayscale, 3 for colour (decoded as RGB).
    pub fn channels(&self) -> usize {
        if self.frame.comps.len() == 1 {
            1
        } else {
            3
        }
    }

    /// Decodes the image into `pixels` (cleared first): `width * height * channels` bytes,
    /// row-major, RGB interleaved for colour.
    pub fn decode_into(mut self, pixels: &mut Vec<u8>) -> Result<(), JpegError> {
        let data = self.data;
        let mut pos = self.pos;
        let mut scans = 0usize;
        loop {
            let Some((code, after)) = markers::next_marker(data, pos) else {
                // A missing EOI after complete sequential scans is tolerated, as libjpeg does.
                if scans > 0 && !self.frame.progressive {
                    break;
                }
                return Err(JpegError::Truncated("the image (no EOI marker)"));
            };
            match code {
                0xD9 => break,
                0xD0..=0xD7 | 0x01 => pos = after,
                0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(JpegError::corrupt("a second frame header".to_string()));
                }
                0xDA => {
                    if scans == MAX_SCANS {
                        return Err(JpegError::corrupt(format!("more than {MAX_SCANS} scans")));
                    }
                    let (payload, next) = markers::segment(data, after, "a scan header")?;
                    let scan = markers::read_sos(payload, &self.frame, &self.tables)?;
                    for c in &scan.comps {
                        latch_quant(&mut self.frame, &self.tables, c.index)?;
                    }
                    pos = entropy::decode_scan(data, next, &mut self.frame, &scan, &self.tables)?;
                    scans += 1;
                }
                _ => {
                    let (payload, next) = markers::segment(data, after, "a marker segment")?;
                    read_table_or_skip(code, payload, &mut self.tables)?;
                    pos = next;
                }
            }
        }
        if let Some(c) = self.frame.comps.iter().find(|c| c.quant.is_none()) {
            return Err(JpegError::corrupt(format!("component {} has no scan", c.id)));
        }
        self.render(pixels)
    }

    /// Inverse DCT, upsampling and colour conversion of the decoded coefficients.
    fn render(&self, pixels: &mut Vec<u8>) -> Result<(), JpegError> {
        let f = &self.frame;
        let width = f.width;
        let samples = f.comps.iter().map(idct_plane).collect::<Result<Vec<_>, _>>()?;
        let upsampled =
            f.comps.iter().zip(&samples).map(|(c, s)| full_size(f, c, s)).collect::<Result<Vec<_>, _>>()?;
        let planes: Vec<Plane> = f
            .comps
            .iter()
            .zip(&samples)
            .zip(&upsampled)
            .map(|((c, s), u)| match u {
                Some(u) => Plane { data: u, stride: width },
                None => Plane { data: s, stride: c.blocks_w * 8 },
            })
            .collect();
        let channels = self.channels();
        let rgb = self.is_rgb();
        pixels.clear();
        pixels.resize(width * f.height * channels, 0);
        for (y, dst) in pixels.chunks_exact_mut(width * channels).enumerate() {
            match planes.as_slice() {
                [gray] => dst.copy_from_slice(gray.row(y, width)),
                [a, b, c] if rgb => color::rgb_row(a.row(y, width), b.row(y, width), c.row(y, width), dst),
                [a, b, c] => color::ycc_row_to_rgb(a.row(y, width), b.row(y, width), c.row(y, width), dst),
                _ => return Err(JpegError::unsupported(format!("{} components", planes.len()))),
            }
        }
        Ok(())
    }

    /// Whether three components are RGB rather than YCbCr, decided as libjpeg does: a JFIF
    /// marker means YCbCr; else an Adobe marker's transform flag (0: RGB); else component ids
    /// `R`, `G`, `B`.
    fn is_rgb(&self) -> bool {
        if self.tables.saw_jfif {
            return false;
        }
        if let Some(t) = self.tables.adobe_transform {
            return t == 0;
        }
        let ids: Vec<u8> = self.frame.comps.iter().map(|c| c.id).collect();
        ids == b"RGB"
    }
}

/// Decodes a whole JPEG: `(width, height, channels)` and the pixels (see
/// [`Decoder::decode_into`]).
pub fn decode(data: &[u8]) -> Result<(u32, u32, usize, Vec<u8>), JpegError> {
    let decoder = Decoder::new(data)?;
    let (w, h, c) = (decoder.width(), decoder.height(), decoder.channels());
    let mut pixels = Vec::new();
    decoder.decode_into(&mut pixels)?;
    Ok((w, h, c, pixels))
}

/// The samples of a component (its whole block grid, `blocks_w * 8` per row): the inverse DCT
/// of the blocks that cover its samples.
fn idct_plane(c: &markers::Component) -> Result<Vec<u8>, JpegError> {
    let stride = c.blocks_w * 8;
    let mut plane = vec![0u8; stride * c.blocks_h * 8];
    let quant =
        c.quant.as_ref().ok_or_else(|| JpegError::corrupt(format!("component {} has no scan", c.id)))?;
    for by in 0..c.height_in_blocks {
        for bx in 0..c.width_in_blocks {
            let at = (by * c.blocks_w + bx) * 64;
            let block: &[i16; 64] = c.coefs[at..at + 64]
                .try_into()
                .map_err(|_| JpegError::corrupt("block out of range".to_string()))?;
            idct::idct_block(block, quant, &mut plane[by * 8 * stride + bx * 8..], stride);
        }
    }
    Ok(plane)
}

/// A subsampled component brought to the image size (`width` per row); `None` for a component
/// already at full size.
fn full_size(f: &Frame, c: &markers::Component, samples: &[u8]) -> Result<Option<Vec<u8>>, JpegError> {
    if !f.hmax.is_multiple_of(c.h) || !f.vmax.is_multiple_of(c.v) {
        return Err(JpegError::unsupported(format!(
            "fractional sampling factors ({}x{} against {}x{})",
            c.h, c.v, f.hmax, f.vmax
        )));
    }
    let (hf, vf) = (f.hmax / c.h, f.vmax / c.v);
    if hf == 1 && vf == 1 {
        return Ok(None);
    }
    let mut out = Vec::new();
    let input = Plane { data: samples, stride: c.blocks_w * 8 };
    upsample::upsample(input, c.ds_width, c.ds_height, hf, vf, f.width, f.height, &mut out);
    Ok(Some(out))
}

/// Keeps the quantization table a component uses as it is when the component first appears in
/// a scan (libjpeg latches it then).
fn latch_quant(frame: &mut Frame, tables: &Tables, index: usize) -> Result<(), JpegError> {
    let c = &mut frame.comps[index];
    if c.quant.is_none() {
        let table = tables.quant[c.tq].ok_or_else(|| {
            JpegError::corrupt(format!("component {} uses undefined quantization table {}", c.id, c.tq))
        })?;
        // libjpeg keeps its multipliers as 16-bit signed integers.
        c.quant = Some(table.map(|q| q as i16 as i32));
    }
    Ok(())
}

/// Reads a table or hint segment; skips segments that do not matter for the pixels.
fn read_table_or_skip(code: u8, payload: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    match code {
        0xC4 => markers::read_dht(payload, tables),
        0xCC => Err(JpegError::unsupported("arithmetic coding".to_string())),
        0xDB => markers::read_dqt(payload, tables),
        0xDD => markers::read_dri(payload, tables),
        0xE0 => {
            markers::read_app0(payload, tables);
            Ok(())
        }
        0xEE => {
            markers::read_app14(payload, tables);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A name for an unsupported SOF marker.
fn process_name(code: u8) -> &'static str {
    match code {
        0xC3 => "lossless (SOF3)",
        0xC5..=0xC7 => "hierarchical (SOF5-7)",
        0xC9 | 0xCA => "arithmetic (SOF9-10)",
        0xCB => "lossless arithmetic (SOF11)",
        _ => "hierarchical arithmetic (SOF13-15)",
    }
}

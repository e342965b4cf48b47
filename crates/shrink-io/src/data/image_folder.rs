//! Image folders in the torchvision `ImageFolder` layout: `<root>/<split>/<class>/*.{png,jpg,jpeg}`
//! with `<split>` `train`, or `test` (`val` when there is no `test`). Classes are the sorted
//! union of the class directories of the train and test splits, so both splits number them
//! alike; images are taken in path order. The root is a directory or a tar archive (see
//! [`super::tree`]).
//!
//! Images are decoded in parallel. All must have the size of the first one; grayscale gives one
//! channel, colour three (alpha is dropped), and a folder mixing both is loaded as colour.

use std::collections::BTreeSet;
use std::io::Cursor;

use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use rayon::prelude::*;

use super::error::{one_line, DataError};
use super::tree::{is_image_name, join, Child, Tree};
use super::{Dataset, Split};

/// What [`super::load`] looks for, for the "no dataset found" message.
pub(crate) const LOOKED_FOR: &str =
    "an image folder (train/<class>/*.png|jpg|jpeg, test/<class>/... or val/<class>/...)";

/// The largest single image decoded, in bytes.
const MAX_IMAGE_BYTES: u64 = 1 << 28;

/// The directory names that hold `split`, preferred first.
pub(crate) fn split_dir_names(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["train"],
        Split::Test => &["test", "val"],
    }
}

/// Does a directory with these children look like an image-folder root?
pub(crate) fn detect(children: &[Child]) -> bool {
    children.iter().any(|c| c.is_dir && (c.name == "train" || c.name == "test" || c.name == "val"))
}

/// Loads one split of an image folder rooted at `base`.
pub(crate) fn load(tree: &Tree, base: &str, children: &[Child], split: Split) -> Result<Dataset, DataError> {
    let has = |name: &str| children.iter().any(|c| c.is_dir && c.name == name);
    let Some(split_dir) = split_dir_names(split).iter().copied().find(|n| has(n)) else {
        return Err(DataError::MissingSplit {
            path: tree.display(base),
            split: split.to_string(),
            missing: match split {
                Split::Train => "a `train/` directory".to_string(),
                Split::Test => "a `test/` (or `val/`) directory".to_string(),
            },
        });
    };
    let test_dir = split_dir_names(Split::Test).iter().copied().find(|n| has(n));
    let mut classes = BTreeSet::new();
    let mut here = BTreeSet::new();
    for dir in std::iter::once("train").chain(test_dir) {
        if !has(dir) {
            continue;
        }
        for child in tree.list(&join(base, dir))? {
            if child.is_dir {
                if dir == split_dir {
                    here.insert(child.name.clone());
                }
                classes.insert(child.name);
            }
        }
    }
    let split_rel = join(base, split_dir);
    if classes.is_empty() {
        return Err(DataError::NoClasses { path: tree.display(&split_rel) });
    }
    let classes: Vec<String> = classes.into_iter().collect();
    let mut entries: Vec<(String, u32)> = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        if !here.contains(class) {
            continue;
        }
        for file in tree.files_under(&join(&split_rel, class))? {
            if is_image_name(file.rsplit('/').next().unwrap_or(&file)) {
                entries.push((file, label as u32));
            }
        }
    }
    if entries.is_empty() {
        return Err(DataError::NoImages { path: tree.display(&split_rel) });
    }
    let (channels, height, width, images) = decode_all(tree, &entries)?;
    Ok(Dataset {
        channels,
        height,
        width,
        images,
        labels: entries.iter().map(|(_, l)| *l).collect(),
        classes,
        source: tree.display(&split_rel),
    })
}

/// What decoding an image gave; its pixels (interleaved, HWC) are in the caller's scratch buffer.
#[derive(Clone, Copy)]
struct Decoded {
    width: u32,
    height: u32,
    color: bool,
}

enum Failure {
    Decode(String),
    Size(u32, u32),
}

/// Decodes all images in parallel into one CHW buffer; returns (channels, height, width, data).
///
/// The first image sets the size; images are decoded straight into their slot of the output.
/// A folder whose first image is gray but that holds colour images is decoded a second time
/// with three channels.
fn decode_all(tree: &Tree, entries: &[(String, u32)]) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let first_rel = &entries[0].0;
    let mut scratch = Vec::new();
    let first = match decode(&tree.read(first_rel)?, first_rel, None, &mut scratch) {
        Ok(d) => d,
        Err(Failure::Decode(detail)) => {
            return Err(DataError::Decode { path: tree.display(first_rel), detail });
        }
        // No size is asked of the first image, so this cannot happen; report it plainly anyway.
        Err(Failure::Size(w, h)) => {
            let detail = format!("unexpected size {w}x{h}");
            return Err(DataError::Decode { path: tree.display(first_rel), detail });
        }
    };
    let mut channels = if first.color { 3 } else { 1 };
    loop {
        if let Some(images) = decode_into(tree, entries, first, channels)? {
            return Ok((channels, first.height as usize, first.width as usize, images));
        }
        channels = 3;
    }
}

/// One pass of [`decode_all`] with a given channel count; `None` when a colour image turned up
/// in a one-channel pass.
fn decode_into(
    tree: &Tree,
    entries: &[(String, u32)],
    first: Decoded,
    channels: usize,
) -> Result<Option<Vec<u8>>, DataError> {
    let (w, h) = (first.width, first.height);
    let first_rel = &entries[0].0;
    let per_image = channels * w as usize * h as usize;
    let total = per_image
        .checked_mul(entries.len())
        .ok_or_else(|| DataError::invalid(tree.display(""), "dataset too large to hold in memory"))?;
    let mut images = vec![0u8; total];
    let results: Vec<Result<bool, DataError>> = images
        .par_chunks_mut(per_image)
        .zip(entries.par_iter())
        .with_min_len(64)
        .map_init(Vec::new, |scratch, (dst, (rel, _))| {
            let bytes = tree.read(rel)?;
            match decode(&bytes, rel, Some((w, h)), scratch) {
                Ok(d) if scratch.len() != dst.len() / channels * if d.color { 3 } else { 1 } => {
                    let detail = format!("decoder returned {} bytes for a {w}x{h} image", scratch.len());
                    Err(DataError::Decode { path: tree.display(rel), detail })
                }
                Ok(d) => {
                    if !d.color || channels == 3 {
                        to_chw(scratch, d.color, channels, dst);
                    }
                    Ok(d.color)
                }
                Err(Failure::Decode(detail)) => Err(DataError::Decode { path: tree.display(rel), detail }),
                Err(Failure::Size(width, height)) => Err(DataError::ImageSize {
                    path: tree.display(rel),
                    width,
                    height,
                    first_path: tree.display(first_rel),
                    first_width: w,
                    first_height: h,
                }),
            }
        })
        .collect();
    let mut any_color = false;
    for r in results {
        any_color |= r?;
    }
    Ok(if any_color && channels == 1 { None } else { Some(images) })
}

/// Writes an interleaved gray or RGB image into a planar (CHW) buffer with `channels` planes
/// (gray is repeated into every plane).
fn to_chw(pixels: &[u8], color: bool, channels: usize, dst: &mut [u8]) {
    let plane = dst.len() / channels;
    if !color {
        for c in 0..channels {
            dst[c * plane..(c + 1) * plane].copy_from_slice(pixels);
        }
        return;
    }
    let (r, rest) = dst.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in pixels.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
}

/// Decodes one image to 8-bit gray or RGB (interleaved) in `pixels`. With `expect`, an image of
/// another size fails with [`Failure::Size`] before its pixels are decoded.
fn decode(
    bytes: &[u8],
    name: &str,
    expect: Option<(u32, u32)>,
    pixels: &mut Vec<u8>,
) -> Result<Decoded, Failure> {
    let err = |e: image::ImageError| Failure::Decode(one_line(&e.to_string()));
    let format = image::guess_format(bytes)
        .or_else(|_| ImageFormat::from_path(name))
        .map_err(|_| Failure::Decode("not a PNG or JPEG file".to_string()))?;
    if format == ImageFormat::Jpeg {
        return decode_jpeg(bytes, expect, pixels);
    }
    let decoder = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(err)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, expect)?;
    if decoder.total_bytes() > MAX_IMAGE_BYTES {
        return Err(Failure::Decode(format!("image is too large ({width}x{height})")));
    }
    let color_type = decoder.color_type();
    let color = color_type.has_color();
    match color_type {
        ColorType::L8 | ColorType::Rgb8 => {
            pixels.clear();
            pixels.resize(decoder.total_bytes() as usize, 0);
            decoder.read_image(pixels).map_err(err)?;
        }
        _ => {
            let img = DynamicImage::from_decoder(decoder).map_err(err)?;
            *pixels = if color { img.into_rgb8().into_raw() } else { img.into_luma8().into_raw() };
        }
    }
    Ok(Decoded { width, height, color })
}

fn check_size(width: u32, height: u32, expect: Option<(u32, u32)>) -> Result<(), Failure> {
    if let Some((ew, eh)) = expect {
        if (width, height) != (ew, eh) {
            return Err(Failure::Size(width, height));
        }
    }
    if width == 0 || height == 0 {
        return Err(Failure::Decode(format!("image is {width}x{height}")));
    }
    Ok(())
}

/// Decodes a JPEG with [`super::jpeg`], whose pixels equal Pillow's (libjpeg-turbo's), so that
/// a model evaluates as it does under torchvision.
fn decode_jpeg(bytes: &[u8], expect: Option<(u32, u32)>, pixels: &mut Vec<u8>) -> Result<Decoded, Failure> {
    let err = |e: super::jpeg::JpegError| Failure::Decode(one_line(&e.to_string()));
    let decoder = super::jpeg::Decoder::new(bytes).map_err(err)?;
    let (width, height) = (decoder.width(), decoder.height());
    check_size(width, height, expect)?;
    let color = decoder.channels() == 3;
    let len = width as u64 * height as u64 * decoder.channels() as u64;
    if len > MAX_IMAGE_BYTES {
        return Err(Failure::Decode(format!("image is too large ({width}x{height})")));
    }
    decoder.decode_into(pixels).map_err(err)?;
    Ok(Decoded { width, height, color })
}

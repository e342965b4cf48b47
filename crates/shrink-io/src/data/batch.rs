//! Turning examples into training batches: normalization of `pixel / 255` per channel, optional
//! augmentation (random crop with zero padding, random horizontal flip, in the order and with
//! the padding value of torchvision's `RandomCrop(padding=p)` + `RandomHorizontalFlip()` on the
//! raw image), and parallel filling of an `f32` NCHW buffer.
//!
//! All random draws happen sequentially before the parallel part, so a batch depends only on
//! the rng state, never on the number of threads.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Dataset;

/// Per-channel normalization applied to `pixel / 255`: `(pixel / 255 - mean[c]) / std[c]`.
/// A single mean/std value applies to every channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Training-time augmentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Augment {
    /// Random crop of the original size out of the image padded by this many zero pixels on
    /// each side (0: no crop).
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2.
    pub hflip: bool,
}

impl Augment {
    /// Whether this augmentation changes anything.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.hflip
    }
}

/// The default normalization for images with `channels` channels: mean 0.5 / std 0.5 for
/// grayscale (MNIST, as `Normalize((0.5,), (0.5,))`), the ImageNet statistics
/// (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) for three channels, 0.5 / 0.5 otherwise.
pub fn default_normalize(channels: usize) -> Normalize {
    if channels == 3 {
        Normalize { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }
    } else {
        Normalize { mean: vec![0.5; channels.max(1)], std: vec![0.5; channels.max(1)] }
    }
}

impl Normalize {
    /// The normalized value of `pixel` in channel `c`.
    pub fn apply(&self, c: usize, pixel: u8) -> f32 {
        let (mean, std) = self.channel(c);
        (pixel as f32 / 255.0 - mean) / std
    }

    fn channel(&self, c: usize) -> (f32, f32) {
        let pick = |v: &[f32]| if v.len() == 1 { v[0] } else { v[c] };
        (pick(&self.mean), pick(&self.std))
    }

    /// One 256-entry lookup table per channel.
    fn tables(&self, channels: usize) -> Vec<[f32; 256]> {
        for (name, v) in [("mean", &self.mean), ("std", &self.std)] {
            assert!(
                v.len() == 1 || v.len() == channels,
                "normalization {name} has {} values for {channels}-channel images",
                v.len()
            );
        }
        (0..channels)
            .map(|c| {
                let mut t = [0f32; 256];
                for (p, v) in t.iter_mut().enumerate() {
                    *v = self.apply(c, p as u8);
                }
                t
            })
            .collect()
    }
}

/// The random choices for one image.
#[derive(Clone, Copy, Default)]
struct Draw {
    /// Crop offsets into the padded image, in `0..=2*padding`.
    dy: usize,
    dx: usize,
    flip: bool,
}

/// Fills `out` (resized to `indices.len() * C * H * W`) with normalized f32 NCHW data for the
/// examples at `indices`, and returns their labels.
///
/// With `augment`, each image gets a random crop (offsets drawn in `0..=2p` for rows then
/// columns) and/or a flip (one `bool` draw), drawn in index order from the rng before the
/// parallel fill, so the result depends only on the rng state.
///
/// # Panics
/// If an index is out of range, or `norm` has neither 1 nor `C` values.
pub fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    norm: &Normalize,
    augment: Option<(&Augment, &mut ChaCha8Rng)>,
    out: &mut Vec<f32>,
) -> Vec<u32> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let chw = c * h * w;
    let n = ds.len();
    let labels = indices
        .iter()
        .map(|&i| {
            assert!(i < n, "example index {i} out of range for a dataset of {n}");
            ds.labels[i]
        })
        .collect();
    let tables = norm.tables(c);
    let mut pad = 0;
    let mut draws = Vec::new();
    if let Some((aug, rng)) = augment {
        if !aug.is_identity() {
            pad = aug.crop_padding;
            draws = indices
                .iter()
                .map(|_| {
                    let mut d = Draw { dy: pad, dx: pad, flip: false };
                    if pad > 0 {
                        d.dy = rng.random_range(0..=2 * pad);
                        d.dx = rng.random_range(0..=2 * pad);
                    }
                    if aug.hflip {
                        d.flip = rng.random::<bool>();
                    }
                    d
                })
                .collect();
        }
    }
    out.clear();
    out.resize(indices.len() * chw, 0.0);
    if chw == 0 {
        return labels;
    }
    out.par_chunks_mut(chw).with_min_len(8).enumerate().for_each(|(k, dst)| {
        let src = &ds.images[indices[k] * chw..(indices[k] + 1) * chw];
        match draws.get(k) {
            None => {
                for ((t, dplane), splane) in tables.iter().zip(dst.chunks_mut(h * w)).zip(src.chunks(h * w)) {
                    for (o, &p) in dplane.iter_mut().zip(splane) {
                        *o = t[p as usize];
                    }
                }
            }
            Some(d) => fill_augmented(src, dst, &tables, (c, h, w), pad, *d),
        }
    });
    labels
}

/// Writes one cropped/flipped image: output pixel (y, x) comes from the padded image at
/// (y + dy, x' + dx) where x' is x, or w-1-x when flipped; padding reads as pixel value 0.
fn fill_augmented(
    src: &[u8],
    dst: &mut [f32],
    tables: &[[f32; 256]],
    (c, h, w): (usize, usize, usize),
    pad: usize,
    d: Draw,
) {
    let planes = tables.iter().zip(dst.chunks_mut(h * w)).zip(src.chunks(h * w)).take(c);
    for ((t, dplane), splane) in planes {
        let zero = t[0];
        for y in 0..h {
            let drow = &mut dplane[y * w..(y + 1) * w];
            let sy = (y + d.dy).wrapping_sub(pad);
            if sy >= h {
                drow.fill(zero);
                continue;
            }
            let srow = &splane[sy * w..(sy + 1) * w];
            for (x, o) in drow.iter_mut().enumerate() {
                let xc = if d.flip { w - 1 - x } else { x };
                let sx = (xc + d.dx).wrapping_sub(pad);
                *o = if sx < w { t[srow[sx] as usize] } else { zero };
            }
        }
    }
}

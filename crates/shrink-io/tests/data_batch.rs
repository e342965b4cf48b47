//! Batching (normalization, augmentation) and selecting examples (subsets, validation split).

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shrink_io::data::{self, default_normalize, make_batch, Augment, Dataset, Normalize};

fn synthetic(n: usize, c: usize, h: usize, w: usize) -> Dataset {
    let mut images = Vec::with_capacity(n * c * h * w);
    for i in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    images.push(((i * 37 + ch * 11 + y * 5 + x * 3 + 1) % 256) as u8);
                }
            }
        }
    }
    Dataset {
        channels: c,
        height: h,
        width: w,
        images,
        labels: (0..n as u32).map(|i| i % 3).collect(),
        classes: vec!["a".into(), "b".into(), "c".into()],
        source: "synthetic".into(),
    }
}

/// Reference: image `i` cropped at (dy, dx) from the zero-padded image, then maybe flipped.
fn reference(
    ds: &Dataset,
    i: usize,
    norm: &Normalize,
    pad: usize,
    dy: usize,
    dx: usize,
    flip: bool,
) -> Vec<f32> {
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let img = ds.image(i);
    let mut out = Vec::with_capacity(c * h * w);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let xc = if flip { w - 1 - x } else { x };
                let (sy, sx) =
                    (y as isize + dy as isize - pad as isize, xc as isize + dx as isize - pad as isize);
                let p = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                    img[ch * h * w + sy as usize * w + sx as usize]
                } else {
                    0
                };
                out.push(norm.apply(ch, p));
            }
        }
    }
    out
}

/// Which (dy, dx, flip) produced `got`, if any.
fn find_draw(
    ds: &Dataset,
    i: usize,
    norm: &Normalize,
    pad: usize,
    got: &[f32],
) -> Option<(usize, usize, bool)> {
    for dy in 0..=2 * pad {
        for dx in 0..=2 * pad {
            for flip in [false, true] {
                if reference(ds, i, norm, pad, dy, dx, flip) == got {
                    return Some((dy, dx, flip));
                }
            }
        }
    }
    None
}

#[test]
fn normalization_is_exact() {
    let ds = synthetic(5, 2, 3, 4);
    let norm = Normalize { mean: vec![0.1, 0.2], std: vec![0.3, 0.4] };
    let mut out = vec![123.0; 1000];
    let labels = make_batch(&ds, &[4, 0, 2], &norm, None, &mut out);
    assert_eq!(labels, [1, 0, 2]);
    assert_eq!(out.len(), 3 * 24);
    for (k, &i) in [4usize, 0, 2].iter().enumerate() {
        for ch in 0..2 {
            for j in 0..12 {
                let p = ds.image(i)[ch * 12 + j];
                let want = (p as f32 / 255.0 - norm.mean[ch]) / norm.std[ch];
                assert_eq!(out[k * 24 + ch * 12 + j], want);
            }
        }
    }
    // Empty batch.
    assert!(make_batch(&ds, &[], &norm, None, &mut out).is_empty());
    assert!(out.is_empty());
}

#[test]
fn default_normalization_values() {
    let mnist = default_normalize(1);
    assert_eq!(mnist.mean, [0.5]);
    assert_eq!(mnist.std, [0.5]);
    assert_eq!(mnist.apply(0, 0), -1.0);
    assert_eq!(mnist.apply(0, 255), 1.0);
    let cifar = default_normalize(3);
    assert_eq!(cifar.mean, [0.485, 0.456, 0.406]);
    assert_eq!(cifar.std, [0.229, 0.224, 0.225]);
    // A single value applies to all channels.
    let ds = synthetic(2, 3, 2, 2);
    let mut out = Vec::new();
    make_batch(&ds, &[1], &default_normalize(1), None, &mut out);
    let want: Vec<f32> = ds.image(1).iter().map(|&p| (p as f32 / 255.0 - 0.5) / 0.5).collect();
    assert_eq!(out, want);
}

#[test]
fn augmentation_is_deterministic_and_independent_of_thread_count() {
    let ds = synthetic(40, 3, 8, 8);
    let norm = default_normalize(3);
    let aug = Augment { crop_padding: 2, hflip: true };
    let idx: Vec<usize> = (0..40).rev().collect();
    let run = |seed: u64, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            make_batch(&ds, &idx, &norm, Some((&aug, &mut rng)), &mut out);
            // The rng moves on: a second batch differs from the first.
            let mut out2 = Vec::new();
            make_batch(&ds, &idx, &norm, Some((&aug, &mut rng)), &mut out2);
            (out, out2)
        })
    };
    let (a1, a2) = run(42, 1);
    assert_eq!(run(42, 4), (a1.clone(), a2.clone()));
    assert_ne!(a1, a2);
    assert_ne!(run(43, 2).0, a1);
}

#[test]
fn crop_keeps_shape_and_flip_mirrors() {
    let ds = synthetic(64, 2, 5, 6);
    let norm = Normalize { mean: vec![0.25, 0.5], std: vec![0.5, 0.25] };
    let idx: Vec<usize> = (0..64).collect();
    let per = 2 * 5 * 6;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = Vec::new();

    // Flip only: each image is itself or its mirror, and both happen.
    let flip = Augment { crop_padding: 0, hflip: true };
    make_batch(&ds, &idx, &norm, Some((&flip, &mut rng)), &mut out);
    assert_eq!(out.len(), 64 * per);
    let mut flips = 0;
    for (k, got) in out.chunks(per).enumerate() {
        if got == reference(&ds, k, &norm, 0, 0, 0, true) {
            flips += 1;
            // Mirrored row by row.
            assert_eq!(got[0], norm.apply(0, ds.image(k)[5]));
        } else {
            assert_eq!(got, reference(&ds, k, &norm, 0, 0, 0, false));
        }
    }
    assert!(flips > 10 && flips < 54, "{flips} flips of 64");

    // Crop only: each image is a shifted copy with zero padding; offsets cover the range.
    let crop = Augment { crop_padding: 2, hflip: false };
    make_batch(&ds, &idx, &norm, Some((&crop, &mut rng)), &mut out);
    assert_eq!(out.len(), 64 * per);
    let mut seen = std::collections::BTreeSet::new();
    for (k, got) in out.chunks(per).enumerate() {
        let (dy, dx, f) = find_draw(&ds, k, &norm, 2, got).expect("a crop of the padded image");
        assert!(!f || reference(&ds, k, &norm, 2, dy, dx, false) == got);
        seen.insert((dy, dx));
    }
    assert!(seen.len() > 10, "offsets seen: {seen:?}");
    // A crop at the corner shows padding (pixel 0 normalized).
    let zero = [norm.apply(0, 0), norm.apply(1, 0)];
    let full_pad = out.chunks(per).any(|img| img[0] == zero[0] && img[1] == zero[0] && img[6] == zero[0]);
    assert!(full_pad);

    // Without augmentation, the rng is not needed and the batch is plain.
    let none = Augment::default();
    make_batch(&ds, &[3], &norm, Some((&none, &mut rng)), &mut out);
    assert_eq!(out, reference(&ds, 3, &norm, 0, 0, 0, false));
}

#[test]
fn subset_and_validation_split() {
    let ds = synthetic(100, 1, 2, 2);
    let sub = ds.subset(&[5, 5, 0]);
    assert_eq!(sub.len(), 3);
    assert_eq!(sub.image(0), ds.image(5));
    assert_eq!(sub.image(1), ds.image(5));
    assert_eq!(sub.labels, [2, 2, 0]);
    assert_eq!(sub.classes, ds.classes);

    let (train, val) = ds.split_validation(30, 9);
    assert_eq!((train.len(), val.len()), (70, 30));
    assert_eq!(ds.split_validation(30, 9), (train.clone(), val.clone()));
    let (ti, vi) = data::validation_indices(100, 30, 9);
    assert_eq!(train, ds.subset(&ti));
    assert_eq!(val, ds.subset(&vi));
    let mut all: Vec<usize> = ti.iter().chain(&vi).copied().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert!(ti.windows(2).all(|w| w[0] < w[1]) && vi.windows(2).all(|w| w[0] < w[1]));
    assert_ne!(data::validation_indices(100, 30, 10).1, vi);

    let (t, v) = ds.split_validation(1000, 0);
    assert_eq!((t.len(), v.len()), (0, 100));
    assert!(t.is_empty());
    let (t, v) = ds.split_validation(0, 0);
    assert_eq!((t.len(), v.len()), (100, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn augmented_images_are_crops_of_the_padded_image(
        c in 1usize..4, h in 1usize..7, w in 1usize..7, pad in 0usize..4,
        hflip: bool, seed: u64, n in 1usize..6,
    ) {
        let ds = synthetic(n, c, h, w);
        let norm = default_normalize(c);
        let aug = Augment { crop_padding: pad, hflip };
        let idx: Vec<usize> = (0..n).rev().collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        let labels = make_batch(&ds, &idx, &norm, Some((&aug, &mut rng)), &mut out);
        prop_assert_eq!(labels.len(), n);
        prop_assert_eq!(out.len(), n * c * h * w);
        for (k, got) in out.chunks(c * h * w).enumerate() {
            let found = find_draw(&ds, idx[k], &norm, pad, got);
            prop_assert!(found.is_some());
            if !hflip {
                let (dy, dx, _) = found.unwrap();
                prop_assert!(reference(&ds, idx[k], &norm, pad, dy, dx, false) == got);
            }
        }
    }
}

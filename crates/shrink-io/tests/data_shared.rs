//! The real CIFAR-10 JPEG image-folder archive from the shared data directory, when
//! `SHRINK_SHARED` points at it (skipped with a note otherwise).
//!
//! Timing of the 50k-image train split (run by hand, in release mode):
//! `SHRINK_SHARED=/work/shared cargo test --release -p shrink-io --test data_shared -- --ignored --nocapture`

use std::path::PathBuf;
use std::time::Instant;

use shrink_io::data::{self, Split, CIFAR10_CLASSES};

mod shared;

fn archive() -> PathBuf {
    shared::file("data/cifar10-jpeg.tar.gz")
}

/// A `SHRINK_SHARED` that lacks files fails here, naming every missing one.
#[test]
#[cfg_attr(not(shrink_shared), ignore = "needs SHRINK_SHARED")]
fn shared_directory_is_complete() {
    let dir = shared::dir();
    let missing = shared::missing(&dir);
    assert!(missing.is_empty(), "SHRINK_SHARED={} lacks {}", dir.display(), missing.join(", "));
}

#[test]
#[cfg_attr(not(shrink_shared), ignore = "needs SHRINK_SHARED (CIFAR-10 JPEG archive)")]
fn cifar10_jpeg_test_split() {
    let path = archive();
    let start = Instant::now();
    let test = data::load(&path, Split::Test).unwrap();
    eprintln!("loaded {} test images from {} in {:.2?}", test.len(), path.display(), start.elapsed());
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.image_shape(), [3, 32, 32]);
    assert_eq!(test.classes, CIFAR10_CLASSES.map(String::from).to_vec());
    assert_eq!(test.label_counts(), vec![1000; 10]);
    // Real photographs: not blank.
    let mean = test.images.iter().map(|&p| p as f64).sum::<f64>() / test.images.len() as f64;
    assert!((90.0..160.0).contains(&mean), "mean pixel {mean}");
}

#[test]
#[ignore = "timing of the 50k train split; run by hand in release mode"]
fn cifar10_jpeg_train_split_timing() {
    let path = archive();
    let start = Instant::now();
    let train = data::load(&path, Split::Train).unwrap();
    eprintln!(
        "loaded {} train images from {} in {:.2?} ({} threads)",
        train.len(),
        path.display(),
        start.elapsed(),
        rayon::current_num_threads()
    );
    assert_eq!(train.len(), 50_000);
    assert_eq!(train.label_counts(), vec![5000; 10]);
}

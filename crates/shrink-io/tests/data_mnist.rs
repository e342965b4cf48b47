//! The real MNIST set committed under `data/mnist` (gzipped IDX files).

use std::path::PathBuf;

use shrink_io::data::{self, Split};

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

#[test]
fn mnist_train_and_test_load_with_the_known_counts() {
    let train = data::load(&mnist_dir(), Split::Train).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(train.image_shape(), [1, 28, 28]);
    assert_eq!(train.images.len(), 60_000 * 28 * 28);
    let expected: Vec<String> = (0..10).map(|c| c.to_string()).collect();
    assert_eq!(train.classes, expected);
    let counts = train.label_counts();
    assert_eq!(counts[0], 5923);
    assert_eq!(counts[1], 6742);
    assert_eq!(counts.iter().sum::<usize>(), 60_000);
    // The well-known first labels of the training set.
    assert_eq!(&train.labels[..8], &[5, 0, 4, 1, 9, 2, 1, 3]);

    let test = data::load(&mnist_dir(), Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.image_shape(), [1, 28, 28]);
    let counts = test.label_counts();
    assert_eq!(counts[0], 980);
    assert_eq!(counts[1], 1135);
    assert_eq!(&test.labels[..4], &[7, 2, 1, 0]);
    assert_eq!(test.classes, expected);

    // MNIST digits have black borders and white strokes.
    let first = train.image(0);
    assert_eq!(first[0], 0);
    assert_eq!(*first.iter().max().unwrap(), 255);
}

#[test]
fn mnist_loads_from_one_of_its_files() {
    let file = mnist_dir().join("t10k-labels-idx1-ubyte.gz");
    let test = data::load(&file, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
}

#[test]
fn mnist_validation_split_is_disjoint_and_complete() {
    let test = data::load(&mnist_dir(), Split::Test).unwrap();
    let (train, val) = test.split_validation(1000, 7);
    assert_eq!(val.len(), 1000);
    assert_eq!(train.len(), 9000);
    let (ti, vi) = data::validation_indices(test.len(), 1000, 7);
    assert_eq!(val, test.subset(&vi));
    assert_eq!(train, test.subset(&ti));
}

//! Dataset formats on small synthetic fixtures: MNIST IDX (raw, gzip, dot names), CIFAR-10
//! binary batches (directory, nested, tar.gz), image folders (directory, tar, tar.gz, tgz), and
//! the errors for broken inputs.

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use image::{GrayImage, ImageBuffer, Rgb, RgbImage, Rgba};
use shrink_io::data::{self, DataError, Dataset, Split};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// helpers

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The error of a load that must fail; checks that its message is one line naming `needle`.
fn load_err(path: &Path, split: Split, needle: &str) -> DataError {
    let err = data::load(path, split).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    assert!(msg.contains(needle), "message `{msg}` does not mention `{needle}`");
    err
}

fn pixel(i: usize, y: usize, x: usize) -> u8 {
    ((i * 31 + y * 7 + x * 3) % 256) as u8
}

fn idx_images(n: usize, h: usize, w: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, h, w] {
        v.extend_from_slice(&(d as u32).to_be_bytes());
    }
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                v.push(pixel(i, y, x));
            }
        }
    }
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

const TRAIN_LABELS: [u8; 5] = [3, 1, 4, 1, 5];
const TEST_LABELS: [u8; 3] = [9, 2, 6];

/// A tiny MNIST directory: 5 train and 3 test images of 4x3.
fn mnist_dir(dir: &Path, gzip: bool, dot: bool) {
    let sep = if dot { '.' } else { '-' };
    let files = [
        (format!("train-images{sep}idx3-ubyte"), idx_images(5, 4, 3)),
        (format!("train-labels{sep}idx1-ubyte"), idx_labels(&TRAIN_LABELS)),
        (format!("t10k-images{sep}idx3-ubyte"), idx_images(3, 4, 3)),
        (format!("t10k-labels{sep}idx1-ubyte"), idx_labels(&TEST_LABELS)),
    ];
    for (name, bytes) in files {
        if gzip {
            write(&dir.join(format!("{name}.gz")), &gz(&bytes));
        } else {
            write(&dir.join(name), &bytes);
        }
    }
}

fn check_mnist(ds: &Dataset, n: usize, labels: &[u8]) {
    assert_eq!(ds.len(), n);
    assert_eq!(ds.image_shape(), [1, 4, 3]);
    assert_eq!(ds.labels, labels.iter().map(|&l| l as u32).collect::<Vec<_>>());
    assert_eq!(ds.classes, (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    for i in 0..n {
        for y in 0..4 {
            for x in 0..3 {
                assert_eq!(ds.image(i)[y * 3 + x], pixel(i, y, x));
            }
        }
    }
}

/// Packs `dir` into a tar (gzipped or not), with every path under `top` (if given).
fn tar_dir(dir: &Path, top: Option<&str>, gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(top.unwrap_or("."), dir).unwrap();
    let bytes = b.into_inner().unwrap();
    if gzip {
        gz(&bytes)
    } else {
        bytes
    }
}

// ---------------------------------------------------------------------------------------------
// MNIST IDX

#[test]
fn idx_raw_gz_and_dot_names_load() {
    for (gzip, dot) in [(false, false), (true, false), (false, true), (true, true)] {
        let tmp = TempDir::new().unwrap();
        mnist_dir(tmp.path(), gzip, dot);
        check_mnist(&data::load(tmp.path(), Split::Train).unwrap(), 5, &TRAIN_LABELS);
        check_mnist(&data::load(tmp.path(), Split::Test).unwrap(), 3, &TEST_LABELS);
    }
}

#[test]
fn idx_in_a_subdirectory_and_in_a_tar_gz() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(&tmp.path().join("src/MNIST/raw"), true, false);
    let direct = data::load(&tmp.path().join("src"), Split::Train).unwrap();
    check_mnist(&direct, 5, &TRAIN_LABELS);
    let archive = tmp.path().join("mnist.tar.gz");
    write(&archive, &tar_dir(&tmp.path().join("src"), None, true));
    check_mnist(&data::load(&archive, Split::Test).unwrap(), 3, &TEST_LABELS);
}

#[test]
fn idx_truncated_raw_file_names_the_file() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), false, false);
    let f = tmp.path().join("train-images-idx3-ubyte");
    let bytes = idx_images(5, 4, 3);
    write(&f, &bytes[..bytes.len() - 7]);
    let err = load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte");
    assert!(matches!(err, DataError::IdxTruncated { expected: 76, actual: 69, .. }), "{err}");
    assert!(err.to_string().contains("5 images of 4x3"), "{err}");
    // The other split is unaffected.
    assert!(data::load(tmp.path(), Split::Test).is_ok());
}

#[test]
fn idx_truncated_gz_names_the_file() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), true, false);
    let f = tmp.path().join("t10k-images-idx3-ubyte.gz");
    // A complete gzip stream of a short payload.
    let bytes = idx_images(3, 4, 3);
    write(&f, &gz(&bytes[..30]));
    let err = load_err(tmp.path(), Split::Test, "t10k-images-idx3-ubyte.gz");
    assert!(matches!(err, DataError::IdxTruncated { .. }), "{err}");
    // A cut gzip stream.
    let z = gz(&bytes);
    write(&f, &z[..z.len() - 12]);
    load_err(tmp.path(), Split::Test, "t10k-images-idx3-ubyte.gz");
    // Garbage after the gzip magic.
    let mut bad = z.clone();
    for b in bad.iter_mut().skip(10).take(8) {
        *b ^= 0x5a;
    }
    write(&f, &bad);
    load_err(tmp.path(), Split::Test, "t10k-images-idx3-ubyte.gz");
}

#[test]
fn idx_trailing_data_is_an_error() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), false, false);
    let mut bytes = idx_labels(&TRAIN_LABELS);
    bytes.push(0);
    write(&tmp.path().join("train-labels-idx1-ubyte"), &bytes);
    let err = load_err(tmp.path(), Split::Train, "train-labels-idx1-ubyte");
    assert!(matches!(err, DataError::IdxTrailingData { .. }), "{err}");
}

#[test]
fn idx_bad_magic_names_the_file() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), true, false);
    // Labels where images should be.
    write(&tmp.path().join("train-images-idx3-ubyte.gz"), &gz(&idx_labels(&TRAIN_LABELS)));
    let err = load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte.gz");
    assert!(matches!(err, DataError::BadMagic { found: 0x801, expected: 0x803, .. }), "{err}");
    assert!(err.to_string().contains("magic"));
}

#[test]
fn idx_count_mismatch_names_both_files() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), false, false);
    write(&tmp.path().join("train-labels-idx1-ubyte"), &idx_labels(&[1, 2, 3]));
    let err = load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte");
    assert!(err.to_string().contains("train-labels-idx1-ubyte"), "{err}");
    assert!(matches!(err, DataError::CountMismatch { images: 5, labels: 3, .. }), "{err}");
}

#[test]
fn idx_huge_header_in_tiny_file_is_an_error_not_an_allocation() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), false, false);
    // 10^12 images of 1x1, in a 20-byte file (raw and gzipped).
    let mut huge = vec![0, 0, 8, 3];
    for d in [1_000_000_000_000u64 / 1000, 100, 10] {
        huge.extend_from_slice(&(d as u32).to_be_bytes());
    }
    huge.extend_from_slice(&[1, 2, 3, 4]);
    let f = tmp.path().join("train-images-idx3-ubyte");
    write(&f, &huge);
    let err = load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte");
    assert!(matches!(err, DataError::IdxTruncated { actual: 20, .. }), "{err}");
    fs::remove_file(&f).unwrap();
    write(&tmp.path().join("train-images-idx3-ubyte.gz"), &gz(&huge));
    let err = load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte.gz");
    assert!(matches!(err, DataError::IdxTruncated { .. }), "{err}");
    // Dimensions whose product does not fit in 64 bits.
    let mut overflow = vec![0, 0, 8, 3];
    overflow.extend_from_slice(&[0xff; 12]);
    write(&tmp.path().join("train-images-idx3-ubyte.gz"), &gz(&overflow));
    load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte.gz");
    // A header cut short.
    write(&tmp.path().join("train-images-idx3-ubyte.gz"), &gz(&[0, 0, 8, 3, 0]));
    load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte.gz");
    write(&tmp.path().join("train-images-idx3-ubyte.gz"), &[]);
    load_err(tmp.path(), Split::Train, "train-images-idx3-ubyte.gz");
}

#[test]
fn idx_missing_split_files_are_listed() {
    let tmp = TempDir::new().unwrap();
    mnist_dir(tmp.path(), false, false);
    fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let err = load_err(tmp.path(), Split::Test, "t10k-labels-idx1-ubyte[.gz]");
    assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// generic errors

#[test]
fn missing_path_is_reported() {
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join("nope");
    let err = load_err(&p, Split::Train, "does not exist");
    assert_eq!(err.to_string(), format!("data path `{}` does not exist", p.display()));
}

#[test]
fn unrecognized_directory_lists_what_was_looked_for() {
    let tmp = TempDir::new().unwrap();
    write(&tmp.path().join("a/readme.txt"), b"hi");
    write(&tmp.path().join("b/readme.txt"), b"hi");
    let err = load_err(tmp.path(), Split::Train, "no dataset found");
    let msg = err.to_string();
    for needle in ["train-images-idx3-ubyte", "data_batch_1.bin", "train/<class>"] {
        assert!(msg.contains(needle), "{msg}");
    }
    let empty = TempDir::new().unwrap();
    load_err(empty.path(), Split::Test, "no dataset found");
    // A file that is no dataset.
    let f = tmp.path().join("notes.txt");
    write(&f, b"hello");
    load_err(&f, Split::Train, "notes.txt");
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10 binary

fn cifar_record(k: usize, label: u8) -> Vec<u8> {
    let mut r = vec![label];
    r.extend((0..3072).map(|j| ((k * 13 + j) % 251) as u8));
    r
}

/// `batches` train files of 2 records each, a test file of 3; returns the labels by split.
fn cifar_dir(dir: &Path, batches: usize, meta: bool) -> (Vec<u32>, Vec<u32>) {
    let mut train = Vec::new();
    let mut k = 0;
    for b in 1..=batches {
        let mut bytes = Vec::new();
        for _ in 0..2 {
            let label = (k * 3 % 10) as u8;
            bytes.extend(cifar_record(k, label));
            train.push(label as u32);
            k += 1;
        }
        write(&dir.join(format!("data_batch_{b}.bin")), &bytes);
    }
    let mut bytes = Vec::new();
    let mut test = Vec::new();
    for t in 0..3 {
        bytes.extend(cifar_record(100 + t, (9 - t) as u8));
        test.push((9 - t) as u32);
    }
    write(&dir.join("test_batch.bin"), &bytes);
    if meta {
        let names = "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n\n";
        write(&dir.join("batches.meta.txt"), names.as_bytes());
    }
    (train, test)
}

fn check_cifar(ds: &Dataset, labels: &[u32], first_k: usize) {
    assert_eq!(ds.len(), labels.len());
    assert_eq!(ds.image_shape(), [3, 32, 32]);
    assert_eq!(ds.labels, labels);
    for i in 0..ds.len() {
        assert_eq!(ds.image(i), &cifar_record(first_k + i, 0)[1..]);
    }
}

#[test]
fn cifar_binary_loads_from_dir_nested_dir_and_tar_gz() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("cifar");
    let (train, test) = cifar_dir(&root.join("cifar-10-batches-bin"), 5, true);
    let ds = data::load(&root, Split::Train).unwrap();
    check_cifar(&ds, &train, 0);
    assert_eq!(ds.classes[0], "zero");
    assert_eq!(ds.classes.len(), 10);
    check_cifar(&data::load(&root, Split::Test).unwrap(), &test, 100);

    let archive = tmp.path().join("cifar-10-binary.tar.gz");
    write(&archive, &tar_dir(&root, None, true));
    let from_tar = data::load(&archive, Split::Train).unwrap();
    assert_eq!(from_tar.images, ds.images);
    assert_eq!(from_tar.labels, ds.labels);
    assert_eq!(from_tar.classes, ds.classes);
    check_cifar(&data::load(&archive, Split::Test).unwrap(), &test, 100);
}

#[test]
fn cifar_binary_without_meta_uses_the_standard_names() {
    let tmp = TempDir::new().unwrap();
    let (_, test) = cifar_dir(tmp.path(), 2, false);
    let ds = data::load(tmp.path(), Split::Test).unwrap();
    check_cifar(&ds, &test, 100);
    assert_eq!(ds.classes, data::CIFAR10_CLASSES.map(String::from).to_vec());
    assert_eq!(data::load(tmp.path(), Split::Train).unwrap().len(), 4);
}

#[test]
fn cifar_truncated_batch_names_the_file() {
    let tmp = TempDir::new().unwrap();
    cifar_dir(tmp.path(), 5, false);
    let f = tmp.path().join("data_batch_3.bin");
    let bytes = fs::read(&f).unwrap();
    write(&f, &bytes[..bytes.len() - 100]);
    let err = load_err(tmp.path(), Split::Train, "data_batch_3.bin");
    assert!(matches!(err, DataError::CifarTruncated { record: 3073, .. }), "{err}");
    assert!(err.to_string().contains("3073"));
    write(&tmp.path().join("test_batch.bin"), &[]);
    load_err(tmp.path(), Split::Test, "test_batch.bin");
}

#[test]
fn cifar_gap_and_bad_label_are_errors() {
    let tmp = TempDir::new().unwrap();
    cifar_dir(tmp.path(), 4, false);
    fs::remove_file(tmp.path().join("data_batch_2.bin")).unwrap();
    load_err(tmp.path(), Split::Train, "data_batch_2.bin");
    write(&tmp.path().join("test_batch.bin"), &cifar_record(0, 12));
    let err = load_err(tmp.path(), Split::Test, "test_batch.bin");
    assert!(matches!(err, DataError::LabelOutOfRange { label: 12, .. }), "{err}");
    fs::remove_file(tmp.path().join("test_batch.bin")).unwrap();
    let err = load_err(tmp.path(), Split::Test, "test_batch.bin");
    assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// image folders

/// RGB value of pixel (x, y) of image `i`.
fn rgb(i: usize, x: u32, y: u32) -> [u8; 3] {
    [(i as u32 * 40 + x * 10) as u8, (y * 20) as u8, (i as u32 * 7 + x + y) as u8]
}

fn rgb_png(i: usize, w: u32, h: u32) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| Rgb(rgb(i, x, y)))
}

/// train: cat (2), dog (1), ant (2); test: dog (1), ant (1), bird (1). Images 5 wide, 4 high.
/// Returns the (split, class, file, image index) layout.
fn png_folder(root: &Path) -> Vec<(&'static str, &'static str, String, usize)> {
    let layout = [
        ("train", "cat", 2),
        ("train", "dog", 1),
        ("train", "ant", 2),
        ("test", "dog", 1),
        ("test", "ant", 1),
        ("test", "bird", 1),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    for (split, class, n) in layout {
        for k in 0..n {
            let name = format!("img{k}.png");
            let path = root.join(split).join(class).join(&name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            rgb_png(i, 5, 4).save(&path).unwrap();
            out.push((split, class, name, i));
            i += 1;
        }
    }
    // Things that must be ignored.
    write(&root.join("train/cat/.DS_Store"), b"junk");
    write(&root.join("train/cat/._img0.png"), b"junk");
    write(&root.join("train/cat/notes.txt"), b"junk");
    write(&root.join("README"), b"junk");
    out
}

fn check_png_folder(ds: &Dataset, split: &str, layout: &[(&str, &str, String, usize)]) {
    let classes = ["ant", "bird", "cat", "dog"];
    assert_eq!(ds.classes, classes);
    assert_eq!(ds.image_shape(), [3, 4, 5]);
    let mut expected: Vec<_> = layout.iter().filter(|e| e.0 == split).collect();
    expected.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
    assert_eq!(ds.len(), expected.len());
    for (k, (_, class, _, i)) in expected.iter().enumerate() {
        assert_eq!(ds.classes[ds.labels[k] as usize], *class);
        let img = ds.image(k);
        for y in 0..4u32 {
            for x in 0..5u32 {
                for c in 0..3 {
                    let at = c * 20 + (y * 5 + x) as usize;
                    assert_eq!(img[at], rgb(*i, x, y)[c], "image {k} ({class}) c{c} y{y} x{x}");
                }
            }
        }
    }
}

#[test]
fn image_folder_loads_from_dir_tar_tar_gz_and_tgz() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("pets");
    let layout = png_folder(&root);
    for split in [Split::Train, Split::Test] {
        let ds = data::load(&root, split).unwrap();
        check_png_folder(&ds, &split.to_string(), &layout);
    }
    let archives: [(&str, Option<&str>, bool); 4] = [
        ("pets.tar", Some("pets"), false),
        ("pets.tar.gz", None, true),
        ("pets.tgz", Some("pets-v1"), true),
        ("pets-plain.tar", None, false),
    ];
    for (name, top, gzip) in archives {
        let archive = tmp.path().join(name);
        write(&archive, &tar_dir(&root, top, gzip));
        for split in [Split::Train, Split::Test] {
            let ds = data::load(&archive, split).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_png_folder(&ds, &split.to_string(), &layout);
            assert!(ds.source.contains(name));
        }
    }
}

#[test]
fn image_folder_uses_val_when_there_is_no_test() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    rgb_png(0, 3, 3).save(root.join("x.png")).unwrap();
    for (split, class) in [("train", "a"), ("train", "b"), ("val", "b")] {
        fs::create_dir_all(root.join(split).join(class)).unwrap();
        fs::copy(root.join("x.png"), root.join(split).join(class).join("1.png")).unwrap();
    }
    let val = data::load(root, Split::Test).unwrap();
    assert_eq!(val.classes, ["a", "b"]);
    assert_eq!(val.labels, [1]);
    fs::remove_dir_all(root.join("val")).unwrap();
    let err = load_err(root, Split::Test, "test");
    assert!(matches!(err, DataError::MissingSplit { .. }), "{err}");
}

#[test]
fn image_folder_channels_gray_rgba_and_mixed() {
    let tmp = TempDir::new().unwrap();
    let gray = tmp.path().join("gray");
    let g: GrayImage = ImageBuffer::from_fn(3, 2, |x, y| image::Luma([(x * 50 + y) as u8]));
    for c in ["a", "b"] {
        fs::create_dir_all(gray.join("train").join(c)).unwrap();
        g.save(gray.join("train").join(c).join("0.png")).unwrap();
    }
    let ds = data::load(&gray, Split::Train).unwrap();
    assert_eq!(ds.image_shape(), [1, 2, 3]);
    assert_eq!(ds.image(1), &[0, 50, 100, 1, 51, 101]);

    // RGBA: alpha is dropped.
    let rgba = tmp.path().join("rgba");
    let im: ImageBuffer<Rgba<u8>, _> = ImageBuffer::from_fn(2, 1, |x, _| Rgba([x as u8 + 1, 7, 9, 128]));
    fs::create_dir_all(rgba.join("test/z")).unwrap();
    im.save(rgba.join("test/z/0.png")).unwrap();
    let ds = data::load(&rgba, Split::Test).unwrap();
    assert_eq!(ds.image_shape(), [3, 1, 2]);
    assert_eq!(ds.image(0), &[1, 2, 7, 7, 9, 9]);

    // Gray mixed with colour: gray is replicated into three channels.
    let g2: GrayImage = ImageBuffer::from_fn(2, 1, |x, _| image::Luma([x as u8 + 100]));
    g2.save(rgba.join("test/z/1.png")).unwrap();
    let ds = data::load(&rgba, Split::Test).unwrap();
    assert_eq!(ds.image_shape(), [3, 1, 2]);
    assert_eq!(ds.image(1), &[100, 101, 100, 101, 100, 101]);
}

#[test]
fn image_folder_reads_jpeg() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("train/flat");
    fs::create_dir_all(&dir).unwrap();
    let im: RgbImage = ImageBuffer::from_pixel(16, 8, Rgb([200, 100, 50]));
    im.save(dir.join("a.jpg")).unwrap();
    im.save(dir.join("b.JPEG")).unwrap();
    let ds = data::load(tmp.path(), Split::Train).unwrap();
    assert_eq!(ds.image_shape(), [3, 8, 16]);
    assert_eq!(ds.len(), 2);
    for (c, want) in [200i32, 100, 50].iter().enumerate() {
        let v = ds.image(0)[c * 128 + 40] as i32;
        assert!((v - want).abs() <= 3, "channel {c}: {v} vs {want}");
    }
}

#[test]
fn image_of_wrong_size_names_the_file_and_both_sizes() {
    let tmp = TempDir::new().unwrap();
    let layout = png_folder(tmp.path());
    assert!(!layout.is_empty());
    rgb_png(0, 6, 4).save(tmp.path().join("train/dog/odd.png")).unwrap();
    let err = load_err(tmp.path(), Split::Train, "odd.png");
    let msg = err.to_string();
    assert!(msg.contains("6x4") && msg.contains("5x4"), "{msg}");
    assert!(msg.contains("ant"), "the first image is named: {msg}");
    // The same in an archive.
    let archive = tmp.path().join("x.tar.gz");
    let src = tmp.path().to_path_buf();
    let bytes = tar_dir(&src, Some("top"), true);
    write(&archive, &bytes);
    load_err(&archive, Split::Train, "odd.png");
}

#[test]
fn undecodable_image_names_the_file() {
    let tmp = TempDir::new().unwrap();
    png_folder(tmp.path());
    write(&tmp.path().join("test/bird/broken.png"), b"\x89PNG\r\n\x1a\nthis is not a png");
    let err = load_err(tmp.path(), Split::Test, "broken.png");
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
    write(&tmp.path().join("test/bird/broken.png"), b"not an image at all");
    load_err(tmp.path(), Split::Test, "broken.png");
}

#[test]
fn empty_folders_are_errors() {
    let tmp = TempDir::new().unwrap();
    fs::create_dir_all(tmp.path().join("train")).unwrap();
    let err = load_err(tmp.path(), Split::Train, "train");
    assert!(matches!(err, DataError::NoClasses { .. }), "{err}");
    fs::create_dir_all(tmp.path().join("train/a")).unwrap();
    write(&tmp.path().join("train/a/readme.txt"), b"x");
    let err = load_err(tmp.path(), Split::Train, "train");
    assert!(matches!(err, DataError::NoImages { .. }), "{err}");
}

#[test]
fn truncated_and_corrupt_archives_name_the_archive() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("pets");
    png_folder(&root);
    let tar = tar_dir(&root, None, false);
    let targz = gz(&tar);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut-in-member.tar", tar[..tar.len() / 2 + 100].to_vec()),
        ("cut-in-header.tar", tar[..1024 + 300].to_vec()),
        ("cut.tar.gz", targz[..targz.len() / 2].to_vec()),
        ("cut-trailer.tar.gz", targz[..targz.len() - 4].to_vec()),
        ("corrupt.tar.gz", {
            let mut b = targz.clone();
            let mid = b.len() / 2;
            for x in &mut b[mid..mid + 16] {
                *x ^= 0xa5;
            }
            b
        }),
        ("corrupt-header.tar", {
            let mut b = tar.clone();
            b[100] ^= 0xff; // inside the first header: checksum mismatch
            b
        }),
        ("empty.tar.gz", gz(&[])),
        ("garbage.tgz", b"\x1f\x8bnot gzip at all".to_vec()),
    ];
    for (name, bytes) in cases {
        let p = tmp.path().join(name);
        write(&p, &bytes);
        let errs = [data::load(&p, Split::Train), data::load(&p, Split::Test)];
        // At least the split stored in the damaged part must fail; every failure names the archive.
        assert!(errs.iter().any(|r| r.is_err()), "{name} loaded");
        for e in errs.into_iter().filter_map(Result::err) {
            let msg = e.to_string();
            assert!(msg.contains(name) && !msg.contains('\n'), "{name}: {msg}");
        }
    }
}

#[test]
fn archive_members_with_dot_slash_and_missing_dir_entries() {
    // Paths written as `./train/c/x.png` (GNU tar -C dir .), with no directory entries.
    let tmp = TempDir::new().unwrap();
    let mut png = Vec::new();
    rgb_png(3, 2, 2).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for path in ["./train/b/1.png", "./train/a/2.png", "./test/a/3.png"] {
        let mut h = tar::Header::new_gnu();
        h.set_size(png.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, path, &png[..]).unwrap();
    }
    let p = tmp.path().join("dots.tar");
    write(&p, &b.into_inner().unwrap());
    let ds = data::load(&p, Split::Train).unwrap();
    assert_eq!(ds.classes, ["a", "b"]);
    assert_eq!(ds.labels, [0, 1]);
    assert_eq!(ds.image_shape(), [3, 2, 2]);
}

#[test]
fn split_names_parse() {
    assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
    assert_eq!("TEST".parse::<Split>().unwrap(), Split::Test);
    assert!("dev".parse::<Split>().is_err());
}

// ---------------------------------------------------------------------------------------------
// robustness: damaged inputs give errors, never panics

/// A tar of an image folder (PNG and JPEG) plus MNIST and CIFAR files.
fn mixed_tar() -> Vec<u8> {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("all");
    png_folder(&root);
    let jpg: RgbImage = ImageBuffer::from_fn(5, 4, |x, y| Rgb([x as u8 * 40, y as u8 * 50, 9]));
    jpg.save(root.join("test/bird/zz.jpg")).unwrap();
    mnist_dir(&root.join("mnist"), true, false);
    cifar_dir(&root.join("cifar"), 1, true);
    tar_dir(&root, None, false)
}

/// Applies byte flips (at fractions of the length) and, when `cut < 0.3`, a truncation.
fn damage(mut bytes: Vec<u8>, flips: &[(f64, u8)], cut: f64) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    for (at, x) in flips {
        let i = (at * bytes.len() as f64) as usize % bytes.len();
        bytes[i] ^= x;
    }
    if cut < 0.3 {
        let n = (cut / 0.3 * bytes.len() as f64) as usize;
        bytes.truncate(n);
    }
    bytes
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_archives_and_files_never_panic(
        flips in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 0..6),
        cut in 0.0f64..1.0,
        gzip: bool,
    ) {
        use std::sync::OnceLock;
        static TAR: OnceLock<Vec<u8>> = OnceLock::new();
        let tar = TAR.get_or_init(mixed_tar);
        let bytes = damage(if gzip { gz(tar) } else { tar.clone() }, &flips, cut);
        let tmp = TempDir::new().unwrap();
        let archive = tmp.path().join("x.tar.gz");
        write(&archive, &bytes);
        for split in [Split::Train, Split::Test] {
            if let Err(e) = data::load(&archive, split) {
                proptest::prop_assert!(!e.to_string().contains('\n'));
            }
        }
        // Damaged loose files: gzipped IDX images, raw IDX labels, a CIFAR batch.
        let dir = tmp.path().join("files");
        mnist_dir(&dir, false, false);
        write(&dir.join("train-images-idx3-ubyte"), &damage(idx_images(5, 4, 3), &flips, cut));
        write(&dir.join("t10k-labels-idx1-ubyte"), &damage(idx_labels(&TEST_LABELS), &flips, cut));
        let gz_images = damage(gz(&idx_images(3, 4, 3)), &flips, cut);
        fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        write(&dir.join("t10k-images-idx3-ubyte.gz"), &gz_images);
        for split in [Split::Train, Split::Test] {
            if let Err(e) = data::load(&dir, split) {
                proptest::prop_assert!(!e.to_string().contains('\n'));
            }
        }
        let cifar = tmp.path().join("cifar");
        cifar_dir(&cifar, 1, false);
        let batch = fs::read(cifar.join("test_batch.bin")).unwrap();
        write(&cifar.join("test_batch.bin"), &damage(batch, &flips, cut));
        let _ = data::load(&cifar, Split::Test);
    }
}

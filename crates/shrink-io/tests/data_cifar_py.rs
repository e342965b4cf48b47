//! CIFAR-10 python batches (`cifar-10-batches-py/`, what torchvision downloads) read without
//! executing pickle code, on the 20-image fixtures of `tools/cifar_pickle_fixture.py` (a
//! Python 3 `pickle.dump(protocol=2)` train batch and a test batch in the Python 2 cPickle
//! layout of the real files); and CINIC-10's image-folder layout (train/valid/test).

use std::fs;
use std::path::{Path, PathBuf};

use image::{ImageBuffer, Rgb};
use shrink_io::data::{self, Dataset, Split};
use tempfile::TempDir;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cifar-py")
}

/// What the fixture script wrote: byte j of image i is (31·i + 7·j + 3·split) mod 256, label
/// i is (3·i + split) mod 10.
fn check(ds: &Dataset, split: usize) {
    assert_eq!(ds.len(), 20);
    assert_eq!(ds.image_shape(), [3, 32, 32]);
    assert_eq!(ds.classes.len(), 10);
    assert_eq!(ds.classes[0], "airplane");
    for i in 0..20 {
        assert_eq!(ds.labels[i] as usize, (3 * i + split) % 10, "label {i}");
        let img = ds.image(i);
        for j in [0, 1, 1023, 1024, 2047, 3071] {
            assert_eq!(img[j] as usize, (31 * i + 7 * j + 3 * split) % 256, "image {i} byte {j}");
        }
    }
}

fn load_err(path: &Path, split: Split, needles: &[&str]) -> String {
    let msg = data::load(path, split).unwrap_err().to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    for n in needles {
        assert!(msg.contains(n), "`{msg}` does not mention `{n}`");
    }
    msg
}

#[test]
fn python3_and_python2_pickles_load_from_the_root_the_dir_and_a_file() {
    let root = fixture();
    let dir = root.join("cifar-10-batches-py");
    for path in [root.clone(), dir.clone(), dir.join("data_batch_1")] {
        check(&data::load(&path, Split::Train).unwrap(), 0);
        check(&data::load(&path, Split::Test).unwrap(), 1);
    }
}

#[test]
fn python_batches_load_from_a_tar_gz() {
    let tmp = TempDir::new().unwrap();
    let archive = tmp.path().join("cifar-10-python.tar.gz");
    let f = fs::File::create(&archive).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-py", fixture().join("cifar-10-batches-py")).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    check(&data::load(&archive, Split::Train).unwrap(), 0);
    check(&data::load(&archive, Split::Test).unwrap(), 1);
}

/// A copy of the fixture directory with `test_batch` replaced by `bytes`.
fn with_test_batch(bytes: &[u8]) -> TempDir {
    let tmp = TempDir::new().unwrap();
    let src = fixture().join("cifar-10-batches-py/data_batch_1");
    fs::copy(src, tmp.path().join("data_batch_1")).unwrap();
    fs::write(tmp.path().join("test_batch"), bytes).unwrap();
    tmp
}

#[test]
fn truncated_and_corrupt_batches_are_one_line_errors_naming_the_file() {
    let good = fs::read(fixture().join("cifar-10-batches-py/test_batch")).unwrap();
    // Every prefix (in steps, the payload is 61 KB) is an error, never a panic.
    for n in (0..good.len()).step_by(97).chain([good.len() - 1, good.len() - 2]) {
        let tmp = with_test_batch(&good[..n]);
        load_err(tmp.path(), Split::Test, &["test_batch", "CIFAR python batch"]);
    }
    // Trailing bytes after STOP.
    let mut long = good.clone();
    long.push(0);
    let tmp = with_test_batch(&long);
    load_err(tmp.path(), Split::Test, &["test_batch", "after STOP"]);
    // Every single-byte change of the opcode stream is an error or the same kind of dataset.
    for at in (0..300).chain(good.len() - 300..good.len()) {
        let mut b = good.clone();
        b[at] ^= 0x5a;
        let tmp = with_test_batch(&b);
        if let Err(e) = data::load(tmp.path(), Split::Test) {
            assert!(!e.to_string().contains('\n'));
        }
    }
}

#[test]
fn pickles_that_would_run_code_or_are_not_a_cifar_dict_are_refused() {
    // `os.system('echo pwned')`, protocol 2.
    let evil = b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
    let tmp = with_test_batch(evil);
    load_err(tmp.path(), Split::Test, &["test_batch", "global `os.system`"]);
    // Protocol 4 and 5 streams, a list, a dict without `data`.
    for (bytes, needle) in [
        (&b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94."[..], "protocol 4"),
        (&b"\x80\x02]q\x00."[..], "not a dict"),
        (&b"\x80\x02}q\x00(U\x06labelsq\x01]q\x02u."[..], "no `data`"),
    ] {
        let tmp = with_test_batch(bytes);
        load_err(tmp.path(), Split::Test, &["test_batch", needle]);
    }
    // A label out of range: change the first label's BININT1 (K) argument to 10. The labels
    // list follows `U\x06labels` + BINPUT + EMPTY_LIST + BINPUT + MARK.
    let good = fs::read(fixture().join("cifar-10-batches-py/test_batch")).unwrap();
    let at = good.windows(8).position(|w| w == b"U\x06labels").unwrap() + 8 + 2 + 1 + 2 + 1;
    assert_eq!(good[at], b'K');
    let mut b = good.clone();
    b[at + 1] = 10;
    let tmp = with_test_batch(&b);
    load_err(tmp.path(), Split::Test, &["test_batch", "label 0"]);
}

#[test]
fn cinic10_image_folder_layout_loads_train_and_test_and_ignores_valid() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("CINIC-10");
    let classes = ["airplane", "automobile", "bird"];
    // train: 2 per class, valid: 1 per class, test: 1 per class (shade = split·10 + class·3 + k).
    for (s, split, n) in [(0u8, "train", 2), (1, "valid", 1), (2, "test", 1)] {
        for (c, class) in classes.iter().enumerate() {
            for k in 0..n {
                let shade = s * 10 + c as u8 * 3 + k as u8;
                let img = ImageBuffer::from_pixel(32, 32, Rgb([shade, 0, 255 - shade]));
                let path = root.join(split).join(class).join(format!("cifar10-{split}-{k}.png"));
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                img.save(&path).unwrap();
            }
        }
    }
    let train = data::load(&root, Split::Train).unwrap();
    assert_eq!(train.classes, classes);
    assert_eq!((train.len(), train.image_shape()), (6, [3, 32, 32]));
    assert_eq!(train.labels, [0, 0, 1, 1, 2, 2]);
    assert_eq!(train.image(3)[0], 3 + 1, "train/automobile/…-1.png, red plane");
    let test = data::load(&root, Split::Test).unwrap();
    assert_eq!(test.len(), 3, "test/, not valid/");
    assert_eq!(test.labels, [0, 1, 2]);
    assert_eq!(test.image(2)[0], 20 + 6);
    assert_eq!(test.image(2)[1024], 0, "green plane");
}

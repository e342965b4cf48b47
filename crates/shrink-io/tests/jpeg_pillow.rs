//! shrink's JPEG decoder against Pillow (libjpeg-turbo, what torchvision reads with): the
//! fixtures written by `tools/jpeg_golden.py` must decode to exactly Pillow's bytes; truncated,
//! corrupted and unsupported files must give a one-line error, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use shrink_io::data::jpeg::{self, JpegError};
use shrink_io::data::{self, Split};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg")
}

/// A fixture: its name, Pillow's size and channels, the JPEG bytes and Pillow's pixels.
struct Case {
    name: String,
    width: u32,
    height: u32,
    channels: usize,
    jpeg: Vec<u8>,
    pixels: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let list = fs::read_to_string(fixtures().join("cases.txt")).expect("cases.txt");
    let mut out = Vec::new();
    for line in list.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let name = f[0].to_string();
        out.push(Case {
            width: f[1].parse().unwrap(),
            height: f[2].parse().unwrap(),
            channels: f[3].parse().unwrap(),
            jpeg: fs::read(fixtures().join(format!("{name}.jpg"))).unwrap(),
            pixels: fs::read(fixtures().join(format!("{name}.pixels"))).unwrap(),
            name,
        });
    }
    out
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no fixture {name}"))
}

/// Decodes every case whose name starts with `prefix` (at least one) and compares with Pillow.
fn check(prefix: &str) {
    let selected: Vec<Case> = cases().into_iter().filter(|c| c.name.starts_with(prefix)).collect();
    assert!(!selected.is_empty(), "no fixtures start with {prefix}");
    let mut failures = Vec::new();
    for c in &selected {
        match jpeg::decode(&c.jpeg) {
            Err(e) => failures.push(format!("{}: {e}", c.name)),
            Ok((w, h, ch, _)) if (w, h, ch) != (c.width, c.height, c.channels) => failures
                .push(format!("{}: {w}x{h}x{ch}, Pillow {}x{}x{}", c.name, c.width, c.height, c.channels)),
            Ok((_, _, _, px)) => {
                let diff = px.iter().zip(&c.pixels).filter(|(a, b)| a != b).count();
                let max =
                    px.iter().zip(&c.pixels).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap_or(0);
                if diff > 0 || px.len() != c.pixels.len() {
                    failures.push(format!("{}: {diff} of {} bytes differ (max {max})", c.name, px.len()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "differences from Pillow:\n{}", failures.join("\n"));
}

#[test]
fn cifar_like_420_matches_pillow() {
    check("cifar_");
}

#[test]
fn subsamplings_qualities_and_odd_sizes_match_pillow() {
    check("q");
}

#[test]
fn tiny_images_match_pillow() {
    check("tiny_");
}

/// 4:4:0 (vertical-only triangle filter) and 4:1:1 (replication by 4).
#[test]
fn other_sampling_factors_match_pillow() {
    check("sampling_");
}

#[test]
fn grayscale_matches_pillow() {
    check("gray_");
}

#[test]
fn restart_markers_match_pillow() {
    check("restart_");
}

#[test]
fn optimized_tables_match_pillow() {
    check("optimized_");
}

#[test]
fn adobe_rgb_without_transform_matches_pillow() {
    check("adobe_rgb_");
}

#[test]
fn extreme_coefficients_match_pillow() {
    check("noise_");
}

#[test]
fn progressive_matches_pillow() {
    check("progressive_");
}

/// The dataset loader decodes JPEGs with this decoder: an image folder of a fixture loads as
/// Pillow's pixels, planar (CHW).
#[test]
fn image_folder_loads_pillow_pixels() {
    let c = case("cifar_q75_420_32x32");
    let dir = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        let class = dir.path().join(split).join("cat");
        fs::create_dir_all(&class).unwrap();
        fs::write(class.join("0.jpg"), &c.jpeg).unwrap();
    }
    let ds = data::load(dir.path(), Split::Test).unwrap();
    assert_eq!(ds.image_shape(), [3, 32, 32]);
    let plane = 32 * 32;
    for (i, px) in c.pixels.chunks_exact(3).enumerate() {
        for (ch, &want) in px.iter().enumerate() {
            assert_eq!(ds.images[ch * plane + i], want, "pixel {i} channel {ch}");
        }
    }
}

/// A message is one line and says what kind of failure it is.
fn assert_one_line(e: &JpegError) {
    let msg = e.to_string();
    assert!(!msg.contains('\n') && msg.contains("JPEG"), "{msg}");
}

/// Every prefix of a file either fails or, when only bytes after the last needed bit are cut
/// (the EOI marker), decodes to the same pixels; cutting into the coded data fails.
#[test]
fn truncated_files_fail_cleanly() {
    for name in ["cifar_q75_420_32x32", "restart_blocks_420_40x24", "progressive_420_32x32", "gray_q85_19x11"]
    {
        let c = case(name);
        for len in 0..c.jpeg.len() {
            match jpeg::decode(&c.jpeg[..len]) {
                Err(e) => assert_one_line(&e),
                Ok((_, _, _, px)) => {
                    assert_eq!(px, c.pixels, "{name} cut to {len} bytes decodes to other pixels");
                    assert!(len + 4 >= c.jpeg.len(), "{name} cut to {len} of {} bytes decodes", c.jpeg.len());
                }
            }
        }
    }
}

#[test]
fn not_a_jpeg_fails_cleanly() {
    for bytes in [&b""[..], b"\xff", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xd9"] {
        let e = jpeg::decode(bytes).unwrap_err();
        assert_one_line(&e);
    }
}

/// Replaces the marker byte of the frame header (SOF0 or SOF2) of `jpeg`.
fn with_sof(jpeg: &[u8], code: u8) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let at = out.windows(2).position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2)).unwrap();
    out[at + 1] = code;
    out
}

#[test]
fn unsupported_processes_fail_with_one_line() {
    let c = case("q75_420_17x13");
    for (code, what) in [(0xC3, "lossless"), (0xC9, "arithmetic"), (0xC5, "hierarchical")] {
        let e = jpeg::decode(&with_sof(&c.jpeg, code)).unwrap_err();
        assert!(matches!(e, JpegError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains(what), "{e}");
        assert_one_line(&e);
    }
    // 12-bit samples: the precision byte follows the SOF marker and its length.
    let mut twelve = c.jpeg.clone();
    let at = twelve.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    twelve[at + 4] = 12;
    let e = jpeg::decode(&twelve).unwrap_err();
    assert!(e.to_string().contains("12-bit"), "{e}");
    let cmyk = fs::read(fixtures().join("unsupported_cmyk_8x8.jpg")).unwrap();
    let e = jpeg::decode(&cmyk).unwrap_err();
    assert!(e.to_string().contains("CMYK"), "{e}");
}

/// A header that declares far more blocks than the file could code is refused before any
/// allocation for it.
#[test]
fn oversized_header_is_refused() {
    let mut big = case("q75_420_17x13").jpeg;
    let at = big.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    big[at + 5..at + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let e = jpeg::decode(&big).unwrap_err();
    assert!(e.to_string().contains("65535x65535"), "{e}");
}

/// Fixtures covering the decoding paths, for corruption.
fn corruptible() -> Vec<Vec<u8>> {
    [
        "cifar_q75_420_32x32",
        "restart_blocks_420_40x24",
        "progressive_restart_420_40x24",
        "gray_q85_19x11",
        "q95_422_17x13",
    ]
    .iter()
    .map(|n| case(n).jpeg)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bit flips and byte overwrites anywhere (headers, tables, coded data) never panic:
    /// the result is an error or an image of the declared size.
    #[test]
    fn corrupted_files_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<u32>(), any::<u8>(), any::<bool>()), 1..6),
    ) {
        let mut bytes = corruptible()[which].clone();
        for (at, value, flip) in edits {
            let at = at as usize % bytes.len();
            if flip {
                bytes[at] ^= 1 << (value % 8);
            } else {
                bytes[at] = value;
            }
        }
        match jpeg::Decoder::new(&bytes) {
            Err(e) => assert_one_line(&e),
            Ok(d) => {
                let len = d.width() as usize * d.height() as usize * d.channels();
                let mut px = Vec::new();
                match d.decode_into(&mut px) {
                    Err(e) => assert_one_line(&e),
                    Ok(()) => prop_assert_eq!(px.len(), len),
                }
            }
        }
    }
}

/// A file repeating its scan over and over is refused after 500 scans (each scan walks every
/// block: many tiny scans could otherwise take very long); 500 are still read.
#[test]
fn too_many_scans_are_refused() {
    let gray = case("gray_q60_8x8");
    let sos = gray.jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let eoi = gray.jpeg.len() - 2;
    let repeat = |n: usize| {
        let mut out = gray.jpeg[..sos].to_vec();
        for _ in 0..n {
            out.extend_from_slice(&gray.jpeg[sos..eoi]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    };
    assert_eq!(jpeg::decode(&repeat(500)).unwrap().3, gray.pixels);
    let e = jpeg::decode(&repeat(501)).unwrap_err();
    assert!(e.to_string().contains("more than 500 scans"), "{e}");
}

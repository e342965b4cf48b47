//! Decode speed of shrink's JPEG decoder against zune-jpeg (the decoder shrink used before) on
//! the test images of a JPEG image-folder archive, one thread, best of ROUNDS; optionally dumps
//! shrink's pixels for `bench/jpeg_pillow_diff.py` (the comparison with Pillow).
//!
//! ```text
//! cargo run --release -p shrink-io --example jpeg_decode -- ARCHIVE.tar.gz [ROUNDS] [--dump OUT]
//! ```
//! `OUT.bin` gets the interleaved pixels of every `test/` JPEG in name order, `OUT.txt` their
//! names, sizes and channels.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Instant;

use shrink_io::data::jpeg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let archive = args.first().ok_or("usage: jpeg_decode ARCHIVE.tar.gz [ROUNDS] [--dump OUT]")?;
    let rounds: usize = args.get(1).filter(|a| !a.starts_with("--")).map_or(Ok(5), |r| r.parse())?;
    let dump = args.iter().position(|a| a == "--dump").and_then(|i| args.get(i + 1));

    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(File::open(archive)?));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let is_test = name.split('/').any(|p| p == "test");
        if is_test && (name.ends_with(".jpg") || name.ends_with(".jpeg")) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            images.push((name, bytes));
        }
    }
    images.sort();
    println!("{} test JPEGs in {archive}", images.len());

    let mut pixels = Vec::new();
    let shrink = best_of(rounds, || {
        for (name, bytes) in &images {
            let d = jpeg::Decoder::new(bytes).map_err(|e| format!("{name}: {e}")).unwrap();
            d.decode_into(&mut pixels).map_err(|e| format!("{name}: {e}")).unwrap();
        }
    });
    let zune = best_of(rounds, || {
        use zune_core::bytestream::ZCursor;
        use zune_core::colorspace::ColorSpace;
        use zune_core::options::DecoderOptions;
        for (name, bytes) in &images {
            let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
            let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            d.decode_headers().map_err(|e| format!("{name}: {e}")).unwrap();
            pixels.resize(d.output_buffer_size().unwrap_or(0), 0);
            d.decode_into(&mut pixels).map_err(|e| format!("{name}: {e}")).unwrap();
        }
    });
    let n = images.len() as f64;
    println!(
        "shrink {:.0} images/s ({:.3} s) | zune-jpeg {:.0} images/s ({:.3} s) | shrink/zune time {:.2}x",
        n / shrink,
        shrink,
        n / zune,
        zune,
        shrink / zune
    );

    if let Some(out) = dump {
        let mut bin = File::create(format!("{out}.bin"))?;
        let mut txt = File::create(format!("{out}.txt"))?;
        for (name, bytes) in &images {
            let (w, h, c, px) = jpeg::decode(bytes).map_err(|e| format!("{name}: {e}"))?;
            bin.write_all(&px)?;
            writeln!(txt, "{name} {w} {h} {c}")?;
        }
        println!("wrote {out}.bin and {out}.txt");
    }
    Ok(())
}

/// The fastest of `rounds` runs of `f`, in seconds.
fn best_of(rounds: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
